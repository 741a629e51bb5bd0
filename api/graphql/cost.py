"""What one HTTP request costs, counted before anything runs: one formula, here.

    price = max(MIN_COST, sum of the root fields' base prices
                          + (items the request names or returns) // ITEMS_PER_UNIT)

summed over every operation of a batch, every alias and every fragment spread.

- **base prices** (:data:`ROOT_FIELD_COSTS`): analyses over the fleet are dear,
  reads of one tenant cheap (``settings`` 1, ``readiness`` 25).
- **items**: the elements of every list in a root field's arguments -- list
  literals in the document *and* the values of the variables they use
  (``settings(keys: $keys)`` with 20,000 keys is 20,000 items, counted as often
  as the variable is used) -- plus :data:`WHOLE_CATALOG_ITEMS` for each field
  that returns a whole setting catalog (:data:`CATALOG_FIELDS`: ``settings``
  without ``keys``, ``release``). A catalog's real size is only known once the
  request runs, so a whole catalog is priced flat, as 1,000 settings; ``prefix``
  narrows the answer, not the price.
- one unit per :data:`ITEMS_PER_UNIT` (100) items, over the whole request; every
  request costs at least :data:`MIN_COST`.

So ``settings(tenant:, keys: [one key])`` costs 1, a front-end's start-up fetch
of its whole catalog (``settings(tenant:)``) 11, the same with 1,000 ``keys`` 11,
and 20,000 keys 201 -- over the default ``max_cost`` of 100, refused. An answer
the response cache serves (:mod:`api.http.response_cache`) costs
:data:`CACHED_COST` (a tenth of a unit): the guard charges the minimum before
anything runs, gives all of it back but :data:`CACHED_COST` when the cache
answers (:func:`api.http.graphql_view.served_from_cache`), and charges the rest only
when the request is about to run (:func:`api.http.graphql_view.settle_bill`).

graphql-core and strawberry's limiters (``QueryDepthLimiter``,
``MaxAliasesLimiter``, ``MaxTokensLimiter``) see one operation at a time; a
batch of ten operations with thirty aliases each is 300 root fields that no
per-operation rule sees whole. The guard in :mod:`api.http.protocol` prices the whole
request here and refuses it (code ``COST_LIMIT_EXCEEDED``) before strawberry
executes any of it; the same price is what the per-token rate limit charges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)

from api.graphql.document_cache import DocumentStore
from api.graphql.fragments import FragmentFold

#: the extension code of a request refused for its cost
COST_CODE = "COST_LIMIT_EXCEEDED"

#: price of one root field; analyses over the fleet are dear, reads of one
#: tenant cheap. A root field not listed costs DEFAULT_COST.
ROOT_FIELD_COSTS: Mapping[str, int] = {
    "__typename": 0,
    "__type": 1,
    "__schema": 10,
    "settings": 1,
    "tenant": 1,
    "tenants": 2,
    "releases": 1,
    "release": 2,
    "auditLog": 2,
    "extensionPoints": 2,
    "customizations": 5,
    "releaseDiff": 5,
    "readiness": 25,
    # replays every recorded input of the tenants in worker processes
    "rehearsal": 50,
    "foldbackCandidates": 25,
    # each answers with items scored against every planned release's readiness
    "roadmapItems": 25,
    "createRoadmapItem": 25,
    "pledgeRoadmapItem": 25,
    "updateRoadmapItem": 25,
    "setSetting": 1,
    "resetSetting": 1,
    "createTenant": 2,
    "setCustomizationEnabled": 2,
    "publishCustomization": 10,
    "importRelease": 10,
    "upgradeTenant": 25,
    # resolves the URL's host (a DNS lookup)
    "createWebhook": 2,
    "webhookDeliveries": 2,
    "apps": 2,
    "registerApp": 2,
    # parsed and validated against the schema, operation by operation
    "pushAppOperations": 10,
    "pushAppFlags": 2,
}
DEFAULT_COST = 1
#: what every computed request costs at least (charged before anything runs)
MIN_COST = 1
#: what an answer served from the response cache (or a 304) costs: a tenth of a
#: unit, so an app token shared by every browser of a tenant pays for the work
#: done, not for the browsers (the minimum charged up front is given back but this)
CACHED_COST = 0.1
#: one cost unit per this many items a request names (list arguments) or returns
ITEMS_PER_UNIT = 100
#: the items a whole setting catalog is priced at (its size is unknown before running)
WHOLE_CATALOG_ITEMS = 1_000
#: root fields that return a whole catalog -> the argument that narrows them to a
#: list of keys (None: nothing does; ``release`` loads the whole catalog)
CATALOG_FIELDS: Mapping[str, str | None] = {"settings": "keys", "release": None}
#: documents up to this size are priced once and remembered (1,024 of them at
#: most, so the cache holds a few MB whatever the callers send)
CACHED_QUERY_CHARS = 4_096

_Uses = tuple[tuple[str, int], ...]
#: marks a variable in ``Terms.catalogs`` that has a default: a whole catalog only
#: when passed as null (no GraphQL name holds "=")
NULL_ONLY = "="


@dataclass(frozen=True)
class Terms:
    """A document's price before its variables are known: base prices and list
    items written in it, and how often each variable is used where its list
    counts (``lists``) or where its absence means a whole catalog (``catalogs``)."""

    base: int = 0
    items: int = 0
    lists: _Uses = ()
    catalogs: _Uses = ()

    def __add__(self, other: Terms) -> Terms:
        return Terms(
            self.base + other.base,
            self.items + other.items,
            _merge(self.lists, other.lists),
            _merge(self.catalogs, other.catalogs),
        )

    def times(self, n: int) -> Terms:
        return Terms(
            self.base * n,
            self.items * n,
            tuple((v, k * n) for v, k in self.lists),
            tuple((v, k * n) for v, k in self.catalogs),
        )

    def price(self, variables: Mapping[str, Any]) -> tuple[int, int]:
        """(base, items) once the variables are known."""
        items = self.items
        for name, uses in self.lists:
            items += uses * count_items(variables.get(name))
        for name, uses in self.catalogs:
            if name.startswith(NULL_ONLY):
                name = name[len(NULL_ONLY) :]
                whole = name in variables and variables[name] is None
            else:
                whole = variables.get(name) is None
            if whole:
                items += uses * WHOLE_CATALOG_ITEMS
        return self.base, items


def _merge(a: _Uses, b: _Uses) -> _Uses:
    if not b:
        return a
    merged = dict(a)
    for name, uses in b:
        merged[name] = merged.get(name, 0) + uses
    return tuple(merged.items())


def count_items(value: Any) -> int:
    """The elements of every list in ``value`` (nested lists and objects too)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            total += len(item)
            stack.extend(x for x in item if isinstance(x, list | tuple | dict))
        elif isinstance(item, dict):
            stack.extend(x for x in item.values() if isinstance(x, list | tuple | dict))
    return total


def request_cost(operations: Sequence[Mapping[str, Any]], documents: DocumentStore) -> int:
    """The price of a request (its operations: the parsed request parameters,
    variables included), their documents parsed by the app's ``documents``; see
    the module docstring for the formula."""
    base = items = 0
    for op in operations:
        query, name = op.get("query") or "", op.get("operationName")
        terms = _remembered if len(query) <= CACHED_QUERY_CHARS else document_terms
        variables = op.get("variables")
        b, i = terms(query, name, documents).price(
            variables if isinstance(variables, Mapping) else {}
        )
        base, items = base + b, items + i
    return max(MIN_COST, base + items // ITEMS_PER_UNIT)


def document_cost(
    query: str,
    operation_name: str | None,
    documents: DocumentStore,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The price of one operation as a request of its own."""
    params = {"query": query, "operationName": operation_name, "variables": variables}
    return request_cost([params], documents)


def document_terms(query: str, operation_name: str | None, documents: DocumentStore) -> Terms:
    """The terms of the operation the request runs (all of them when several and
    none is named: they are refused later, but never run for free). A document
    that does not parse costs nothing here: it is refused before anything runs."""
    document = documents.parsed(query)
    if document is None:
        return Terms()
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    # each fragment is priced once however often it is spread (api.graphql.fragments)
    fragments = FragmentFold(document, _fragment, Terms())
    total = Terms()
    for operation in operations:
        terms = _root(operation.selection_set, fragments)
        defaulted = set()
        for definition in operation.variable_definitions or ():
            default = definition.default_value
            if default is None or isinstance(default, NullValueNode):
                continue
            defaulted.add(definition.variable.name.value)
            # list literals in a default value are items too (counted once, whether
            # or not the variable is passed: never less than what may run)
            terms = terms + Terms(items=_value(default)[0])
        if defaulted:
            # a variable with a default narrows unless it is passed as null
            catalogs = tuple(
                (NULL_ONLY + name if name in defaulted else name, uses)
                for name, uses in terms.catalogs
            )
            terms = replace(terms, catalogs=catalogs)
        total = total + terms
    return total


def _root(selection_set: SelectionSetNode, fragments: FragmentFold[Terms]) -> Terms:
    terms = Terms()
    # a fragment spread n times is added n times, folded once
    spreads: dict[str, int] = {}
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            terms = terms + _field(selection)
        elif isinstance(selection, InlineFragmentNode):
            terms = terms + _root(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            spreads[selection.name.value] = spreads.get(selection.name.value, 0) + 1
    for name, n in spreads.items():
        terms = terms + fragments.spread(name).times(n)
    return terms


def _field(field: FieldNode) -> Terms:
    name = field.name.value
    items: int = 0
    lists: _Uses = ()
    arguments = {a.name.value: a.value for a in field.arguments or ()}
    for argument in arguments.values():
        i, used = _value(argument)
        items, lists = items + i, _merge(lists, used)
    catalogs: _Uses = ()
    if name in CATALOG_FIELDS:
        narrowing = CATALOG_FIELDS[name]
        narrowed = arguments.get(narrowing) if narrowing else None
        if isinstance(narrowed, VariableNode):
            catalogs = ((narrowed.name.value, 1),)
        elif narrowed is None or isinstance(narrowed, NullValueNode):
            items += WHOLE_CATALOG_ITEMS
    return Terms(ROOT_FIELD_COSTS.get(name, DEFAULT_COST), items, lists, catalogs)


def _value(value: ValueNode) -> tuple[int, _Uses]:
    """(list elements written in an argument, the variables it uses)."""
    if isinstance(value, VariableNode):
        return 0, ((value.name.value, 1),)
    if isinstance(value, ListValueNode):
        items: int = len(value.values)
        uses: _Uses = ()
        for v in value.values:
            i, u = _value(v)
            items, uses = items + i, _merge(uses, u)
        return items, uses
    if isinstance(value, ObjectValueNode):
        total: int = 0
        found: _Uses = ()
        for f in value.fields:
            i, u = _value(f.value)
            total, found = total + i, _merge(found, u)
        return total, found
    return 0, ()


def _fragment(fragment: FragmentDefinitionNode, fragments: FragmentFold[Terms]) -> Terms:
    return _root(fragment.selection_set, fragments)


#: (query, operation name, the app's store) -> terms: an app's limits are fixed
#: for its life, so its store (compared by identity) stands for its parse options
_remembered = lru_cache(maxsize=1024)(document_terms)
