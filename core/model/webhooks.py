"""Webhooks as values and rules: which URLs may be called, how a delivery is
signed, what its body holds and when a failed one is tried again.

**Which addresses.** A webhook URL is ``http`` or ``https``, with no credentials
in it. Every address its host resolves to must be one Tailor may call: never
link-local (``169.254.0.0/16``, ``fe80::/10``), a cloud metadata address
(``169.254.169.254``, ``fd00:ec2::254``), unspecified, multicast or reserved; and
private or loopback addresses (``10/8``, ``172.16/12``, ``192.168/16``,
``100.64/10``, ``127/8``, ``fc00::/7``, ``::1``) only when
``TAILOR_WEBHOOK_ALLOW_PRIVATE`` is set. The rule is applied when a webhook is
created and again before each delivery (a name can move), and the delivery
connects to the address that was checked, never to a second lookup.

**Signing.** ``Tailor-Signature: t=<unix time>,v1=<hex HMAC-SHA256>`` where the
HMAC's key is the webhook's secret (as shown once at creation, UTF-8) and its
message ``"<t>." + body`` (the exact bytes received). See :func:`signature` and
the README's "Webhooks" for the receiver's recipe.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from core.model import config
from core.model.errors import InvalidInputError

ALLOW_PRIVATE_ENV = "TAILOR_WEBHOOK_ALLOW_PRIVATE"
RETENTION_ENV = "TAILOR_WEBHOOK_RETENTION_DAYS"
#: days the delivery log keeps an attempt
DEFAULT_RETENTION_DAYS = 14
SIGNATURE_HEADER = "Tailor-Signature"
DELIVERY_HEADER = "Tailor-Delivery"
#: attempts of one event before the webhook is paused (the first try included)
MAX_ATTEMPTS = 6
#: seconds before the second attempt; each later one waits twice as long
BACKOFF_SECONDS = 1.0
#: seconds a receiver has to connect and answer
TIMEOUT_SECONDS = 5.0
#: an event filter that matches every change
ALL_EVENTS = "*"
MAX_URL_LENGTH = 2000

_EVENT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _nets(*cidrs: str) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


METADATA = _nets("169.254.169.254/32", "fd00:ec2::254/128")
LINK_LOCAL = _nets("169.254.0.0/16", "fe80::/10")
LOOPBACK = _nets("127.0.0.0/8", "::1/128")
PRIVATE = _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
#: never callable, whatever the configuration
UNROUTABLE = _nets("0.0.0.0/8", "::/128", "224.0.0.0/4", "240.0.0.0/4", "ff00::/8")


def allow_private(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``TAILOR_WEBHOOK_ALLOW_PRIVATE`` is set (``1``, ``true``, ``yes``, ``on``)."""
    raw = (os.environ if environ is None else environ).get(ALLOW_PRIVATE_ENV, "")
    return raw.strip().lower() in ("1", "true", "yes", "on")


def address_refusal(address: str, *, private_allowed: bool) -> str | None:
    """Why Tailor may not call ``address`` (None: it may)."""
    ip: _Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in METADATA):
        return f"{ip} is a cloud metadata address"
    if any(ip in net for net in LINK_LOCAL):
        return f"{ip} is a link-local address"
    if any(ip in net for net in UNROUTABLE):
        return f"{ip} is not a unicast address"
    for nets, kind in ((LOOPBACK, "loopback"), (PRIVATE, "private")):
        if any(ip in net for net in nets):
            if private_allowed:
                return None
            return (
                f"{ip} is a {kind} address; the operator allows private and loopback "
                f"receivers with {ALLOW_PRIVATE_ENV}=1"
            )
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart."""

    url: str
    scheme: str
    host: str
    port: int
    #: path and query, as sent in the request line
    path: str


def parse_url(url: str) -> Target:
    """The URL's parts, or :class:`InvalidInputError` saying what is wrong."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidInputError("url", f"give an http(s) URL of at most {MAX_URL_LENGTH} chars")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError("url", f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidInputError(
            "url", f"only http and https URLs are called; {scheme or 'no scheme'!r} given"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(
            "url", "credentials in the URL are not accepted; verify deliveries by signature"
        )
    if not parts.hostname:
        raise InvalidInputError("url", "the URL names no host")
    if parts.fragment:
        raise InvalidInputError("url", "a URL fragment is never sent; remove '#...'")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        url=url,
        scheme=scheme,
        host=parts.hostname,
        port=port or (443 if scheme == "https" else 80),
        path=path,
    )


Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system's resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_address(
    target: Target, *, private_allowed: bool, resolver: Resolver = system_resolver
) -> str:
    """The address to connect to for ``target``: its host resolved, and every
    address checked (:func:`address_refusal`); refused with
    :class:`InvalidInputError` when any one may not be called or none is found."""
    try:
        addresses = [str(ipaddress.ip_address(target.host))]
    except ValueError:
        try:
            addresses = list(await resolver(target.host, target.port))
        except OSError as exc:
            raise InvalidInputError(
                "url", f"host {target.host!r} does not resolve ({exc})"
            ) from None
    if not addresses:
        raise InvalidInputError("url", f"host {target.host!r} resolves to no address")
    for address in addresses:
        refusal = address_refusal(address, private_allowed=private_allowed)
        if refusal is not None:
            raise InvalidInputError("url", f"{target.host!r} resolves to {refusal}; refused")
    return addresses[0]


def check_events(events: Sequence[str]) -> tuple[str, ...]:
    """The event filter: change feed actions (``set``, ``reset``, ...), or ``*``
    (also the meaning of an empty list) for every change."""
    cleaned = tuple(dict.fromkeys(e.strip() for e in events))
    if not cleaned or ALL_EVENTS in cleaned:
        return ()
    bad = [e for e in cleaned if not _EVENT.match(e)]
    if bad:
        raise InvalidInputError(
            "events",
            f"{bad[0]!r} is not a change feed action (lower-case letters, digits and _, "
            "e.g. set, reset); give [] or ['*'] for every change",
        )
    return cleaned


def body(
    *,
    delivery: str,
    sequence: int,
    tenant: str | None,
    environment: str | None,
    keys: Sequence[str],
    action: str,
    actor: str,
    at: datetime,
) -> bytes:
    """The JSON a delivery posts: one change of the feed (see the README)."""
    document: dict[str, Any] = {
        "delivery": delivery,
        "sequence": sequence,
        "tenant": tenant,
        "environment": environment,
        "keys": list(keys),
        "action": action,
        "actor": actor,
        "at": at.isoformat(),
    }
    return orjson.dumps(document)


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """The ``Tailor-Signature`` header value for ``payload`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(failed_attempts: int, base: float = BACKOFF_SECONDS) -> float:
    """Seconds to wait after the ``failed_attempts``-th failure: base, 2 x base, ..."""
    return base * (2 ** max(failed_attempts - 1, 0))


def retention_days(environ: Mapping[str, str] | None = None) -> int:
    """``TAILOR_WEBHOOK_RETENTION_DAYS`` (a positive integer), else the default."""
    return config.retention_days(RETENTION_ENV, DEFAULT_RETENTION_DAYS, environ)
