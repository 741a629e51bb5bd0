"""What one HTTP request costs: a price per root field, summed over every
operation of a batch and every alias, counted before anything runs.

graphql-core and strawberry's limiters (``QueryDepthLimiter``,
``MaxAliasesLimiter``, ``MaxTokensLimiter``) see one operation at a time; a
batch of ten operations with thirty aliases each is 300 root fields that no
per-operation rule sees whole. The guard in :mod:`api.http.protocol` prices the whole
request here and refuses it (code ``COST_LIMIT_EXCEEDED``) before strawberry
executes any of it; the same price is what the per-token rate limit charges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)

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
    "foldbackCandidates": 25,
    "setSetting": 1,
    "resetSetting": 1,
    "createTenant": 2,
    "setCustomizationEnabled": 2,
    "publishCustomization": 10,
    "importRelease": 10,
    "upgradeTenant": 25,
}
DEFAULT_COST = 1
#: documents up to this size are priced once and remembered (1,024 of them at
#: most, so the cache holds a few MB whatever the callers send)
CACHED_QUERY_CHARS = 4_096


def request_cost(operations: Sequence[Mapping[str, Any]], max_tokens: int) -> int:
    """The price of a request (its operations: the parsed request parameters)."""
    total = 0
    for op in operations:
        query, name = op.get("query") or "", op.get("operationName")
        price = _remembered if len(query) <= CACHED_QUERY_CHARS else document_cost
        total += price(query, name, max_tokens)
    return total


def document_cost(query: str, operation_name: str | None, max_tokens: int) -> int:
    """The price of the operation the request runs (all of them when several and
    none is named: they are refused later, but never run for free). A document
    that does not parse costs 0 here: it is refused before anything runs."""
    try:
        document = parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return 0
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    # each fragment is priced once however often it is spread (api.graphql.fragments)
    fragments = FragmentFold(document, _fragment, 0)
    return sum(_root(o.selection_set, fragments) for o in operations)


def _root(selection_set: SelectionSetNode, fragments: FragmentFold[int]) -> int:
    cost = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            cost += ROOT_FIELD_COSTS.get(selection.name.value, DEFAULT_COST)
        elif isinstance(selection, InlineFragmentNode):
            cost += _root(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            cost += fragments.spread(selection.name.value)
    return cost


def _fragment(fragment: FragmentDefinitionNode, fragments: FragmentFold[int]) -> int:
    return _root(fragment.selection_set, fragments)


_remembered = lru_cache(maxsize=1024)(document_cost)
