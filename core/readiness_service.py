"""Readiness over the database: load a fleet with a constant number of statements,
evaluate it (:mod:`core.readiness`), and move tenants between releases.

Customization registrations come from an injected :class:`RegistrationProvider`
(the registry of the plugin runtime); without one, readiness sees none.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from packaging.version import Version
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth import Principal
from core.customizations import Observation, Registration
from core.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from core.manifest import PLANNED, ReleaseManifest, parse_version, stored_manifest
from core.models import AuditEntry, Override, Release, SettingDefinitionRow, Tenant
from core.observations import ObservationStore
from core.readiness import (
    CUSTOMIZATION,
    CustomizationReadiness,
    Finding,
    OverrideRow,
    ReadinessReport,
    Severity,
    TenantRow,
    UpgradeBlockedError,
    evaluate,
)
from core.secrets import SecretBox, SecretKeyError, is_sealed

MAX_REASON = 2000


@dataclass(frozen=True)
class RegistrySnapshot:
    """What the customization registry knows, as readiness needs it."""

    registrations: Sequence[Registration] = ()
    #: names of the customizations whose code is installed here; None = unknown
    installed: frozenset[str] | None = None


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
    tenants: tuple[TenantRow, ...]
    overrides: tuple[OverrideRow, ...]
    registry: RegistrySnapshot = field(default_factory=RegistrySnapshot)
    #: what the runtime observed (every tenant; evaluation keeps the ones in scope)
    observations: tuple[Observation, ...] = ()


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
    ) -> None:
        self._sessions = sessions
        self.registrations = registrations
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
    ) -> ReadinessInput:
        """Six statements (releases, definitions, tenants, overrides, observations
        and their keys) plus the provider's, whatever the fleet size."""
        principal.can_read_product()
        parse_version(target, "target")
        wanted = _scope(principal, tenants)
        async with self._sessions() as session:
            releases = (
                await session.execute(
                    select(Release.id, Release.version, Release.status, Release.manifest)
                )
            ).all()
            match = [r for r in releases if r.version == target]
            if not match:
                known = ", ".join(sorted((r.version for r in releases), key=Version)) or "none"
                raise NotFoundError("release", target, f"known releases: {known}")
            definitions: dict[int, list[dict]] = {r.id: [] for r in releases}
            for release_id, definition in await session.execute(
                select(SettingDefinitionRow.release_id, SettingDefinitionRow.definition).order_by(
                    SettingDefinitionRow.release_id, SettingDefinitionRow.key
                )
            ):
                definitions[release_id].append(definition)
            query = select(Tenant.id, Tenant.slug, Release.version).join(
                Release, Release.id == Tenant.release_id
            )
            if wanted is not None:
                query = query.where(Tenant.slug.in_(wanted))
            tenant_rows = (await session.execute(query.order_by(Tenant.slug))).all()
            if wanted is not None:
                missing = sorted(set(wanted) - {r.slug for r in tenant_rows})
                if missing:
                    raise NotFoundError("tenant", missing[0], "list tenants with 'tenants'")
            slugs = {r.id: r.slug for r in tenant_rows}
            override_query = (
                select(Override.tenant_id, Override.environment, Override.key, Override.value)
                .where(Override.active.is_(True))
                .order_by(Override.tenant_id, Override.key, Override.environment)
            )
            if wanted is not None:
                override_query = override_query.join(Tenant, Tenant.id == Override.tenant_id).where(
                    Tenant.slug.in_(wanted)
                )
            override_rows = (await session.execute(override_query)).all()
        observations = await ObservationStore(self._sessions).list_all()
        if registry is None:
            registry = await self.registrations()
        manifests = {
            r.version: stored_manifest(
                r.manifest or {"version": r.version}, r.status, definitions[r.id]
            )
            for r in releases
        }
        return ReadinessInput(
            target=manifests[target],
            history=tuple(m for v, m in manifests.items() if v != target),
            tenants=tuple(TenantRow(r.slug, r.version) for r in tenant_rows),
            overrides=tuple(
                OverrideRow(slugs[o.tenant_id], o.environment, o.key, self._plain(o.value))
                for o in override_rows
                if o.tenant_id in slugs
            ),
            registry=registry,
            observations=tuple(observations),
        )

    async def release_manifests(
        self, principal: Principal, target: str
    ) -> tuple[ReleaseManifest, tuple[ReleaseManifest, ...]]:
        """The manifest of ``target`` (planned or released) and of every other
        release: two statements."""
        principal.can_read_product()
        parse_version(target, "target")
        async with self._sessions() as session:
            manifests = await _manifests(session)
        if target not in manifests:
            known = ", ".join(sorted(manifests, key=Version)) or "none"
            raise NotFoundError("release", target, f"known releases: {known}")
        return manifests[target], tuple(m for v, m in manifests.items() if v != target)

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
        for version in sorted(planned, key=Version):
            report = evaluate_input(await self.load(principal, version, registry=registry))
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
            data.target,
            data.tenants,
            (),
            [registration],
            data.registry.installed,
            data.history,
        )
        return next((c for c in report.customizations if c.name == registration.name), None)

    async def readiness(
        self, principal: Principal, target: str, tenants: Sequence[str] | None = None
    ) -> ReadinessReport:
        """Readiness of the tenants in scope (all visible ones by default) for ``target``."""
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
    ) -> UpgradeResult:
        """Move ``tenant`` to ``target`` when it is not blocked; with ``force`` (and a
        reason, which the audit log keeps) even when it is. Nothing changes on refusal."""
        principal.can_manage_tenants()
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
        async with self._sessions.begin() as session:
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


async def _manifests(session: AsyncSession) -> dict[str, ReleaseManifest]:
    releases = (
        await session.execute(select(Release.id, Release.version, Release.status, Release.manifest))
    ).all()
    definitions: dict[int, list[dict]] = {r.id: [] for r in releases}
    for release_id, definition in await session.execute(
        select(SettingDefinitionRow.release_id, SettingDefinitionRow.definition).order_by(
            SettingDefinitionRow.release_id, SettingDefinitionRow.key
        )
    ):
        definitions[release_id].append(definition)
    return {
        r.version: stored_manifest(
            r.manifest or {"version": r.version}, r.status, definitions[r.id]
        )
        for r in releases
    }


def evaluate_input(data: ReadinessInput) -> ReadinessReport:
    return evaluate(
        data.target,
        data.tenants,
        data.overrides,
        data.registry.registrations,
        data.registry.installed,
        data.history,
        data.observations,
    )


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
