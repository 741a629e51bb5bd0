"""Answers to the ``settings`` query served like a static file.

A front-end app asks its tenant's settings at every start-up, and the answer only
changes when that tenant's data changes. A single GraphQL operation whose root
fields are all ``settings`` (and ``__typename``) is answered from memory under

    (document hash, operation name, variables, media type, the caller's scope,
     each named tenant's (id, data version))

The tenants' data versions are read in one small statement at the start of every
such request (:class:`core.store.version_reader.VersionReader`, on a connection of its
own: microseconds on SQLite); every write that can change a
tenant's answer bumps its version in the same transaction
(:func:`core.store.tenants.bump_data_version`). So a request never gets an answer older
than a write committed before it began, on any worker: the version it reads
already counts that write. An answer is only kept when it carries no error and no
customization failure, and when every customization enabled for the tenant is
pure (``pure = false`` in customization.toml turns caching off for its tenants).

Cached answers carry an ``ETag``; a GET with a matching ``If-None-Match`` gets
``304 Not Modified`` without a body. The document is the app's one parse of the
query text (:meth:`api.graphql.document_cache.DocumentStore.parsed`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    VariableNode,
)
from starlette.responses import Response

from api.graphql.document_cache import MAX_DOCUMENT_CHARS, DocumentStore
from api.state import RequestState
from core.model.auth import Principal
from core.store.services import Services
from core.store.version_reader import VersionReader

K = TypeVar("K")
V = TypeVar("V")

#: answers kept per process, and their total size
MAX_ENTRIES = 2_048
MAX_BYTES = 256 * 1024 * 1024
#: root fields a cacheable operation may select
CACHEABLE_ROOTS = frozenset({"settings", "__typename"})


class LRU(Generic[K, V]):
    """A small least-recently-used map."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V | None:
        """Store; returns the entry evicted to make room, if any."""
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.max_entries:
            return self._data.popitem(last=False)[1]
        return None

    def pop_oldest(self) -> V | None:
        return self._data.popitem(last=False)[1] if self._data else None

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class Plan:
    """A request the cache may answer: what its key is made of, tenants pending."""

    document: str
    tenants: tuple[str, ...]
    rest: tuple[Any, ...]


@dataclass(frozen=True)
class Entry:
    body: bytes
    status: int
    content_type: str
    etag: str


@dataclass
class Lookup:
    """The outcome of looking a request up: the key to store under, the tenants'
    ids and versions, and the entry when there is one."""

    key: tuple[Any, ...]
    tenants: Mapping[str, tuple[int, int]]
    entry: Entry | None


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header value names ``etag`` (weak comparison)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def not_modified(etag: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "private, no-cache"})


def from_entry(entry: Entry) -> Response:
    return Response(
        entry.body,
        status_code=entry.status,
        headers={"ETag": entry.etag, "Cache-Control": "private, no-cache"},
        media_type=entry.content_type,
    )


class ResponseCache:
    """Per-process answers to ``settings`` operations; see the module docstring."""

    def __init__(self, services: Services, plugins: Any, documents: DocumentStore) -> None:
        self.services = services
        self.plugins = plugins
        #: the app's parsed documents; a longer text than it keeps
        #: (MAX_DOCUMENT_CHARS) is not planned: it is never cached
        self.documents = documents
        self.answers: LRU[tuple[Any, ...], Entry] = LRU(MAX_ENTRIES)
        self.size = 0
        #: tenant id -> the data version this process last answered it at
        self._seen: dict[int, int] = {}
        self.hits = 0
        self.misses = 0
        #: reads the tenants' committed data versions (core.store.version_reader)
        self.versions = VersionReader(services.engine)

    # -- planning ---------------------------------------------------------------
    def plan(self, state: RequestState, principal: Principal) -> Plan | None:
        """The request's plan, or None when it is not one cacheable operation."""
        operations = state.operations
        if state.batch or len(operations) != 1:
            return None
        params = operations[0]
        query = params.get("query")
        if not isinstance(query, str) or len(query) > MAX_DOCUMENT_CHARS:
            return None
        name = params.get("operationName")
        variables = params.get("variables") or {}
        document = self.documents.parsed(query)
        operation = _pick(document, name) if document is not None else None
        if operation is None:
            return None
        digest = hashlib.blake2b(query.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        tenants: list[str] = []
        for selection in operation.selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.name.value not in CACHEABLE_ROOTS:
                return None
            if selection.name.value != "settings":
                continue
            tenant = _tenant_argument(selection, variables)
            if tenant is None or "\x00" in tenant:
                return None  # (a NUL is refused by the schema, with its own code)
            tenants.append(tenant)
        if not tenants:
            return None
        try:
            canonical = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        scope = (principal.role.value, principal.name, tuple(sorted(principal.tenants)))
        rest = (name, canonical, state.media_type, scope)
        return Plan(digest, tuple(dict.fromkeys(tenants)), rest)

    # -- looking up and storing -------------------------------------------------
    async def lookup(self, plan: Plan) -> Lookup | None:
        """One statement: the tenants' versions; then the entry, if kept. None
        when a tenant does not exist (the error answer is not cached)."""
        versions = await self.versions.read(plan.tenants)
        if len(versions) != len(plan.tenants):
            return None
        key = (plan.document, *plan.rest, tuple(versions[t] for t in plan.tenants))
        entry = self.answers.get(key)
        if entry is None:
            self.misses += 1
            self._refresh(versions)
        else:
            self.hits += 1
        return Lookup(key, versions, entry)

    async def close(self) -> None:
        await self.versions.aclose()

    def _refresh(self, versions: Mapping[str, tuple[int, int]]) -> None:
        """A tenant's version moved since this process last answered it: re-read
        the customizations enabled for it before answering (another worker's
        enablement may have committed before its NOTIFY arrived here)."""
        refresh = getattr(self.plugins, "refresh_enabled", None)
        stale = [tid for tid, version in versions.values() if self._seen.get(tid) != version]
        if stale and refresh is not None:
            refresh()
        for tid, version in versions.values():
            self._seen[tid] = version

    async def store(self, lookup: Lookup, response: Response) -> Entry | None:
        """Keep ``response`` (a complete 200 answer without errors) when every
        customization enabled for its tenants is pure."""
        body = getattr(response, "body", None)
        if response.status_code != 200 or not isinstance(body, bytes | bytearray):
            return None
        cacheable = getattr(self.plugins, "cacheable", None)
        for tenant in lookup.tenants:
            if cacheable is None or not await cacheable(tenant):
                return None
        entry = Entry(
            bytes(body),
            response.status_code,
            response.headers.get("content-type", "application/json"),
            etag_of(bytes(body)),
        )
        if len(entry.body) > MAX_BYTES // 8:
            return entry
        self.size += len(entry.body)
        evicted = self.answers.put(lookup.key, entry)
        if evicted is not None:
            self.size -= len(evicted.body)
        while self.size > MAX_BYTES:
            oldest = self.answers.pop_oldest()
            if oldest is None:
                break
            self.size -= len(oldest.body)
        return entry


def _pick(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        chosen = operations[0] if len(operations) == 1 else None
    else:
        named = [o for o in operations if o.name is not None and o.name.value == name]
        chosen = named[0] if len(named) == 1 else None
    if chosen is None or chosen.operation is not OperationType.QUERY:
        return None
    return chosen


def _tenant_argument(field: FieldNode, variables: Mapping[str, Any]) -> str | None:
    for argument in field.arguments or ():
        if argument.name.value != "tenant":
            continue
        value = argument.value
        if isinstance(value, StringValueNode):
            return value.value
        if isinstance(value, VariableNode):
            found = variables.get(value.name.value)
            return found if isinstance(found, str) else None
    return None
