"""Sign-in state of a console request: the session cookie and CSRF checks.

- ``tailor_session``: the session secret (random; the server stores its hash),
  HttpOnly, SameSite=Strict, Path=/console, Secure over HTTPS. The API token
  itself is posted once in a form body and never stored in the browser.
- Forms carry the session's CSRF token; a POST without the right one, or from
  another origin, is refused and changes nothing.
- The sign-in form itself (no session yet) uses a double-submit token in a
  short-lived cookie of its own.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from core.store.web_sessions import SignedIn

COOKIE = "tailor_session"
SIGNIN_CSRF_COOKIE = "tailor_signin_csrf"
PATH = "/console"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, secret: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, httponly=True, samesite="strict", secure=is_https(request)
    )


def new_signin_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_signin_csrf(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SIGNIN_CSRF_COOKIE,
        token,
        max_age=600,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def same_origin(request: Request) -> bool:
    """A browser POST names its origin; it must be this server's."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.url.scheme}://{request.url.netloc}"


def csrf_ok(request: Request, sent: str | None, signed_in: SignedIn) -> bool:
    return bool(sent) and same_origin(request) and secrets.compare_digest(str(sent), signed_in.csrf)


def signin_csrf_ok(request: Request, sent: str | None) -> bool:
    expected = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
    return (
        bool(sent)
        and bool(expected)
        and same_origin(request)
        and secrets.compare_digest(str(sent), expected)
    )
