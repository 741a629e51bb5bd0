"""Front-end apps as values: an app of one tenant, its trusted (persisted)
documents stored by the sha256 of their text, and the OFREP flag keys it declared.

A document id is ``sha256:<hex>`` (the GraphQL-over-HTTP persisted documents
proposal); Apollo's ``extensions.persistedQuery.sha256Hash`` is the bare hex."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.model.customizations import SLUG_PATTERN
from core.model.definitions import KEY_PATTERN
from core.model.errors import InvalidInputError, NotFoundError

#: the prefix of a document id (GraphQL-over-HTTP persisted documents)
DOCUMENT_ID_PREFIX = "sha256:"
_HEX = re.compile(r"^[0-9a-f]{64}$")
#: documents an app may hold; a document's length (characters)
MAX_OPERATIONS = 1000
MAX_DOCUMENT_CHARS = 100_000
#: flag keys an app may declare
MAX_FLAGS = 10_000
_LIST_HINT = "list the apps you may see: tailor app list"


#: checks stored documents against Tailor's schema: sha256 -> text in, sha256 ->
#: why it does not validate out (only the invalid ones); the API layer's
#: ``api.graphql.trusted.schema_check`` (core knows no GraphQL)
DocumentCheck = Callable[[Mapping[str, str]], Mapping[str, Sequence[str]]]


def document_hash(text: str) -> str:
    """The hex sha256 of a document's text (UTF-8), as Apollo's clients compute it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def document_id(sha256: str) -> str:
    return DOCUMENT_ID_PREFIX + sha256


def parse_hash(value: object, field: str) -> str:
    """The hex sha256 of a ``documentId`` (``sha256:<hex>``) or of Apollo's
    ``sha256Hash`` (bare hex), refused clearly otherwise."""
    if not isinstance(value, str):
        raise InvalidInputError(field, "must be a string 'sha256:<64 hex digits>'")
    text = value[len(DOCUMENT_ID_PREFIX) :] if value.startswith(DOCUMENT_ID_PREFIX) else value
    if field == "documentId" and not value.startswith(DOCUMENT_ID_PREFIX):
        raise InvalidInputError(
            field, f"{value[:80]!r} is not a document id: send 'sha256:<64 hex digits>'"
        )
    if not _HEX.match(text.lower()):
        raise InvalidInputError(
            field, f"{value[:80]!r} is not a sha256: expected 64 hexadecimal digits"
        )
    return text.lower()


def app_name(name: str) -> str:
    """An app's name: a slug like a tenant's (``shop-web``)."""
    if not isinstance(name, str) or not SLUG_PATTERN.match(name):
        raise InvalidInputError(
            "name",
            f"{str(name)[:80]!r} is not an app name: 2-63 characters, lowercase letters, "
            "digits and '-', starting with a letter (e.g. shop-web)",
        )
    return name


def flag_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """Declared OFREP flag keys: setting keys, each once, refused clearly."""
    found = tuple(dict.fromkeys(k.strip() for k in keys))
    if not found:
        raise InvalidInputError("keys", "name at least one setting key")
    bad = [k for k in found if not KEY_PATTERN.match(k)]
    if bad:
        raise InvalidInputError(
            "keys", f"{bad[0][:80]!r} is not a setting key (dotted, e.g. billing.invoice.rounding)"
        )
    if len(found) > MAX_FLAGS:
        raise InvalidInputError("keys", f"at most {MAX_FLAGS} flag keys per app")
    return found


def app_not_found(name: str) -> NotFoundError:
    """One answer for an app that does not exist and one outside the caller's scope."""
    return NotFoundError("app", name, _LIST_HINT)


@dataclass(frozen=True)
class PushedOperation:
    """One operation of a pushed document, as the API layer parsed it: its own
    text (the operation and the fragments it uses) and the literal ``keys:`` and
    ``prefix:`` arguments of its ``settings`` fields."""

    name: str | None
    document: str
    keys: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    sha256: str
    name: str | None
    document: str
    keys: tuple[str, ...]
    prefixes: tuple[str, ...]
    pushed_by: str
    pushed_at: datetime

    @property
    def id(self) -> str:
        return document_id(self.sha256)


@dataclass(frozen=True)
class App:
    name: str
    tenant: str
    trusted_only: bool
    flags: tuple[str, ...]
    operations: tuple[Operation, ...]
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class PushResult:
    app: App
    #: the pushed operations, each with whether this push stored it (False: known)
    operations: tuple[tuple[Operation, bool], ...]
