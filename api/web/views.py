"""The console's pages and forms (see :mod:`api.web`).

Every page resolves the session cookie to a :class:`~core.model.auth.Principal` and
calls the same services, with the same principal, as ``/graphql`` does: role and
tenant scope apply exactly as there. Expected errors become pages that say what
was wrong (403, 404, 400); nothing here holds domain logic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from api.report import CONSOLE_SUMMARY, FULL, ReadinessView, release_matrix
from api.state import request_state
from api.web.charts import unblock_chart
from api.web.session import (
    COOKIE,
    SIGNIN_CSRF_COOKIE,
    clear_session_cookie,
    csrf_ok,
    new_signin_csrf,
    set_session_cookie,
    set_signin_csrf,
    signin_csrf_ok,
)
from api.web.sources import hook_source
from core.analysis.foldback import EvidenceKind
from core.analysis.readiness.vocabulary import Severity
from core.analysis.roadmap import EXPLANATION as ROADMAP_EXPLANATION
from core.analysis.roadmap import RoadmapStatus, candidate_id
from core.analysis.triage import SEVERITY_ORDER, VERBS, parse_finding_id
from core.analysis.usage import (
    NEVER_CALLED,
    NO_EFFECT,
    NOT_CALLED_RECENTLY,
    OVERRIDE_EQUALS_DEFAULT,
    OVERRIDE_UNREAD,
)
from core.model.auth import Principal, Role
from core.model.customizations import Registration, visible_customization
from core.model.errors import (
    ArchiveError,
    AuthenticationError,
    DatabaseError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    TailorError,
)
from core.model.manifest import PLANNED, ReleaseInfo, newest_release
from core.store.authorization import ChangeState
from core.store.services import Services
from core.store.web_sessions import SignedIn
from plugins.codemods import FixPlan, plan_fix_archive
from plugins.evidence import key_categories

log = logging.getLogger("tailor.http")

HERE = Path(__file__).parent
STATIC = HERE / "static"

#: the console's policy: scripts, styles and images only from Tailor itself; forms
#: only to Tailor; the page itself fetches nothing
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
}
#: GraphiQL's page: the console's policy, plus the queries it sends to /graphql
#: (``connect-src 'self'``) and the fonts its stylesheet embeds (``font-src data:``):
#: still no other host
GRAPHIQL_HEADERS = {
    **HEADERS,
    "Content-Security-Policy": CSP + "; connect-src 'self'; font-src data:",
}

Handler = Callable[[Request, SignedIn], Awaitable[Response]]

#: who reads change requests and the feed on the console, and who decides them
#: (the services check each request's own right again)
CHANGE_READERS = frozenset({Role.ADMIN, Role.RELEASE_MANAGER, Role.CONSULTANT})
CHANGE_DECIDERS = frozenset({Role.ADMIN, Role.CONSULTANT})
#: changes shown on a tenant's page
RECENT_CHANGES = 20


@dataclass(frozen=True)
class TriageForm:
    """A triage form as sent; when refused, the field at fault and why."""

    finding: str
    decision: str
    reason: str
    owner: str
    until: str
    field: str = ""
    error: str = ""


def _sort_releases(releases: Sequence[ReleaseInfo]) -> list[ReleaseInfo]:
    return sorted(releases, key=lambda r: r.parsed)


def default_target(releases: Sequence[ReleaseInfo]) -> str | None:
    """The newest planned release, else the newest release."""
    newest = newest_release(releases, PLANNED) or newest_release(releases)
    return newest.version if newest is not None else None


def _form_text(form: Any) -> Callable[[str], str]:
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    return text


def _item_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError("item", f"{value!r} is not a roadmap item id") from None


class Console:
    def __init__(self, services: Services, installed: Callable[[], Sequence[Any]]) -> None:
        self.services = services
        #: the plugin runtime's installed customizations (for source evidence)
        self.installed = installed
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["severities"] = [s.value for s in SEVERITY_ORDER]
        self.templates.env.globals["verbs"] = list(VERBS)

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/sign-in", self.sign_in_page, methods=["GET"]),
            Route("/sign-in", self.sign_in, methods=["POST"]),
            Route("/sign-out", self.guard(self.sign_out), methods=["POST"]),
            Route("/fleet", self.guard(self.fleet), methods=["GET"]),
            Route("/runs", self.guard(self.keep_run), methods=["POST"]),
            Route("/tenants/{slug}", self.guard(self.tenant), methods=["GET"]),
            Route("/triage", self.guard(self.triage), methods=["POST"]),
            Route("/customizations/{name}", self.guard(self.customization), methods=["GET"]),
            Route("/foldback", self.guard(self.foldback), methods=["GET"]),
            Route("/usage", self.guard(self.usage), methods=["GET"]),
            Route("/roadmap", self.guard(self.roadmap), methods=["GET"]),
            Route("/roadmap", self.guard(self.create_roadmap_item), methods=["POST"]),
            Route("/roadmap/pledge", self.guard(self.pledge_roadmap_item), methods=["POST"]),
            Route("/roadmap/update", self.guard(self.update_roadmap_item), methods=["POST"]),
            Route("/changes", self.guard(self.changes), methods=["GET"]),
            Route("/changes/{id:int}/approve", self.guard(self.approve_change), methods=["POST"]),
            Route("/changes/{id:int}/reject", self.guard(self.reject_change), methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
        ]

    # -- rendering -------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return self.templates.TemplateResponse(
            request,
            template,
            context,
            status_code=status,
            headers={**HEADERS, **(headers or {})},
        )

    def problem(
        self,
        request: Request,
        who: SignedIn | None,
        title: str,
        message: str,
        status: int,
        links: Sequence[tuple[str, str]] = (),
    ) -> Response:
        return self.render(
            request,
            "error.html",
            {"who": who, "title": title, "message": message, "links": links},
            status,
        )

    def guard(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Resolve the session (or send the browser to sign in), check the CSRF
        token of a POST, and turn expected errors into pages."""

        async def endpoint(request: Request) -> Response:
            try:
                who = await self.services.web_sessions.authenticate(request.cookies.get(COOKIE, ""))
            except AuthenticationError as exc:
                if request.method == "GET":
                    response: Response = RedirectResponse("/console/sign-in", status_code=303)
                    response.headers.update(HEADERS)
                else:
                    response = self.problem(request, None, "Signed out", exc.message, 401)
                if request.cookies.get(COOKIE):
                    clear_session_cookie(response, request)
                return response
            except (DatabaseError, SQLAlchemyError, OSError) as exc:
                log.error("database unavailable: %s", exc)
                return self.problem(
                    request, None, "Unavailable", "The database is unavailable; retry.", 503
                )
            request_state(request.scope).principal = who.principal
            if request.method == "POST":
                form = await request.form()
                sent = form.get("csrf")
                if not csrf_ok(request, sent if isinstance(sent, str) else None, who):
                    return self.problem(
                        request,
                        who,
                        "Form expired",
                        "The form's security token is missing or wrong (or it came from "
                        "another site); nothing was changed. Reload the page and try again.",
                        403,
                    )
            try:
                return await handler(request, who)
            except PermissionDeniedError as exc:
                return self.problem(request, who, "Permission denied", exc.message, 403)
            except NotFoundError as exc:
                return self.problem(request, who, "Not found", exc.message, 404)
            except InvalidInputError as exc:
                return self.problem(request, who, "Invalid input", exc.message, 400)
            except DatabaseError as exc:
                return self.problem(request, who, "Unavailable", exc.message, 503)
            except TailorError as exc:
                return self.problem(request, who, "Cannot do that", exc.message, 400)

        return endpoint

    # -- sign in / out ---------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return RedirectResponse("/console/fleet", status_code=303, headers=HEADERS)

    async def sign_in_page(
        self, request: Request, message: str = "", status: int = 200
    ) -> Response:
        token = new_signin_csrf()
        response = self.render(
            request, "signin.html", {"who": None, "message": message, "csrf": token}, status
        )
        set_signin_csrf(response, request, token)
        return response

    async def sign_in(self, request: Request) -> Response:
        form = await request.form()
        sent = form.get("csrf")
        if not signin_csrf_ok(request, sent if isinstance(sent, str) else None):
            return await self.sign_in_page(
                request, "The sign-in form expired; paste your token again.", 403
            )
        token = form.get("token")
        try:
            secret, who = await self.services.web_sessions.sign_in(
                token if isinstance(token, str) else ""
            )
        except AuthenticationError as exc:
            return await self.sign_in_page(request, exc.message, 401)
        request_state(request.scope).principal = who.principal
        response = RedirectResponse("/console/fleet", status_code=303, headers=HEADERS)
        max_age = max(int(who.expires_at.timestamp() - time.time()), 1)
        set_session_cookie(response, request, secret, max_age)
        response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/console")
        return response

    async def sign_out(self, request: Request, who: SignedIn) -> Response:
        await self.services.web_sessions.sign_out(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/console/sign-in", status_code=303, headers=HEADERS)
        clear_session_cookie(response, request)
        return response

    # -- pages -----------------------------------------------------------------
    async def _target(self, request: Request, principal: Principal) -> tuple[str, list[Any]]:
        releases = _sort_releases(await self.services.releases.list_all(principal))
        target = request.query_params.get("target", "").strip() or default_target(releases)
        if not target:
            raise NotFoundError("release", "(none)", "no releases are registered")
        return target, releases

    async def fleet(self, request: Request, who: SignedIn) -> Response:
        p = who.principal
        target, releases = await self._target(request, p)
        triaged = await self.services.triage.triaged(p, target)
        # each tenant's gate status for every planned release
        planned = [r.version for r in releases if r.status == PLANNED]
        runs = {
            v: triaged if v == target else await self.services.triage.triaged(p, v) for v in planned
        }
        full = request.query_params.get("full") == "1"
        view = ReadinessView(
            triaged, FULL if full else CONSOLE_SUMMARY, matrix=release_matrix(runs)
        )
        return self.render(
            request,
            "fleet.html",
            {
                "who": who,
                "target": target,
                "releases": releases,
                "view": view,
                # the steps shown (the first ones: the plan is greedy, they weigh most)
                "chart": unblock_chart(
                    [row.step for row in view.plan], view.counts.blocked_without_waivers
                ),
                "runs": await self.services.triage.runs(p, target, limit=5),
                "can_triage": p.may_triage,
            },
        )

    async def keep_run(self, request: Request, who: SignedIn) -> Response:
        form = await request.form()
        target = str(form.get("target") or "")
        await self.services.triage.triaged(who.principal, target, keep=True)
        return RedirectResponse(
            "/console/fleet?" + urlencode({"target": target}), status_code=303, headers=HEADERS
        )

    async def tenant(self, request: Request, who: SignedIn) -> Response:
        return await self._tenant_page(request, who, request.path_params["slug"])

    async def _tenant_page(
        self,
        request: Request,
        who: SignedIn,
        slug: str,
        *,
        target: str | None = None,
        rejected: TriageForm | None = None,
    ) -> Response:
        """The tenant's page; ``rejected``: a triage form that was refused, shown
        again with what was typed and the error next to its field (status 400)."""
        p = who.principal
        info = await self.services.tenants.get(p, slug)
        releases = _sort_releases(await self.services.releases.list_all(p))
        target = target or request.query_params.get("target", "").strip()
        target = target or default_target(releases)
        if not target:
            raise NotFoundError("release", "(none)", "no releases are registered")
        minimum = request.query_params.get("min_severity", "info")
        triaged = await self.services.triage.triaged(p, target, [slug], minimum=minimum)
        # listed by the settings service: a secret override reads "set (secret)"
        # and its revision, never its value (readiness opens them to check them)
        overrides = await self.services.settings.overrides(p, slug)
        registrations = await self.services.registry.list_all(p, tenant=slug)
        view = ReadinessView(triaged, FULL)
        readiness = triaged.report.tenants[0]
        # change control: what waits for approval here, and what changed lately
        # (an app token reads neither: pages show what the principal may read)
        pending: list[Any] = []
        recent: list[Any] = []
        if p.role in CHANGE_READERS:
            pending = await self.services.changes.list(p, slug, ChangeState.PENDING)
            recent = await self.services.feed.recent(slug, RECENT_CHANGES)
        return self.render(
            request,
            "tenant.html",
            {
                "who": who,
                "tenant": info,
                "target": target,
                "releases": releases,
                "triaged": triaged,
                "row": view.tenants[0],
                # the most serious first (blockers), in the report's order within each
                "findings": view.findings(readiness),
                "overrides": overrides,
                "registrations": registrations,
                "pending": pending,
                "recent": recent,
                "can_read_changes": p.role in CHANGE_READERS,
                "minimum": triaged.minimum.value,
                "can_triage": p.may_triage,
                "Severity": Severity,
                "rejected": rejected,
            },
            status=400 if rejected else 200,
        )

    async def changes(self, request: Request, who: SignedIn) -> Response:
        """Change requests in the principal's scope, pending first, with approve
        and reject forms (the same service calls as approveChange/rejectChange)."""
        tenant = request.query_params.get("tenant") or None
        raw_state = request.query_params.get("state") or None
        try:
            state = ChangeState(raw_state) if raw_state else None
        except ValueError:
            known = ", ".join(s.value for s in ChangeState)
            raise InvalidInputError("state", f"{raw_state!r}: one of {known}") from None
        requests = await self.services.changes.list(who.principal, tenant, state)
        return self.render(
            request,
            "changes.html",
            {
                "who": who,
                "requests": requests,
                "tenant": tenant,
                "state": raw_state,
                "states": [s.value for s in ChangeState],
                "may_decide": who.principal.role in CHANGE_DECIDERS,
            },
        )

    async def approve_change(self, request: Request, who: SignedIn) -> Response:
        form = await request.form()
        comment = form.get("comment")
        await self.services.changes.approve(
            who.principal,
            request.path_params["id"],
            comment if isinstance(comment, str) else None,
        )
        return self._back_to_changes(request.path_params["id"])

    async def reject_change(self, request: Request, who: SignedIn) -> Response:
        form = await request.form()
        reason = form.get("reason")
        await self.services.changes.reject(
            who.principal, request.path_params["id"], reason if isinstance(reason, str) else ""
        )
        return self._back_to_changes(request.path_params["id"])

    def _back_to_changes(self, request_id: int) -> Response:
        return RedirectResponse(
            f"/console/changes#change-{request_id}", status_code=303, headers=HEADERS
        )

    async def triage(self, request: Request, who: SignedIn) -> Response:
        form = await request.form()

        def field(name: str) -> str | None:
            value = form.get(name)
            return value if isinstance(value, str) and value.strip() else None

        finding = field("finding") or ""
        target = field("target") or ""
        sent = TriageForm(
            finding=finding,
            decision=field("decision") or "",
            reason=field("reason") or "",
            owner=field("owner") or "",
            until=field("until") or "",
        )
        try:
            record = await self.services.triage.decide(
                who.principal,
                finding,
                sent.decision,
                sent.reason,
                sent.owner,
                sent.until,
            )
        except InvalidInputError as exc:
            if exc.field == "finding":
                raise  # not from the page's form: no tenant page to return to
            _code, _subject, _detail, tenant = parse_finding_id(finding)
            return await self._tenant_page(
                request,
                who,
                tenant,
                target=target or None,
                rejected=dataclasses.replace(sent, field=exc.field, error=exc.message),
            )
        _code, _subject, _detail, tenant = parse_finding_id(record.finding)
        query = urlencode({"target": target}) if target else ""
        return RedirectResponse(
            f"/console/tenants/{quote(tenant)}?{query}#triage-{quote(record.finding)}",
            status_code=303,
            headers=HEADERS,
        )

    async def customization(self, request: Request, who: SignedIn) -> Response:
        p = who.principal
        name = request.path_params["name"]
        registration = await self.services.registry.get(p, name)
        # what this principal may see of it: the same rule as GraphQL's and the CLI's
        seen = visible_customization(
            p, registration.manifest.tenants, registration.pins, registration.health
        )
        target, releases = await self._target(request, p)
        observations = await self.services.observations.list_all(p, customization=name)
        readiness = await self.services.readiness.for_customization(p, target, registration)
        versions = await self.services.registry.versions(p, name)
        fix = await self._proposed_fix(p, target, registration)
        return self.render(
            request,
            "customization.html",
            {
                "who": who,
                "registration": registration,
                "seen": seen,
                "versions": versions,
                "target": target,
                "releases": releases,
                "readiness": readiness,
                "observations": observations,
                "fix": fix,
            },
        )

    async def _proposed_fix(
        self, p: Principal, target: str, registration: Registration
    ) -> FixPlan | None:
        """What ``tailor customization fix --release TARGET`` would rewrite in the
        registered version's stored code (None: no code stored, or it cannot be read
        here). Three statements."""
        if registration.sha256 is None:
            return None
        manifest, history = await self.services.readiness.release_manifests(p, target)
        stored = await self.services.registry.artifacts([registration.sha256])
        data = stored.get(registration.sha256)
        if data is None:
            return None
        known = {d.key for m in (manifest, *history) for d in m.settings}
        try:
            return await asyncio.to_thread(
                plan_fix_archive, data, manifest, history, categories=key_categories((), known)
            )
        except (ArchiveError, OSError) as exc:
            log.warning("no proposed fix for %s: %s", registration.name, exc)
            return None

    async def foldback(self, request: Request, who: SignedIn) -> Response:
        p = who.principal
        report = await self.services.foldback.candidates(p)
        registrations = {r.name: r for r in await self.services.registry.list_all(p)}
        directories = {}
        for loaded in self.installed():
            directories[loaded.name] = loaded.source.path
        sides: dict[int, list[dict[str, Any]]] = {}
        for i, c in enumerate(report.candidates):
            if c.kind is not EvidenceKind.NEAR_DUPLICATE_CODE:
                continue
            for name in c.customizations:
                reg = registrations.get(name)
                if reg is None:
                    continue
                for use in reg.hooks:
                    if use.hook not in c.hooks:
                        continue
                    directory = directories.get(name)
                    source = use.source or (
                        hook_source(directory, use.location) if directory else None
                    )
                    sides.setdefault(i, []).append(
                        {"customization": name, "location": use.location, "source": source}
                    )
        return self.render(
            request,
            "foldback.html",
            {
                "who": who,
                "report": report,
                "sides": sides,
                "candidate_id": candidate_id,
                "can_plan": p.sees_all_tenants,
            },
        )

    async def roadmap(self, request: Request, who: SignedIn) -> Response:
        p = who.principal
        items = await self.services.roadmap.items(p)
        return self.render(
            request,
            "roadmap.html",
            {
                "who": who,
                "items": items,
                "explanation": ROADMAP_EXPLANATION,
                "can_plan": p.sees_all_tenants,
            },
        )

    async def create_roadmap_item(self, request: Request, who: SignedIn) -> Response:
        form = await request.form()
        source = form.get("source")
        item = await self.services.roadmap.create(
            who.principal, source if isinstance(source, str) else ""
        )
        return RedirectResponse(
            f"/console/roadmap#item-{item.id}", status_code=303, headers=HEADERS
        )

    async def pledge_roadmap_item(self, request: Request, who: SignedIn) -> Response:
        form = await request.form()
        text = _form_text(form)
        item_id = _item_id(text("item"))
        await self.services.roadmap.pledge(
            who.principal,
            item_id,
            text("tenant"),
            text("amount"),
            text("currency"),
            text("note") or None,
        )
        return RedirectResponse(
            f"/console/roadmap#item-{item_id}", status_code=303, headers=HEADERS
        )

    async def update_roadmap_item(self, request: Request, who: SignedIn) -> Response:
        form = await request.form()
        text = _form_text(form)
        item_id = _item_id(text("item"))
        status = text("status")
        try:
            wanted = RoadmapStatus(status) if status else None
        except ValueError:
            raise InvalidInputError("status", f"{status!r} is not proposed or committed") from None
        await self.services.roadmap.update(
            who.principal, item_id, status=wanted, target_release=text("target") or None
        )
        return RedirectResponse(
            f"/console/roadmap#item-{item_id}", status_code=303, headers=HEADERS
        )

    async def usage(self, request: Request, who: SignedIn) -> Response:
        p = who.principal
        raw = request.query_params.get("days", "30")
        try:
            days = int(raw)
        except ValueError:
            raise InvalidInputError("days", f"{raw!r} is not a whole number of days") from None
        if not 1 <= days <= 3650:
            raise InvalidInputError("days", "must be between 1 and 3650")
        target, _releases = await self._target(request, p)
        report = await self.services.usage.retire(p, target, days)
        sections = [
            (
                NEVER_CALLED,
                "Customizations never called",
                "enabled, but the runtime never saw a call for this tenant",
            ),
            (NOT_CALLED_RECENTLY, f"Customizations not called in {days} days", ""),
            (
                NO_EFFECT,
                "Customizations whose results never differ from the product's",
                "every call returned the values it was given",
            ),
            (OVERRIDE_EQUALS_DEFAULT, "Overrides equal to the default", ""),
            (
                OVERRIDE_UNREAD,
                "Overrides of settings nothing reads",
                "removed or deprecated "
                "in the tenant's release, and no customization of the tenant reads them",
            ),
        ]
        return self.render(
            request,
            "usage.html",
            {"who": who, "report": report, "sections": sections, "days": days},
        )
