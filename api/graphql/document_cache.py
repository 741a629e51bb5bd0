"""Parse a request's document once, and validate it once per app.

:meth:`DocumentStore.parsed` is the one parse of a query text: the request's price
(:mod:`api.graphql.cost`), the response cache's plan (:mod:`api.http.response_cache`)
and strawberry's execution (:class:`DocumentCache`) all read the document it
returns, parsed with the app's options (``max_tokens`` and ``max_body_bytes`` of
:class:`api.graphql.limits.GraphQLLimits`, as strawberry would parse it).

Strawberry parses and validates the query text of every request. For a document
the app has seen (a client's ``settings`` query after a write moved the data
version, or for a tenant whose answers are not cached), that repeats ~2 ms of
work whose outcome cannot change: the schema, the validation rules and the
parse options (``api/graphql/limits.py``) are fixed for the life of the app.

:class:`DocumentCache` keeps, per app, the parsed document of each query text
(LRU, :data:`MAX_DOCUMENTS`, texts up to :data:`MAX_DOCUMENT_CHARS`; only the
last longer text is kept, for the rest of its request) and whether it passed
graphql-core's validation.
It only remembers documents that parsed and validated without an error: a
refused document is parsed and validated again the next time (and refused with
the same errors). The checks that depend on more than the document's text (the
limits of ``api/graphql/limits.py`` look at the variables and the operation name) run on
every request as before; validation is only skipped when they found nothing.

Its hooks must run after :class:`api.graphql.limits.LimitsExtension`'s (it is listed
after it): strawberry runs the extensions' ``on_validate`` in order, and skips
graphql-core's validation when ``pre_execution_errors`` is already set.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

from api.graphql.limits import GraphQLLimits

#: documents kept per app
MAX_DOCUMENTS = 1_024
#: longer query texts are parsed every time, never kept: a token may be a string
#: as long as the body limit allows, and 1,024 kept megabyte documents would let
#: any client hold gigabytes of the server's memory (kept: at most ~20 MiB of text)
MAX_DOCUMENT_CHARS = 20_000


class DocumentStore:
    """Query text -> (parsed document, validated without errors), one per app."""

    def __init__(self, limits: GraphQLLimits, max_entries: int = MAX_DOCUMENTS) -> None:
        self.max_tokens = limits.max_tokens
        self.max_source_length = limits.max_body_bytes
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[DocumentNode, bool]] = OrderedDict()
        #: the last text too long to keep, and its document: a long request is
        #: parsed once (unless another long one comes between its price and its run)
        self._long: tuple[str, DocumentNode] | None = None
        #: parses made, and parses a kept document saved (metrics, tests)
        self.parses = 0
        self.parses_saved = 0
        self.validations_saved = 0

    def parsed(self, query: str) -> DocumentNode | None:
        """``query``'s document, parsed here once (what strawberry's parse would
        give), or None when it does not parse: strawberry parses it again and
        reports the errors (a refused text is never kept)."""
        found = self.get(query)
        if found is not None:
            self.parses_saved += 1
            return found[0]
        long = self._long
        if long is not None and long[0] == query:
            return long[1]
        try:
            document = parse(
                query, max_tokens=self.max_tokens, max_source_length=self.max_source_length
            )
        except GraphQLError:
            return None
        self.parses += 1
        if len(query) > MAX_DOCUMENT_CHARS:
            self._long = (query, document)
        else:
            self.put(query, document, False)
        return document

    def get(self, query: str) -> tuple[DocumentNode, bool] | None:
        found = self._data.get(query)
        if found is not None:
            self._data.move_to_end(query)
        return found

    def put(self, query: str, document: DocumentNode, valid: bool) -> None:
        if len(query) > MAX_DOCUMENT_CHARS:
            return
        self._data[query] = (document, valid)
        self._data.move_to_end(query)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class DocumentCache(SchemaExtension):
    """Reuse the store's parsed document, and skip validation of one that passed
    (a new instance per request, sharing the app's :class:`DocumentStore`)."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._known: tuple[DocumentNode, bool] | None = None

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        query = ctx.query
        if ctx.graphql_document is None and query:
            document = self.store.parsed(query)
            if document is not None:
                ctx.graphql_document = document
                self._known = self.store.get(query)
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        known = self._known
        skipped = False
        if known is not None and known[1] and ctx.pre_execution_errors is None:
            # validated before, with the same rules: nothing to find
            ctx.pre_execution_errors = []
            skipped = True
            self.store.validations_saved += 1
        checked_here = ctx.pre_execution_errors is None
        yield
        query = ctx.query
        if skipped or not query or ctx.graphql_document is None:
            return
        if checked_here and ctx.pre_execution_errors == []:
            self.store.put(query, ctx.graphql_document, True)
