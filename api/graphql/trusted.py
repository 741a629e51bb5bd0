"""Trusted documents as GraphQL: splitting a pushed ``.graphql`` file into its
operations (each with the fragments it uses), the literal setting keys and
prefixes each asks for, and checking a stored document against Tailor's schema.
Stored by :mod:`core.store.apps`; looked up for ``/graphql`` by
:mod:`api.http.trusted`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    ListValueNode,
    OperationDefinitionNode,
    StringValueNode,
    parse,
    validate,
    visit,
)
from graphql.language import Visitor

from core.model.apps import DocumentCheck, PushedOperation
from core.model.errors import InvalidInputError

#: the root field whose literal arguments readiness checks
SETTINGS_FIELD = "settings"


def split_operations(text: str, schema: GraphQLSchema | None = None) -> list[PushedOperation]:
    """Each operation of ``text``: a document of one operation is kept as it is
    (the hash a client computes of the file); one of several operations becomes
    one document each, its text followed by the fragments it uses. With
    ``schema``, a document that does not validate is refused (nothing stored)."""
    document = _parse(text)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        raise InvalidInputError("document", "the document holds no operation (query or mutation)")
    if len(operations) > 1 and any(o.name is None for o in operations):
        raise InvalidInputError(
            "document", "a document of several operations must name each of them"
        )
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    result: list[PushedOperation] = []
    for op in operations:
        if len(operations) == 1:
            own = text
        else:
            used = _fragments_used(op, fragments)
            parts = [_source(text, op), *(_source(text, fragments[n]) for n in used)]
            own = "\n\n".join(parts)
        if schema is not None:
            errors = invalid(own, schema)
            if errors:
                label = op.name.value if op.name else "(anonymous)"
                raise InvalidInputError(
                    "document",
                    f"operation {label} does not validate against Tailor's schema: {errors[0]}",
                )
        keys, prefixes = _settings_arguments(_parse(own))
        result.append(PushedOperation(op.name.value if op.name else None, own, keys, prefixes))
    return result


def invalid(text: str, schema: GraphQLSchema) -> list[str]:
    """Why ``text`` does not validate against ``schema`` (empty: it does)."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        return [exc.message]
    return [e.message for e in validate(schema, document)]


def _parse(text: str) -> DocumentNode:
    try:
        return parse(text)
    except GraphQLError as exc:
        where = f" at line {exc.locations[0].line}" if exc.locations else ""
        raise InvalidInputError(
            "document", f"not a GraphQL document: {exc.message}{where}"
        ) from None


def _source(text: str, node: OperationDefinitionNode | FragmentDefinitionNode) -> str:
    loc = node.loc
    assert loc is not None  # parse() keeps locations
    return text[loc.start : loc.end]


def _fragments_used(
    op: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> list[str]:
    """The fragments ``op`` uses, transitively, in a stable order."""
    seen: dict[str, None] = {}
    todo: list[OperationDefinitionNode | FragmentDefinitionNode] = [op]
    while todo:
        node = todo.pop()
        collector = _Spreads()
        visit(node, collector)
        for name in collector.names:
            if name not in seen and name in fragments:
                seen[name] = None
                todo.append(fragments[name])
    return sorted(seen)


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_args: object) -> None:
        self.names.append(node.name.value)


class _Settings(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, None] = {}
        self.prefixes: dict[str, None] = {}

    def enter_field(self, node: FieldNode, *_args: object) -> None:
        if node.name.value != SETTINGS_FIELD:
            return
        for argument in node.arguments or ():
            value = argument.value
            if argument.name.value == "keys":
                items = value.values if isinstance(value, ListValueNode) else (value,)
                for item in items:
                    if isinstance(item, StringValueNode):
                        self.keys[item.value] = None
            elif argument.name.value == "prefix" and isinstance(value, StringValueNode):
                self.prefixes[value.value] = None


def _settings_arguments(document: DocumentNode) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The literal ``keys:`` and ``prefix:`` of every ``settings`` field (values
    given by variables are not known before the request)."""
    collector = _Settings()
    visit(document, collector)
    return tuple(collector.keys), tuple(collector.prefixes)


def schema_check(schema: Callable[[], GraphQLSchema] | None = None) -> DocumentCheck:
    """Readiness's check of stored documents (``APP_OPERATION_INVALID``) against
    Tailor's schema (default: the one this code serves, built on first use); each
    document is validated once per process (documents are content-addressed)."""
    known: dict[str, tuple[str, ...]] = {}
    built: list[GraphQLSchema] = []

    def check(documents: Mapping[str, str]) -> Mapping[str, Sequence[str]]:
        out: dict[str, Sequence[str]] = {}
        for sha, text in documents.items():
            if sha not in known:
                if not built:
                    built.append(schema() if schema is not None else _served_schema())
                known[sha] = tuple(invalid(text, built[0]))
            if known[sha]:
                out[sha] = known[sha]
        return out

    return check


def _served_schema() -> GraphQLSchema:
    from api.graphql.schema import build_schema

    return build_schema()._schema
