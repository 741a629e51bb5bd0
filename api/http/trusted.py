"""Trusted (persisted) documents on ``/graphql``: a request may send
``documentId: "sha256:<hex>"`` (the GraphQL-over-HTTP persisted documents
proposal) or Apollo's ``extensions.persistedQuery.sha256Hash`` instead of the
query text; this step puts the stored text in its place before the request is
priced and run, and refuses free text from an app whose tokens run only its
registered documents. At most two statements a request, none once the
documents and the app's trusted set are remembered (:mod:`core.store.apps`)."""

from __future__ import annotations

from typing import Any

from core.model.apps import document_hash, parse_hash
from core.model.auth import Principal
from core.model.errors import InvalidInputError
from core.store.apps import AppService

#: Apollo's code (and message) for an unknown ``sha256Hash``: its clients then
#: send the query text, with the hash
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
APOLLO_NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
#: an unknown ``documentId``
DOCUMENT_NOT_FOUND = "PERSISTED_DOCUMENT_NOT_FOUND"
#: free text (or another app's document) from a trusted-only app's token
DOCUMENT_NOT_TRUSTED = "DOCUMENT_NOT_TRUSTED"
BAD_REQUEST = "BAD_REQUEST"


class DocumentRefusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def requested_hash(params: dict[str, Any], where: str = "") -> tuple[str, bool] | None:
    """The hex sha256 a request names instead of (or beside) its text, and
    whether it came in Apollo's form; None when it names none."""
    try:
        if params.get("documentId") is not None:
            return parse_hash(params["documentId"], "documentId"), False
        extensions = params.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if isinstance(persisted, dict) and persisted.get("sha256Hash") is not None:
            return parse_hash(persisted["sha256Hash"], "extensions.persistedQuery.sha256Hash"), True
    except InvalidInputError as exc:
        raise DocumentRefusal(400, BAD_REQUEST, f"request{where}: {exc.message}") from None
    return None


async def resolve_documents(
    operations: list[dict[str, Any]], principal: Principal, apps: AppService
) -> bool:
    """Fill in each operation's ``query`` from the stored document it names;
    True when one was filled in (the body must be re-sent). Refuses an unknown
    id, a hash that is not the text's, and, for a trusted-only app's token,
    anything but its own documents."""
    named: list[tuple[dict[str, Any], str, bool]] = []
    for i, params in enumerate(operations):
        found = requested_hash(params, f"[{i}]" if len(operations) > 1 else "")
        if found is not None:
            named.append((params, *found))
    missing = {sha for params, sha, _ in named if params.get("query") is None}
    texts = await apps.documents(missing, principal) if missing else {}
    filled = False
    for params, sha, apollo in named:
        query = params.get("query")
        if query is not None:
            if document_hash(query) != sha:
                raise DocumentRefusal(
                    400,
                    BAD_REQUEST,
                    "provided sha does not match query: the hash is the "
                    "sha256 of the query text exactly as sent",
                )
            continue
        text = texts.get(sha)
        if text is None:
            if apollo:
                raise DocumentRefusal(200, PERSISTED_QUERY_NOT_FOUND, APOLLO_NOT_FOUND_MESSAGE)
            raise DocumentRefusal(
                400,
                DOCUMENT_NOT_FOUND,
                f"no stored document has id sha256:{sha}; push the app's operations "
                "(tailor app operations push APP FILE.graphql) or send the query text",
            )
        params["query"] = text
        filled = True
    if principal.app is not None:
        trusted = await apps.trusted_set(principal.app)
        if trusted is not None and trusted.trusted_only:
            for params in operations:
                if document_hash(params["query"]) not in trusted.hashes:
                    raise DocumentRefusal(
                        403,
                        DOCUMENT_NOT_TRUSTED,
                        f"app {principal.app!r} runs only its registered documents; push "
                        f"this one (tailor app operations push {principal.app} FILE.graphql) "
                        "and send its documentId",
                    )
    return filled
