"""The CLI against a remote Tailor: ``--url`` (or ``TAILOR_URL``) with a token.

A consultant publishes, pins and inspects customizations from their own machine,
with the token their Tailor administrator gave them. The token is read from
``TAILOR_TOKEN`` or from a file (``--token-file``); ``--token`` works too, but a
token given as a flag shows in ``ps`` and in shell history, so the CLI says so.

Requests are GraphQL over HTTP (``application/json``), and the GraphQL multipart
request (``multipart/form-data``) for uploads, sent with the standard library: the
CLI carries no HTTP client of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

T = TypeVar("T")

URL_ENV = "TAILOR_URL"
TOKEN_ENV = "TAILOR_TOKEN"

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar=URL_ENV,
        help="A Tailor server (e.g. https://tailor.example.com): act on it instead of a "
        "local database, with the token from TAILOR_TOKEN or --token-file.",
        show_envvar=True,
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="A file holding the token for --url (first line). Or set TAILOR_TOKEN.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="The token for --url. It shows in 'ps' and shell history: prefer TAILOR_TOKEN "
        "or --token-file.",
        show_default=False,
    ),
]

#: seconds one request may take (publishing checks the code in a worker)
TIMEOUT = 60.0


class RemoteError(Exception):
    """The server could not be reached, or refused the request (its message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Remote:
    url: str
    token: str

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + "/graphql"

    def call(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        upload: tuple[str, str, bytes] | None = None,
    ) -> dict[str, Any]:
        """Run one operation; answers its ``data``. ``upload``: (variable name, file
        name, content) sent as a GraphQL multipart request."""
        variables = dict(variables or {})
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/graphql-response+json, application/json",
        }
        if upload is None:
            body = json.dumps({"query": query, "variables": variables}).encode()
            headers["Content-Type"] = "application/json"
        else:
            name, filename, content = upload
            variables[name] = None
            body, content_type = _multipart(
                {
                    "operations": json.dumps({"query": query, "variables": variables}),
                    "map": json.dumps({"0": [f"variables.{name}"]}),
                },
                ("0", filename, content),
            )
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if not raw.lstrip().startswith(b"{"):
                raise RemoteError(f"{self.endpoint} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"cannot reach {self.endpoint}: {reason}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise RemoteError(f"{self.endpoint} did not answer GraphQL (JSON)") from None
        errors = answer.get("errors")
        if errors:
            raise RemoteError("; ".join(str(e.get("message", e)) for e in errors))
        data = answer.get("data")
        if not isinstance(data, dict):
            raise RemoteError(f"{self.endpoint} answered no data")
        return data


def expect(result: dict[str, Any], typename: str) -> dict[str, Any]:
    """A union result: the success type, or its typed error as a :class:`RemoteError`."""
    if result.get("__typename") != typename:
        raise RemoteError(f"{result.get('code', 'ERROR')}: {result.get('message', result)}")
    return result


def _multipart(fields: dict[str, str], file: tuple[str, str, bytes]) -> tuple[bytes, str]:
    boundary = "tailor-" + secrets.token_hex(16)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    field, filename, content = file
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: application/zip\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def remote(url: str | None, token: str | None, token_file: Path | None) -> Remote | None:
    """The remote server a command acts on (None: the local database). Refuses a
    URL without a token, and says so when the token came as a flag."""
    if not url:
        if token or token_file:
            raise typer.BadParameter("a token is for --url (or TAILOR_URL); no URL was given")
        return None
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http:// or https:// URL", param_hint="--url")
    if token_file is not None:
        try:
            lines = token_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot read {token_file}: {exc.strerror}", param_hint="--token-file"
            ) from None
        token = lines[0].strip() if lines else ""
    elif token:
        typer.echo(
            "warning: a token given with --token shows in 'ps' and shell history; "
            f"use {TOKEN_ENV} or --token-file",
            err=True,
        )
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise typer.BadParameter(
            f"--url needs a token: set {TOKEN_ENV} or pass --token-file FILE", param_hint="--url"
        )
    return Remote(url, token)


def refuse_while_remote(command: str) -> None:
    """A command that acts on a local database refuses to run while ``TAILOR_URL``
    is set, rather than silently acting on a database the user did not mean."""
    if os.environ.get(URL_ENV, "").strip():
        typer.echo(
            f"error: 'tailor {command}' acts on a local database, but {URL_ENV} is set "
            f"({os.environ[URL_ENV].strip()}); unset {URL_ENV} to run it here",
            err=True,
        )
        raise typer.Exit(2)


def run_remote(call: Callable[[], T]) -> T:
    """Run a remote call; a refusal or an unreachable server prints the reason and
    exits with status 2, as local errors do."""
    try:
        return call()
    except RemoteError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
