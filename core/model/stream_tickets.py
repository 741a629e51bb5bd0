"""Stream tickets: what the URL of an OFREP event stream carries instead of a
bearer token (a browser's ``EventSource`` sends no ``Authorization`` header, and
the token must stay out of every URL).

A ticket admits one read-only stream of change notifications for **one tenant**
(and optionally one environment), on behalf of **one token**, until it expires.
It is ``<payload>.<mac>`` (both unpadded base64url): the payload is the JSON
array ``[1, token id, tenant, environment or null, expiry in Unix seconds]`` and
the MAC is HMAC-SHA256 (first :data:`MAC_BYTES` bytes) of the payload, keyed by
the token's stored hash (SHA-256 of its secret, :func:`core.store.tokens.hash_token`)
under this module's domain label.

Why keyed by the token's hash, and not a key of its own or a row per ticket:

- **Two nodes that share only the database accept each other's tickets**: the
  key of every ticket is in the ``api_tokens`` row a node reads anyway to check
  the token is still active (one statement when a stream opens); there is no
  other key to create, distribute, rotate or keep in step between nodes, and no
  migration.
- **No write per request**: a bulk evaluation mints its ticket without a
  statement (the request's own bearer secret hashes to the key), so the warm
  bulk path stays at one statement. A row per ticket would cost an insert on
  every evaluation, and a table to prune.
- **Revoking the token revokes its tickets**, and a token's expiry bounds them:
  the token row is what a stream is admitted by, and re-checked against while it
  runs.
- **Forging one needs the token's hash**: only the database and the token's
  holder (who can hash the secret) have it, and the holder gains nothing (the
  ticket grants less than the token: "something changed" for one tenant). A
  ticket cannot be moved to another tenant, environment or token: those are in
  the MAC.

The expiry is deterministic (:func:`expiry_for`: the end of the next
:data:`WINDOW_SECONDS` window), so the bulk answer, and its ETag, stay the same
for one token within a window: conditional requests keep getting 304, and a
new ticket comes with a new ETag (a provider holding an expired ticket gets a
full answer with a fresh URL, never a 304 that keeps the old one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from dataclasses import dataclass

import orjson

from core.model.auth import Principal
from core.model.errors import AuthenticationError

#: the format's version, the payload's first element
VERSION = 1
#: tickets are minted for windows this long; one lives between one and two windows
WINDOW_SECONDS = 300
#: bytes of the HMAC kept (128 bits)
MAC_BYTES = 16
#: the longest ticket accepted (a longer query value is refused before parsing)
MAX_TICKET_LENGTH = 2048
_DOMAIN = b"tailor:ofrep-stream-ticket:v1:"
#: what a refused ticket's holder should do
RENEW = "fetch the bulk evaluation again (POST /ofrep/v1/evaluate/flags) for a new eventStreams URL"


@dataclass(frozen=True)
class Ticket:
    token_id: int
    tenant: str
    environment: str | None
    #: Unix seconds
    expires: int
    payload: bytes
    mac: bytes

    def expired(self, now: float) -> bool:
        return self.expires <= now


def expiry_for(now: float) -> int:
    """A ticket minted at ``now`` expires at the end of the next window: between
    :data:`WINDOW_SECONDS` and twice that from now, the same for the whole window."""
    return (math.floor(now) // WINDOW_SECONDS + 2) * WINDOW_SECONDS


def token_id_of(principal: Principal) -> int | None:
    """The id of the API token behind ``principal`` (None: the operator, a console
    session without one)."""
    kind, _, number = principal.identity.partition(":")
    return int(number) if kind == "token" and number.isdigit() else None


def _mac(token_hash: str, payload: bytes) -> bytes:
    key = _DOMAIN + token_hash.encode("ascii")
    return hmac.new(key, payload, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(token_id: int, token_hash: str, tenant: str, environment: str | None, expires: int) -> str:
    """The ticket of token ``token_id`` (whose stored hash is ``token_hash``) for
    ``tenant`` (and ``environment``), valid until ``expires`` (Unix seconds)."""
    payload = orjson.dumps([VERSION, token_id, tenant, environment, expires])
    return f"{_b64(payload)}.{_b64(_mac(token_hash, payload))}"


def parse(text: str) -> Ticket:
    """The ticket ``text`` carries, unverified (:func:`verify` checks its MAC), or
    an :class:`AuthenticationError` saying it is not one."""
    refused = AuthenticationError(f"the stream ticket is malformed; {RENEW}")
    if not text or len(text) > MAX_TICKET_LENGTH or text.count(".") != 1:
        raise refused
    encoded, _, signature = text.partition(".")
    try:
        payload = _unb64(encoded)
        mac = _unb64(signature)
        fields = orjson.loads(payload)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise refused from None
    if not isinstance(fields, list) or len(fields) != 5 or fields[0] != VERSION:
        raise refused
    _, token_id, tenant, environment, expires = fields
    if (
        not isinstance(token_id, int)
        or not isinstance(tenant, str)
        or not (environment is None or isinstance(environment, str))
        or not isinstance(expires, int)
        or len(mac) != MAC_BYTES
    ):
        raise refused
    return Ticket(token_id, tenant, environment, expires, payload, mac)


def verify(ticket: Ticket, token_hash: str) -> None:
    """Refuse (:class:`AuthenticationError`) a ticket not minted with the key of
    the token it names: altered, or copied onto another token's id."""
    if not hmac.compare_digest(ticket.mac, _mac(token_hash, ticket.payload)):
        raise AuthenticationError(
            f"the stream ticket is not valid (altered, or not minted for this token); {RENEW}"
        )
