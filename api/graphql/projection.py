"""Complete plain object selections by projection instead of field by field.

graphql-core completes a ``settings`` answer of 1,000 items by calling, for each
of its ~7,000 fields, a resolver, ``build_resolve_info``, ``complete_value`` and
the type checks around them: ~25 ms. Most of those fields are *basic*: a
strawberry field without a resolver, arguments, field extensions or middleware,
whose value is ``default_resolver(source, python_name)`` (an attribute of a
frozen GraphQL object built from the domain, see ``api/graphql/types.py``).

:class:`ProjectingExecutionContext` is graphql-core's executor (strawberry's
subclass) with one change: when it completes an object value, it first builds,
once per (object type, field group) of the operation, a *projection plan* from
graphql-core's own field collection (``collect_subfields``: aliases, inline
fragments, fragment spreads, ``@skip``/``@include`` with the request's
variables, merged fields, in graphql-core's order). A plan exists when every
collected field is ``__typename`` or a basic field whose type is a scalar, an
enum, a (non-null) list of those, or an object type with a plan itself. The
value is then projected straight into the result dict, leaves coerced by the
same ``coerce_output_value`` graphql-core calls.

Anything the plan cannot do exactly like graphql-core, it does not do: a field
with a resolver, arguments, an abstract type, ``@defer``, a resolver middleware
(a schema extension implementing ``resolve``) means no plan; and at run time a
null in a non-null position, a value that is not a list where one is expected,
a value that is not plain JSON under the ``JSON`` scalar, a coercion that fails
or an ``is_type_of`` that says no makes the projection give up on that object,
which is then completed by graphql-core as usual (the projection has no side
effects: it only reads attributes). So ``data`` and ``errors`` are the same,
byte for byte: ``tests/api/test_projection.py`` compares both paths over many
documents.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    Undefined,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

#: how deep plans nest (deeper selections are completed as usual)
MAX_DEPTH = 8
#: plain JSON values (anything else under the JSON scalar: graphql-core's way)
_PLAIN = (str, int, float, bool, list, dict)

Completer = Callable[[Any], Any]


class GiveUp(Exception):
    """The projection cannot complete this value exactly: graphql-core will."""


class ProjectingExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's graphql-core executor, projecting plain object selections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (object type, id(field group)) -> (field group, plan or None)
        self._plans: dict[tuple[GraphQLObjectType, int], tuple[Any, Completer | None]] = {}
        manager = self.middleware_manager
        self._projecting = not (manager is not None and manager.middlewares)
        #: objects projected and given up (tests, profiling)
        self.projected = 0
        self.given_up = 0

    def collect_and_execute_subfields(
        self,
        return_type: GraphQLObjectType,
        field_details_list: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(return_type, field_details_list, 0) if self._projecting else None
        if plan is not None:
            try:
                completed = plan(result)
            except GiveUp:
                self.given_up += 1
            else:
                self.projected += 1
                return completed
        return super().collect_and_execute_subfields(
            return_type, field_details_list, path, result, position_context
        )

    # -- planning ------------------------------------------------------------------
    def _plan(
        self, object_type: GraphQLObjectType, field_details_list: Any, depth: int
    ) -> Completer | None:
        key = (object_type, id(field_details_list))
        found = self._plans.get(key)
        if found is not None:
            return found[1]
        plan = self._build(object_type, field_details_list, depth)
        # the entry keeps the group alive, so its id is not reused meanwhile
        self._plans[key] = (field_details_list, plan)
        return plan

    def _build(
        self, object_type: GraphQLObjectType, field_details_list: Any, depth: int
    ) -> Completer | None:
        if depth > MAX_DEPTH:
            return None
        grouped, defer_usages, *_ = self.collect_subfields(object_type, field_details_list)
        if defer_usages:
            return None
        steps: list[tuple[str, Callable[[Any], Any] | None, Any]] = []
        for response_key, group in grouped.items():
            for details in group:
                if (
                    getattr(details, "defer_usage", None) is not None
                    or getattr(details, "fragment_variable_values", None) is not None
                    or any(
                        d.name.value not in ("skip", "include")
                        for d in details.node.directives or ()
                    )
                ):
                    return None
            node = group[0].node
            name = node.name.value
            if name == "__typename":
                steps.append((response_key, None, object_type.name))
                continue
            field_def = self.schema.get_field(object_type, name)
            if field_def is None or field_def.args or node.arguments:
                return None
            getter = _basic_getter(field_def)
            if getter is None:
                return None
            complete = self._completer(field_def.type, group, depth)
            if complete is None:
                return None
            steps.append((response_key, getter, complete))
        return _object_completer(object_type, steps)

    def _completer(self, type_: GraphQLOutputType, group: Any, depth: int) -> Completer | None:
        if is_non_null_type(type_):
            assert isinstance(type_, GraphQLNonNull)
            if is_leaf_type(type_.of_type):
                return _leaf(type_.of_type, non_null=True)  # one call per field
            inner = self._completer(type_.of_type, group, depth)
            if inner is None:
                return None
            return _non_null(inner)
        if is_list_type(type_):
            assert isinstance(type_, GraphQLList)
            item = self._completer(type_.of_type, group, depth)
            if item is None:
                return None
            return _list(item)
        if is_leaf_type(type_):
            return _leaf(type_)
        if is_object_type(type_):
            assert isinstance(type_, GraphQLObjectType)
            plan = self._plan(type_, group, depth + 1)
            if plan is None:
                return None
            return _nullable(plan)
        return None  # interfaces and unions: graphql-core resolves the runtime type


def _basic_getter(field_def: Any) -> Callable[[Any], Any] | None:
    """How graphql-core would get a basic strawberry field's value (None: the
    field is not basic)."""
    resolve = field_def.resolve
    if resolve is None or not getattr(resolve, "_is_default", False):
        return None
    field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if field is None or not field.is_basic_field:
        return None
    default = field.default_resolver
    name = field.python_name
    if default is getattr:
        return attrgetter(name)
    return lambda source: default(source, name)


def _object_completer(
    object_type: GraphQLObjectType, steps: list[tuple[str, Callable[[Any], Any] | None, Any]]
) -> Completer:
    is_type_of = object_type.is_type_of

    def complete(source: Any) -> dict[str, Any]:
        if source is None or isinstance(source, Exception):
            raise GiveUp
        if is_type_of is not None:
            try:
                # (a predicate that needs the resolve info raises: graphql-core then)
                ok = is_type_of(source, None)  # type: ignore[arg-type]
            except Exception:
                raise GiveUp from None
            if ok is not True:
                raise GiveUp
        out: dict[str, Any] = {}
        for key, getter, then in steps:
            if getter is None:
                out[key] = then
                continue
            try:
                value = getter(source)
            except Exception:
                raise GiveUp from None
            out[key] = then(value)
        return out

    return complete


def _nullable(complete: Completer) -> Completer:
    def nullable(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        return complete(value)

    return nullable


def _non_null(complete: Completer) -> Completer:
    def non_null(value: Any) -> Any:
        completed = complete(value)
        if completed is None:
            raise GiveUp
        return completed

    return non_null


def _list(item: Completer) -> Completer:
    def complete_list(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if not isinstance(value, list | tuple):
            raise GiveUp
        return [item(v) for v in value]

    return complete_list


def _leaf(type_: GraphQLLeafType, non_null: bool = False) -> Completer:
    coerce = type_.coerce_output_value
    json = isinstance(type_, GraphQLScalarType) and type_.name == "JSON"

    def leaf(value: Any) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise GiveUp
            return None
        if json and not isinstance(value, _PLAIN):
            raise GiveUp
        try:
            coerced = coerce(value)
        except Exception:
            raise GiveUp from None
        if coerced is None or coerced is Undefined:
            raise GiveUp
        return coerced

    return leaf
