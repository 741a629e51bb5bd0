"""Readiness over the database: load a fleet with a constant number of statements,
evaluate it (:mod:`core.analysis.readiness`), and move tenants between releases.

Customization registrations come from an injected :class:`RegistrationProvider`
(the registry of the plugin runtime); without one, readiness sees none.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from packaging.version import Version
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.analysis.app_checks import app_findings
from core.analysis.readiness.evaluation import TenantRelease, evaluate
from core.analysis.readiness.releases import TargetIndex
from core.analysis.readiness.report import CustomizationReadiness, ReadinessReport
from core.analysis.readiness.vocabulary import CUSTOMIZATION, Finding, Severity
from core.model.apps import App, DocumentCheck
from core.model.auth import Principal
from core.model.customizations import Observation, Registration
from core.model.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SecretKeyError,
    UpgradeBlockedError,
)
from core.model.manifest import PLANNED, ReleaseHistory, ReleaseManifest, parse_version
from core.model.overrides import ActiveOverride
from core.model.secrets import SecretBox, is_sealed
from core.store.apps import AppService
from core.store.authorization import (
    Authorization,
    locked_protection,
    require_change_request,
)
from core.store.db import MAX_IN_LIST
from core.store.gcpause import gc_paused
from core.store.models import AuditEntry, Override, RehearsalRun, Release, Tenant
from core.store.observations import ObservationStore
from core.store.registry import RegistryService
from core.store.releases import load_history
from core.store.tenants import load_tenant_ref

MAX_REASON = 2000


@dataclass(frozen=True)
class RegistrySnapshot:
    """What the customization registry knows, as readiness needs it."""

    registrations: Sequence[Registration] = ()
    #: names of the customizations whose code is installed here; None = unknown
    installed: frozenset[str] | None = None

    @classmethod
    def of_stored_code(cls, registrations: Sequence[Registration]) -> RegistrySnapshot:
        """The registry as the servers run it: a customization's code is there to
        verify when the database stores the package of its (newest) version."""
        return cls(tuple(registrations), frozenset(r.name for r in registrations if r.sha256))


class CodeSource(enum.Enum):
    """Which customizations readiness and fold-back count as installed."""

    #: every registered version (whether its code is here is not known): the CLI's
    #: default
    REGISTERED = "registered"
    #: the versions whose package the database stores; the others are reported
    #: ``NOT_INSTALLED``: what every server runs
    STORED = "stored"


@dataclass
class RegistryRegistrations:
    """Readiness's and fold-back's view of the registry: every registration with
    its enabled tenants, judged by ``code``. One object shared by both services, so
    a server attaching its runtime (:func:`api.wiring.attach`) changes ``code`` for
    both at once."""

    registry: RegistryService
    code: CodeSource = CodeSource.REGISTERED

    async def __call__(self) -> RegistrySnapshot:
        # each tenant judged on the version it is pinned to
        registrations = await self.registry.pinned_registrations(Principal.system("readiness"))
        return self.snapshot(registrations)

    def snapshot(self, registrations: Sequence[Registration]) -> RegistrySnapshot:
        """``registrations`` (already loaded) as readiness judges them."""
        if self.code is CodeSource.STORED:
            return RegistrySnapshot.of_stored_code(registrations)
        return RegistrySnapshot(tuple(registrations))


class RegistrationProvider(Protocol):
    """Returns every registration (with ``enabled_for``) and the installed names.

    Implementations must load with a constant number of SQL statements whatever the
    number of registrations (readiness promises that for the whole fleet)."""

    async def __call__(self) -> RegistrySnapshot: ...


async def no_registrations() -> RegistrySnapshot:
    """The provider until the customization registry is wired in."""
    return RegistrySnapshot()


@dataclass(frozen=True)
class StaticRegistrations:
    """A provider over a fixed list (tests, benchmarks, generated fleets)."""

    registrations: Sequence[Registration] = ()
    installed: frozenset[str] | None = None

    async def __call__(self) -> RegistrySnapshot:
        return RegistrySnapshot(tuple(self.registrations), self.installed)


@dataclass(frozen=True)
class ReadinessInput:
    """Everything readiness reads, loaded."""

    target: ReleaseManifest
    history: tuple[ReleaseManifest, ...]
    tenants: tuple[TenantRelease, ...]
    overrides: tuple[ActiveOverride, ...]
    registry: RegistrySnapshot = field(default_factory=RegistrySnapshot)
    #: what the runtime observed (every tenant; evaluation keeps the ones in scope)
    observations: tuple[Observation, ...] = ()
    #: the front-end apps and their documents (every tenant's; see app_checks)
    apps: tuple[App, ...] = ()
    #: document sha256 -> why it no longer validates against Tailor's schema
    invalid_documents: Mapping[str, Sequence[str]] = field(default_factory=dict)
    #: tenant -> the findings of the last kept rehearsal of the target, for the
    #: versions the tenant still runs (source "rehearsal")
    rehearsed: Mapping[str, Sequence[Finding]] = field(default_factory=dict)


@dataclass(frozen=True)
class UpgradeResult:
    tenant: str
    from_release: str
    to_release: str
    forced: bool
    audit_id: int
    overridden: tuple[Finding, ...] = ()


class ReadinessService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registrations: RegistrationProvider = no_registrations,
        secrets: SecretBox | None = None,
        apps: AppService | None = None,
        check_documents: DocumentCheck | None = None,
    ) -> None:
        self._sessions = sessions
        self.registrations = registrations
        #: the apps whose operations readiness checks (None: none)
        self.apps = apps
        #: checks their documents against Tailor's schema (None: not checked)
        self.check_documents = check_documents
        #: opens secret overrides so they are checked against the target's rules
        self._secrets = secrets or SecretBox()

    def _plain(self, value: Any) -> Any:
        if not is_sealed(value):
            return value
        try:
            return self._secrets.open(value)
        except SecretKeyError:
            return value  # unreadable here: checked for removal and deprecation only

    async def load(
        self,
        principal: Principal,
        target: str,
        tenants: Sequence[str] | None = None,
        registry: RegistrySnapshot | None = None,
        *,
        with_apps: bool = True,
    ) -> ReadinessInput:
        """Seven statements (releases, definitions, tenants, overrides, observations
        and their keys, the apps with their documents) plus the provider's and,
        when customizations run, the last kept rehearsal of ``target``,
        whatever the fleet size. ``with_apps=False``: not the apps (no operation
        checks; one statement less)."""
        principal.require_read_product()
        parse_version(target, "target")
        wanted = _scope(principal, tenants)
        async with self._sessions() as session:
            history = await load_history(session)
            manifest = history.manifest(target, "target")
            query = select(Tenant.id, Tenant.slug, Release.version).join(
                Release, Release.id == Tenant.release_id
            )
            few = wanted if wanted is not None and len(wanted) <= MAX_IN_LIST else None
            if few is not None:
                query = query.where(Tenant.slug.in_(few))
            tenant_rows = (await session.execute(query.order_by(Tenant.slug))).all()
            if wanted is not None:
                if few is None:
                    asked = set(wanted)
                    tenant_rows = [r for r in tenant_rows if r.slug in asked]
                missing = sorted(set(wanted) - {r.slug for r in tenant_rows})
                if missing:
                    raise NotFoundError("tenant", missing[0], "list tenants with 'tenants'")
            slugs = {r.id: r.slug for r in tenant_rows}
            override_query = (
                select(Override.tenant_id, Override.environment, Override.key, Override.value)
                .where(Override.active.is_(True))
                .order_by(Override.tenant_id, Override.key, Override.environment)
            )
            if few is not None:
                override_query = override_query.join(Tenant, Tenant.id == Override.tenant_id).where(
                    Tenant.slug.in_(few)
                )  # else: the tenants' overrides are kept below (slugs)
            override_rows = (await session.execute(override_query)).all()
        observations = await ObservationStore(self._sessions).list_all()
        in_scope = {r.slug for r in tenant_rows}
        apps = (
            tuple(a for a in await self.apps.every_app() if a.tenant in in_scope)
            if self.apps is not None and with_apps
            else ()
        )
        invalid: Mapping[str, Sequence[str]] = {}
        if apps and self.check_documents is not None:
            invalid = self.check_documents(
                {o.sha256: o.document for a in apps for o in a.operations}
            )
        if registry is None:
            registry = await self.registrations()
        rehearsed = await self._rehearsed(target, in_scope, registry)
        return ReadinessInput(
            target=manifest,
            history=history.others(target),
            tenants=tuple(TenantRelease(r.slug, r.version) for r in tenant_rows),
            overrides=tuple(
                ActiveOverride(
                    slugs[o.tenant_id],
                    o.environment,
                    o.key,
                    self._plain(o.value) if is_sealed(o.value) else o.value,
                )
                for o in override_rows
                if o.tenant_id in slugs
            ),
            registry=registry,
            observations=tuple(observations),
            apps=apps,
            invalid_documents=invalid,
            rehearsed=rehearsed,
        )

    async def _rehearsed(
        self, target: str, tenants: Collection[str], registry: RegistrySnapshot
    ) -> dict[str, list[Finding]]:
        """The last kept rehearsal of ``target``'s findings (one statement), for
        the tenants in scope that still run the version it rehearsed."""
        if not registry.registrations or not tenants:
            return {}
        async with self._sessions() as session:
            run = await session.scalar(
                select(RehearsalRun)
                .where(RehearsalRun.target == target)
                .order_by(RehearsalRun.id.desc())
                .limit(1)
            )
        if run is None:
            return {}
        runs = {
            (tenant, r.manifest.name, r.manifest.version)
            for r in registry.registrations
            for tenant in r.enabled_for
        }
        found: dict[str, list[Finding]] = {}
        for kept in run.findings:
            tenant, data = kept["tenant"], kept["finding"]
            version = (data.get("evidence") or {}).get("version")
            if tenant in tenants and (tenant, data["subject"], version) in runs:
                found.setdefault(tenant, []).append(Finding.from_dict(data))
        return found

    async def release_manifests(
        self, principal: Principal, target: str
    ) -> tuple[ReleaseManifest, tuple[ReleaseManifest, ...]]:
        """The manifest of ``target`` (planned or released) and of every other
        release: two statements."""
        principal.require_read_product()
        async with self._sessions() as session:
            history = await load_history(session)
        return history.manifest(target, "target"), history.others(target)

    async def blockers_by_customization(
        self, registry: RegistrySnapshot | None = None
    ) -> dict[str, int]:
        """Upgrade cost per customization: how many (tenant, planned release)
        upgrades it blocks. Fold-back ranking uses it (and hands over the
        registrations it already loaded)."""
        if registry is None:
            registry = await self.registrations()
        principal = Principal.system("foldback")
        counts: dict[str, int] = {}
        async with self._sessions() as session:
            planned = (
                await session.scalars(select(Release.version).where(Release.status == PLANNED))
            ).all()
        if not planned:
            return counts
        versions = sorted(planned, key=Version)
        # one load serves every planned target: only the target manifest differs
        # customizations' blockers only: the apps' documents are not needed
        loaded = await self.load(principal, versions[0], registry=registry, with_apps=False)
        history = ReleaseHistory.of((loaded.target, *loaded.history))
        for version in versions:
            data = dataclasses.replace(
                loaded, target=history.manifest(version), history=history.others(version)
            )
            report = evaluate_input(data, plan=False)
            for tenant in report.tenants:
                for kind, subject in tenant.blocker_keys:
                    if kind == CUSTOMIZATION:
                        counts[subject] = counts.get(subject, 0) + 1
        return counts

    async def for_customization(
        self, principal: Principal, target: str, registration: Registration
    ) -> CustomizationReadiness | None:
        """One customization against ``target``, for the tenants in scope it is
        enabled for (None when it is enabled for none of them)."""
        data = await self.load(principal, target)
        report = evaluate(
            TargetIndex(data.target, data.history),
            data.tenants,
            (),
            [registration],
            data.registry.installed,
        )
        return next((c for c in report.customizations if c.name == registration.name), None)

    async def readiness(
        self, principal: Principal, target: str, tenants: Sequence[str] | None = None
    ) -> ReadinessReport:
        """Readiness of the tenants in scope (all visible ones by default) for ``target``."""
        with gc_paused():  # a fleet-sized build (core.store.gcpause)
            data = await self.load(principal, target, tenants)
            return evaluate_input(data)

    async def upgrade(
        self,
        principal: Principal,
        tenant: str,
        target: str,
        *,
        force: bool = False,
        reason: str | None = None,
        authorization: Authorization | None = None,
    ) -> UpgradeResult:
        """Move ``tenant`` to ``target`` when it is not blocked; with ``force`` (and a
        reason, which the audit log keeps) even when it is. Nothing changes on refusal.
        A tenant with a protected environment moves only with an ``authorization``
        (an approved change request, or break-glass)."""
        current, blockers, reason = await self.check_upgrade(
            principal, tenant, target, force=force, reason=reason
        )
        async with self._sessions.begin() as session:
            ref = await locked_protection(session, await load_tenant_ref(session, tenant))
            require_change_request(ref, None, authorization, "upgrading a tenant")
            if authorization is not None:
                await authorization.record(
                    session, ref.id, None, f"release:{target}", protected=ref.protects(None)
                )
            ids = dict(
                (
                    await session.execute(
                        select(Release.version, Release.id).where(
                            Release.version.in_([current, target])
                        )
                    )
                ).all()
            )
            # guarded: only if the tenant still runs the release readiness evaluated
            moved = await session.execute(
                update(Tenant)
                .where(Tenant.slug == tenant, Tenant.release_id == ids[current])
                .values(release_id=ids[target], data_version=Tenant.data_version + 1)
                .returning(Tenant.id)
            )
            tenant_id = moved.scalar_one_or_none()
            if tenant_id is None:  # changed concurrently: nothing written
                raise InvalidInputError("tenant", f"{tenant!r} changed meanwhile; retry")
            entry = AuditEntry(
                actor=principal.name,
                action="upgrade_tenant",
                tenant_id=tenant_id,
                old={"release": current},
                new={
                    "release": target,
                    "forced": bool(blockers),
                    "blockers": [f"{f.code.value}:{f.subject}" for f in blockers],
                },
                reason=reason,
            )
            session.add(entry)
            await session.flush()
            return UpgradeResult(tenant, current, target, bool(blockers), entry.id, blockers)

    async def check_upgrade(
        self,
        principal: Principal,
        tenant: str,
        target: str,
        *,
        force: bool = False,
        reason: str | None = None,
    ) -> tuple[str, tuple[Finding, ...], str | None]:
        """Everything :meth:`upgrade` checks, writing nothing: the tenant's current
        release, the blockers a forced upgrade goes past, and the reason."""
        principal.require_manage_tenants()
        reason = (reason or "").strip() or None
        if force and not reason:
            raise InvalidInputError("reason", "a forced upgrade needs a reason for the audit log")
        if reason and len(reason) > MAX_REASON:
            raise InvalidInputError("reason", f"at most {MAX_REASON} characters")
        report = await self.readiness(principal, target, [tenant])
        result = report.tenants[0]
        current = result.current_release
        if Version(current) == Version(target):
            raise InvalidInputError("target", f"tenant {tenant!r} already runs {current}")
        if Version(target) < Version(current):
            raise InvalidInputError(
                "target", f"{target} is older than {tenant!r}'s release {current}: no downgrades"
            )
        if report.target_status == PLANNED:
            raise InvalidInputError(
                "target",
                f"{target} is a planned release: its code is not running here, so no tenant "
                f"can run it yet (readiness can be checked). Deploying Tailor {target} "
                "registers it as released; then upgrade.",
            )
        blockers = tuple(f for f in result.findings if f.severity is Severity.BLOCKER)
        if blockers and not force:
            raise UpgradeBlockedError(tenant, target, blockers)
        return current, blockers, reason


def evaluate_input(data: ReadinessInput, *, plan: bool = True) -> ReadinessReport:
    # the target indexed once: the rules and the apps' checks read the same index
    target = TargetIndex(data.target, data.history)
    return evaluate(
        target,
        data.tenants,
        data.overrides,
        data.registry.registrations,
        data.registry.installed,
        data.observations,
        plan=plan,
        extra=_extra(data, target),
    )


def _extra(data: ReadinessInput, target: TargetIndex) -> Mapping[str, Sequence[Finding]] | None:
    """Findings made outside the rules: the apps' operations, the last kept
    rehearsal's."""
    apps = (
        app_findings(data.apps, data.tenants, target, data.invalid_documents) if data.apps else None
    )
    if not data.rehearsed:
        return apps
    joined: dict[str, list[Finding]] = {t: list(f) for t, f in (apps or {}).items()}
    for tenant, findings in data.rehearsed.items():
        joined.setdefault(tenant, []).extend(findings)
    return joined


def _scope(principal: Principal, tenants: Sequence[str] | None) -> Collection[str] | None:
    """The tenant slugs to load: the asked ones (each in scope), else all visible."""
    if tenants:
        for slug in tenants:
            if not principal.in_scope(slug):
                raise PermissionDeniedError(
                    f"readiness: tenant {slug!r} is not in your token's scope"
                )
        return sorted(set(tenants))
    if principal.sees_all_tenants:
        return None
    return sorted(principal.tenants)
