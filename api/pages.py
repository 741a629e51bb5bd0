"""Web pages: the upgrade readiness page for release managers.

``GET /readiness?target=V[&tenant=T...]`` renders :class:`core.readiness.ReadinessReport`
as one self-contained HTML page (no scripts, no external assets). The caller
authenticates exactly as for ``/graphql``: ``Authorization: Bearer <token>``.
Tokens are never accepted in the URL (URLs end up in access logs, browser history
and Referer headers); without the header the page answers 401 and explains how
to send it. Every value from the database or the request is HTML-escaped.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from api.bearer import bearer_principal
from core.auth import Principal
from core.errors import (
    AuthenticationError,
    DatabaseError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    TailorError,
)
from core.readiness import ReadinessReport, Severity
from core.services import Services

log = logging.getLogger("tailor.http")

#: no scripts, no external anything; inline styles only
HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Authorization",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
}

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin-top: .5rem; }
th, td { border: 1px solid #d0d0d5; padding: .3rem .55rem; text-align: left;
         vertical-align: top; }
th { background: #f3f3f6; } td.n { text-align: right; }
.muted { color: #666; } code, pre { font-family: ui-monospace, monospace; }
pre { background: #f3f3f6; padding: .75rem; overflow-x: auto; }
.counts span { display: inline-block; margin-right: 1.25rem; }
.ready, .compatible { color: #17702b; } .ready_with_warnings, .needs_update,
.warning { color: #8a5a00; } .blocked, .incompatible, .blocker { color: #b00020;
font-weight: 600; } .obsolete, .info { color: #0b5c8a; } .unknown { color: #7a2b8a; }
"""


def e(value: object) -> str:
    """HTML-escape anything shown on a page."""
    return html.escape(str(value), quote=True)


def page(
    title: str, body: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """``title`` and ``body`` are HTML already (escape data before)."""
    text = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
    return HTMLResponse(text, status_code=status, headers={**HEADERS, **(headers or {})})


def table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """A table of cells that are HTML already."""
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>\n"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>"


def status(value: str) -> str:
    return f'<span class="{e(value)}">{e(value)}</span>'


def target_link(version: str, tenants: Sequence[str] = ()) -> str:
    query = urlencode([("target", version), *(("tenant", t) for t in tenants)])
    return f'<a href="?{e(query)}">{e(version)}</a>'


def render_report(report: ReadinessReport, releases: Sequence[str] = ()) -> str:
    counts = report.counts
    total = len(report.tenants)
    parts = [
        f"<h1>Upgrade readiness: {e(report.target)} "
        f'<span class="muted">({e(report.target_status)})</span></h1>',
        '<p class="counts">'
        f"<span>{total} tenant(s)</span>"
        f'<span class="ready">{counts["ready"]} ready</span>'
        f'<span class="ready_with_warnings">{counts["ready_with_warnings"]} ready with '
        "warnings</span>"
        f'<span class="blocked">{counts["blocked"]} blocked</span></p>',
    ]
    custom_counts = report.customization_counts
    if report.customizations:
        parts.append(
            '<p class="counts">'
            f"<span>{len(report.customizations)} customization(s)</span>"
            + "".join(
                f'<span class="{e(name)}">{n} {e(name.replace("_", " "))}</span>'
                for name, n in custom_counts.items()
                if n
            )
            + "</p>"
        )
    if releases:
        others = [target_link(v) for v in releases if v != report.target]
        if others:
            parts.append(f'<p class="muted">Other releases: {", ".join(others)}</p>')

    parts.append("<h2>Tenants</h2>")
    if report.tenants:
        parts.append(
            table(
                ("tenant", "release", "status", "blockers", "warnings", "customizations"),
                (
                    (
                        e(t.tenant),
                        e(t.current_release),
                        status(t.status.value),
                        str(t.count(Severity.BLOCKER)),
                        str(t.count(Severity.WARNING) + t.count(Severity.UNKNOWN)),
                        e(", ".join(t.customizations)),
                    )
                    for t in report.tenants
                ),
                numeric=(3, 4),
            )
        )
    else:
        parts.append('<p class="muted">No tenants in your scope.</p>')

    parts.append("<h2>Findings</h2>")
    findings = [(t.tenant, f) for t in report.tenants for f in t.findings]
    if findings:
        parts.append(
            table(
                ("tenant", "severity", "code", "subject", "message", "action"),
                (
                    (
                        e(tenant),
                        status(f.severity.value),
                        f"<code>{e(f.code.value)}</code>",
                        f'<span class="muted">{e(f.subject_kind)}</span> {e(f.subject)}',
                        e(f.message),
                        e(f.action),
                    )
                    for tenant, f in findings
                ),
            )
        )
    else:
        parts.append('<p class="muted">No findings.</p>')

    parts.append("<h2>Customizations</h2>")
    if report.customizations:
        parts.append(
            table(
                (
                    "customization",
                    "version",
                    "capability",
                    "status",
                    "level",
                    "enabled for",
                    "codes",
                ),
                (
                    (
                        e(c.name),
                        e(c.version),
                        e(c.capability or ""),
                        status(c.status.value),
                        e(c.level),
                        e(", ".join(c.enabled_for)),
                        e(", ".join(sorted({f.code.value for f in c.findings}))),
                    )
                    for c in report.customizations
                ),
            )
        )
        parts.append(
            '<p class="muted">Levels: A = stable hooks only, B = deprecated hooks, '
            "C = experimental hooks, D = refused or unverifiable.</p>"
        )
    else:
        parts.append('<p class="muted">No customizations enabled for these tenants.</p>')

    parts.append("<h2>Unblock plan</h2>")
    if report.plan:
        parts.append('<p class="muted">Fix in this order: each step unblocks the most tenants.</p>')
        parts.append(
            table(
                (
                    "#",
                    "fix",
                    "codes",
                    "blocks",
                    "blocked tenants",
                    "unblocks alone",
                    "in order",
                    "cumulative",
                ),
                (
                    (
                        str(s.rank),
                        f'<span class="muted">{e(s.subject_kind)}</span> {e(s.subject)}',
                        e(", ".join(s.codes)),
                        str(s.blocks),
                        e(_some(s.blocked_tenants)),
                        str(s.unblocks_alone),
                        str(s.unblocks_in_order),
                        str(s.cumulative_unblocked),
                    )
                    for s in report.plan
                ),
                numeric=(0, 3, 5, 6, 7),
            )
        )
    else:
        parts.append('<p class="muted">Nothing blocks an upgrade: no plan needed.</p>')
    return "\n".join(parts)


#: blocked tenants listed per plan step (the count is always shown)
MAX_LISTED = 12


def _some(names: Sequence[str]) -> str:
    if len(names) <= MAX_LISTED:
        return ", ".join(names)
    return ", ".join(names[:MAX_LISTED]) + f" and {len(names) - MAX_LISTED} more"


def unauthorized(request: Request, message: str) -> Response:
    # only the page's own parameters: never echo anything else (a token tried in the URL)
    params = [(k, v) for k, v in request.query_params.multi_items() if k in ("target", "tenant")]
    example = str(request.url.replace(query=urlencode(params or [("target", "3.0")])))
    body = (
        "<h1>Authentication needed</h1>"
        f"<p>{e(message)}.</p>"
        "<p>This page takes the same bearer token as <code>/graphql</code>, in the "
        "<code>Authorization</code> header. Tokens are never accepted in the URL (URLs "
        "end up in logs and browser history). For example:</p>"
        '<pre>curl -H "Authorization: Bearer $TAILOR_TOKEN" '
        f'"{e(example)}" &gt; readiness.html</pre>'
        '<p class="muted">Create a token with <code>tailor token create</code> '
        "(role release_manager or admin). In a browser, use an extension that sets "
        "request headers.</p>"
    )
    return page("Authentication needed", body, 401, {"WWW-Authenticate": "Bearer"})


def problem(title: str, message: str, status_code: int, extra: str = "") -> Response:
    return page(e(title), f"<h1>{e(title)}</h1><p>{e(message)}</p>{extra}", status_code)


class ReadinessPage:
    """``GET /readiness``: the readiness report of one target release."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, request: Request) -> Response:
        try:
            principal = await bearer_principal(self.services, request.headers.get("authorization"))
        except AuthenticationError as exc:
            return unauthorized(request, exc.message)
        except (DatabaseError, SQLAlchemyError, OSError) as exc:
            log.error("database unavailable: %s", exc)
            return problem("Unavailable", "The database is unavailable; try again shortly.", 503)
        # the access log records who asked (never the token)
        request.scope.setdefault("state", {})["principal"] = principal
        try:
            return await self._render(request, principal)
        except (DatabaseError, SQLAlchemyError, OSError) as exc:
            log.error("database unavailable: %s", exc)
            return problem("Unavailable", "The database is unavailable; try again shortly.", 503)

    async def _render(self, request: Request, principal: Principal) -> Response:
        target = request.query_params.get("target", "").strip()
        tenants = [t for t in request.query_params.getlist("tenant") if t] or None
        try:
            if not target:
                releases = await self._releases(principal)
                return problem(
                    "Choose a target release",
                    "Pass the release to check as ?target=VERSION.",
                    400,
                    self._release_links(releases, tenants or ()),
                )
            report = await self.services.readiness.readiness(principal, target, tenants)
        except NotFoundError as exc:
            links = ""
            if exc.kind == "release":
                links = self._release_links(await self._releases(principal), tenants or ())
            return problem("Not found", exc.message, 404, links)
        except PermissionDeniedError as exc:
            return problem("Permission denied", exc.message, 403)
        except InvalidInputError as exc:
            return problem("Invalid request", exc.message, 400)
        except DatabaseError:
            raise
        except TailorError as exc:
            return problem("Cannot show readiness", exc.message, 400)
        releases = await self._releases(principal)
        body = render_report(report, releases)
        return page(f"Readiness for {e(report.target)}", body)

    async def _releases(self, principal: Principal) -> list[str]:
        return [
            r.version
            for r in sorted(await self.services.releases.list(principal), key=lambda r: r.parsed)
        ]

    @staticmethod
    def _release_links(releases: Sequence[str], tenants: Sequence[str]) -> str:
        if not releases:
            return '<p class="muted">No releases are registered.</p>'
        links = ", ".join(target_link(v, tenants) for v in releases)
        return f"<p>Known releases: {links}</p>"
