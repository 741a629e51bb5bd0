"""Web origins (``scheme://host[:port]``), as browsers send them in ``Origin``:
the cross-origin callers an ``app`` token allows (CORS)."""

from __future__ import annotations

from urllib.parse import urlsplit

from core.model.errors import InvalidInputError

#: ports a browser leaves out of an Origin header
DEFAULT_PORTS = {"http": 80, "https": 443}
#: origins one token may allow
MAX_ORIGINS = 32


def parse_origin(text: str) -> str:
    """The origin ``text`` names, as a browser writes it (lower case, no default
    port), or a clear refusal: a scheme (http or https) and a host, nothing else."""
    hint = "give an origin such as https://shop.example or http://localhost:3000"
    raw = text.strip()
    if raw in ("*", "null"):
        raise InvalidInputError("origin", f"{raw!r} is not allowed: name each origin; {hint}")
    if not raw.isascii():
        raise InvalidInputError("origin", f"{raw!r}: write the host in ASCII (punycode); {hint}")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError("origin", f"{raw!r} is not an origin ({exc}); {hint}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidInputError("origin", f"{raw!r}: the scheme must be http or https; {hint}")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise InvalidInputError("origin", f"{raw!r} has no host (or has user info); {hint}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInputError(
            "origin", f"{raw!r} has a path, query or fragment: an origin has none; {hint}"
        )
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    shown_port = "" if port is None or port == DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def parse_origins(texts: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Several origins, each parsed, duplicates dropped, at most MAX_ORIGINS."""
    origins = tuple(dict.fromkeys(parse_origin(t) for t in texts))
    if len(origins) > MAX_ORIGINS:
        raise InvalidInputError(
            "origin", f"at most {MAX_ORIGINS} origins per token, not {len(origins)}"
        )
    return origins
