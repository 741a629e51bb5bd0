"""No "Did you mean ...?" outside the demo.

strawberry's ``disable_field_suggestions`` covers field names only; graphql-core
also suggests arguments, types, enum values and input fields, which tell a
caller probing the schema (with introspection off) what exists. This extension
drops every suggestion from the errors of a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

#: graphql-core's "Did you mean 'a', 'b', or 'c'?" (names hold no '?'), wherever
#: it stands in a message
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


def without_suggestion(message: str) -> str:
    return _SUGGESTION.sub("", message)


class NoSuggestions(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        if not any("Did you mean" in e.message for e in result.errors):
            return
        result.errors = [_plain(e) for e in result.errors]


def _plain(error: GraphQLError) -> GraphQLError:
    if "Did you mean" not in error.message:
        return error
    return GraphQLError(
        without_suggestion(error.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )
