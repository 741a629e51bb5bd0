"""GraphQL limits: document size, depth, aliases, directives, batch and body size.

What strawberry does, strawberry does here: its ``MaxTokensLimiter`` stops the
parser at ``max_tokens`` (:class:`LimitsExtension` is one), and its batching
config (``StrawberryConfig.batching_config``, set in :mod:`api.http.app`) enables batches.

What it can't do stays hand-written:

- **depth, aliases, directives** (:func:`measure`). Strawberry's
  ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` (0.341) walk a fragment again
  at every spread, with no memo: a "fragment bomb" (each fragment spreading the
  next one twice) takes time exponential in its nesting -- measured at 20 levels:
  1.2 s for the alias count, 4.4 s for the depth, doubling per level, so the
  30-level bomb of ``tests/api/test_limits.py`` would hold a worker for over an
  hour (here: refused in one pass, well under a millisecond). They also run as validation rules,
  together with graphql-core's own rules over the same document, and refuse with
  neither our ``QUERY_TOO_COMPLEX`` code nor the measured figure. There is no
  strawberry directive limit at all. :func:`measure` memoizes each fragment, so a
  document costs one linear pass, and runs *before* validation: a refused document
  never reaches the more expensive validation rules. Fragments count as many
  times as they are spread, exactly as execution would expand them.
- **the batch size and the request's price** (:class:`api.http.protocol.ProtocolGuard`,
  :mod:`api.graphql.cost`): checked on the whole HTTP request before it is priced and
  charged to the token's rate limit, which strawberry's batch check (run later,
  inside the view, with the message ``Too many operations``) can't be; strawberry's
  ``max_operations`` is set to the same figure and is never the one that refuses.
- **NUL characters and the operation name** (not limits strawberry knows of).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    visit,
)
from graphql.language.visitor import BREAK
from strawberry.extensions import MaxTokensLimiter

from api.graphql.fragments import FragmentFold
from core.model.auth import Role
from core.model.customizations import SLUG_PATTERN
from core.model.errors import InvalidInputError

#: the extension code clients see on a refused document
LIMIT_CODE = "QUERY_TOO_COMPLEX"
#: a string holding U+0000
NUL_CODE = "NUL_CHARACTER"
#: several operations and no ``operationName``
OPERATION_NAME_CODE = "OPERATION_NAME_REQUIRED"


#: per-role and per-tenant rate limits (see :func:`parse_rate_limits`)
RATE_LIMITS_ENV = "TAILOR_RATE_LIMITS"
#: a rule's bucket, unless it says: a tenth of a minute's budget (the default's ratio)
BURST_SHARE = 10
TENANT_RULE = "tenant:"


@dataclass(frozen=True)
class RateRule:
    """A token budget for a role (``app``) or the tokens of a tenant
    (``tenant:acme``): cost units a minute and the bucket's size."""

    selector: str
    per_minute: int
    burst: int


def parse_rate_limits(text: str, max_cost: int) -> tuple[RateRule, ...]:
    """``TAILOR_RATE_LIMITS``: comma-separated ``SELECTOR=PER_MINUTE[/BURST]``;
    a selector is a role (admin, release_manager, consultant, app, host) or
    ``tenant:SLUG``; 0 per minute means no limit for those tokens; the burst
    defaults to a tenth of the minute's budget, at least ``max_cost``. Every
    problem is refused with what to write instead."""
    roles = {r.value for r in Role}
    rules: dict[str, RateRule] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        selector, eq, budget = (x.strip() for x in part.partition("="))
        if not eq:
            raise InvalidInputError(
                RATE_LIMITS_ENV, f"{part!r} is not SELECTOR=PER_MINUTE[/BURST] (e.g. app=60000)"
            )
        if selector.startswith(TENANT_RULE):
            if not SLUG_PATTERN.match(selector[len(TENANT_RULE) :]):
                raise InvalidInputError(RATE_LIMITS_ENV, f"{selector!r} names no tenant slug")
        elif selector not in roles:
            raise InvalidInputError(
                RATE_LIMITS_ENV,
                f"{selector!r} is neither a role ({', '.join(sorted(roles))}) nor tenant:SLUG",
            )
        if selector in rules:
            raise InvalidInputError(RATE_LIMITS_ENV, f"{selector!r} is given twice")
        raw_rate, slash, raw_burst = budget.partition("/")
        try:
            per_minute = int(raw_rate)
            burst = int(raw_burst) if slash else max(max_cost, per_minute // BURST_SHARE)
        except ValueError:
            raise InvalidInputError(
                RATE_LIMITS_ENV, f"{selector}: {budget!r} is not PER_MINUTE[/BURST] in integers"
            ) from None
        if per_minute < 0 or (per_minute and burst < max_cost):
            raise InvalidInputError(
                RATE_LIMITS_ENV,
                f"{selector}: the rate must be >= 0 and the burst at least max_cost "
                f"({max_cost}), or its dearest request could never run",
            )
        rules[selector] = RateRule(selector, per_minute, burst)
    return tuple(rules.values())


@dataclass(frozen=True)
class GraphQLLimits:
    """Each limit is configurable (``TAILOR_MAX_<NAME>`` in the environment)."""

    #: nesting of fields (introspection subtrees such as ``__schema`` excepted)
    max_depth: int = 10
    #: aliased fields in the document, fragments expanded where they are spread
    max_aliases: int = 30
    #: lexical tokens of the document (the parser stops beyond)
    max_tokens: int = 2_000
    #: directives in the document, fragments expanded where they are spread
    max_directives: int = 20
    #: operations in one JSON-array batched request (0 = batching refused)
    max_batch_size: int = 10
    #: bytes of a request body (larger ones get 413)
    max_body_bytes: int = 1_048_576
    #: price of one request (:mod:`api.graphql.cost`: root fields' base prices plus one
    #: unit per 100 list items, summed over a batch's operations and aliases); a
    #: front-end's start-up fetch of a whole catalog costs 11
    max_cost: int = 100
    #: cost units a token may spend per minute, in each process (0 = no rate limit;
    #: 429 beyond; see :mod:`api.http.ratelimit` for workers and nodes)
    rate_limit_per_minute: int = 6_000
    #: cost units a token may spend at once (the bucket's size)
    rate_limit_burst: int = 600
    #: budgets per role and per tenant instead of the one above
    #: (``TAILOR_RATE_LIMITS``, :func:`parse_rate_limits`)
    rate_limits: tuple[RateRule, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "rate_limits":
                continue
            value = getattr(self, f.name)
            minimum = 0 if f.name in ("max_batch_size", "rate_limit_per_minute") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise InvalidInputError(f.name, f"must be an integer >= {minimum}, got {value!r}")
        if self.rate_limit_per_minute and self.rate_limit_burst < self.max_cost:
            raise InvalidInputError(
                "rate_limit_burst",
                f"must be at least max_cost ({self.max_cost}), or the dearest allowed "
                f"request could never run; got {self.rate_limit_burst}",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GraphQLLimits:
        """Read ``TAILOR_MAX_DEPTH``, ``TAILOR_MAX_ALIASES``, ``TAILOR_MAX_TOKENS``,
        ``TAILOR_MAX_DIRECTIVES``, ``TAILOR_MAX_BATCH_SIZE``, ``TAILOR_MAX_BODY_BYTES``,
        ``TAILOR_MAX_COST``, ``TAILOR_RATE_LIMIT_PER_MINUTE`` and
        ``TAILOR_RATE_LIMIT_BURST``, and ``TAILOR_RATE_LIMITS`` (per role and per
        tenant); unset ones keep their default."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "rate_limits":
                continue
            name = "TAILOR_" + f.name.upper()
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            try:
                values[f.name] = int(raw)
            except ValueError:
                raise InvalidInputError(name, f"{raw!r} is not an integer") from None
        rules = environ.get(RATE_LIMITS_ENV, "").strip()
        if rules:
            values["rate_limits"] = parse_rate_limits(rules, values.get("max_cost", cls.max_cost))
        return cls(**values)


@dataclass(frozen=True)
class DocumentCost:
    depth: int = 0
    aliases: int = 0
    directives: int = 0

    def __add__(self, other: DocumentCost) -> DocumentCost:
        return DocumentCost(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.directives + other.directives,
        )


def measure(document: DocumentNode) -> DocumentCost:
    """The cost of every operation in ``document`` (depth: the deepest one); each
    fragment is measured once however often it is spread (:mod:`api.graphql.fragments`)."""
    fragments = FragmentFold(document, _fragment, DocumentCost())
    total = DocumentCost()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            own = DocumentCost(directives=len(definition.directives or ()))
            total = total + own + _selections(definition.selection_set, fragments)
    return total


def _selections(
    selection_set: SelectionSetNode | None, fragments: FragmentFold[DocumentCost]
) -> DocumentCost:
    cost = DocumentCost()
    if selection_set is None:
        return cost
    for selection in selection_set.selections:
        directives = len(selection.directives or ())
        if isinstance(selection, FieldNode):
            inner = _selections(selection.selection_set, fragments)
            # introspection (__schema, __type) nests deeply by design: its depth
            # is governed by the introspection switch, its aliases still count
            nested = 0 if selection.name.value.startswith("__") else inner.depth
            cost = cost + DocumentCost(
                depth=nested + 1,
                aliases=inner.aliases + (1 if selection.alias else 0),
                directives=inner.directives + directives,
            )
        elif isinstance(selection, InlineFragmentNode):
            inner = _selections(selection.selection_set, fragments)
            cost = cost + inner + DocumentCost(directives=directives)
        elif isinstance(selection, FragmentSpreadNode):
            cost = cost + fragments.spread(selection.name.value)
            cost = cost + DocumentCost(directives=directives)
    return cost


def _fragment(
    fragment: FragmentDefinitionNode, fragments: FragmentFold[DocumentCost]
) -> DocumentCost:
    cost = _selections(fragment.selection_set, fragments)
    return cost + DocumentCost(directives=len(fragment.directives or ()))


def violations(cost: DocumentCost, limits: GraphQLLimits) -> Iterator[str]:
    if cost.depth > limits.max_depth:
        yield f"the query is nested {cost.depth} levels deep; the limit is {limits.max_depth}"
    if cost.aliases > limits.max_aliases:
        yield (
            f"the query uses {cost.aliases} aliases (fragments counted where spread); "
            f"the limit is {limits.max_aliases}"
        )
    if cost.directives > limits.max_directives:
        yield (
            f"the query uses {cost.directives} directives (fragments counted where spread); "
            f"the limit is {limits.max_directives}"
        )


class _NulFinder(Visitor):
    """Stops at the first string literal holding a NUL character."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> Any:
        if "\x00" in node.value:
            self.found = True
            return BREAK
        return None


def _has_nul(document: DocumentNode, variables: Any) -> bool:
    """NUL characters have no business in a setting, slug or reason, and some
    databases (PostgreSQL) refuse them: refuse them up front, clearly."""
    finder = _NulFinder()
    visit(document, finder)
    return finder.found or _value_has_nul(variables)


def _value_has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


class LimitsExtension(MaxTokensLimiter):
    """Enforce :class:`GraphQLLimits` on one operation (a new instance per request):
    strawberry's ``MaxTokensLimiter`` for the tokens (it counts comments too),
    the source length (``max_body_bytes``, for GET requests too) and the checks
    of :func:`measure` and NULs before validation."""

    def __init__(self, limits: GraphQLLimits) -> None:
        super().__init__(max_token_count=limits.max_tokens)
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        # graphql-core's parse() takes it; strawberry's ParseOptions TypedDict
        # declares only max_tokens, hence the ignore
        options = self.execution_context.parse_options
        options["max_source_length"] = self.limits.max_body_bytes  # type: ignore[typeddict-unknown-key]
        yield from super().on_operation()

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None and ctx.pre_execution_errors is None:
            errors = [
                GraphQLError(
                    f"{problem}: simplify the query or split it",
                    extensions={"code": LIMIT_CODE},
                )
                for problem in violations(measure(document), self.limits)
            ]
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            # strawberry would silently run the first one; the GraphQL spec refuses
            named = getattr(ctx, "_provided_operation_name", ctx.operation_name)
            if named is None and len(operations) > 1:
                errors.append(
                    GraphQLError(
                        "the document has several operations: name the one to run in "
                        "'operationName'",
                        extensions={"code": OPERATION_NAME_CODE},
                    )
                )
            if _has_nul(document, ctx.variables):
                errors.append(
                    GraphQLError(
                        "strings must not contain the NUL character (U+0000): remove it "
                        "from the query and its variables",
                        extensions={"code": NUL_CODE},
                    )
                )
            if errors:
                # Setting the errors first makes strawberry skip graphql-core's
                # validation rules: the document is refused as it is.
                ctx.pre_execution_errors = errors
        yield
