"""The bearer token of a request, resolved to a :class:`Principal` (shared by
``/graphql`` and the web pages: tokens travel in the Authorization header only,
never in a URL, so they never reach an access log)."""

from __future__ import annotations

from core.model.auth import Principal
from core.model.errors import AuthenticationError
from core.store.services import Services

MISSING_TOKEN = (
    "missing bearer token: send 'Authorization: Bearer <token>' "
    "(create one with 'tailor token create')"
)


async def bearer_principal(services: Services, header: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer <token>`` header value."""
    header = header or ""
    scheme, _, secret = header.partition(" ")
    if not header:
        raise AuthenticationError(MISSING_TOKEN)
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    return await services.tokens.authenticate(secret.strip())
