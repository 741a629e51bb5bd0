"""The customization registry: published customizations (manifest plus what
introspection found), their per-tenant enabled state, and runtime health.

``core`` never imports the plugin runtime: the runtime hands over
:class:`~core.model.customizations.Registration` objects and health deltas, and
subscribes to changes (:meth:`RegistryService.subscribe`) to drop its per-tenant
caches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from packaging.version import Version
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import Principal
from core.model.clock import utcnow
from core.model.customizations import (
    CustomizationManifest,
    Health,
    HealthDelta,
    HookUse,
    KeyReference,
    Registration,
)
from core.model.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from core.store.invalidation import REGISTRY, notify
from core.store.models import AuditEntry, CustomizationRow, CustomizationTenant, Tenant, aware
from core.store.tenants import bump_data_version

#: the longest error message kept as a registration's last_error
MAX_ERROR_LENGTH = 2000


class NameCollisionError(AlreadyExistsError):
    """Another package already published a customization under this name."""

    def __init__(self, name: str, package: str, other: str) -> None:
        super().__init__("customization", name)
        self.message = (
            f"customization {name!r} is already published by package {other!r}; "
            f"package {package!r} must use another name (customization.toml: name)"
        )
        self.args = (self.message,)


def manifest_to_dict(m: CustomizationManifest) -> dict[str, Any]:
    return {
        "name": m.name,
        "version": m.version,
        "tenants": list(m.tenants),
        "requires": m.requires,
        "tested_up_to": m.tested_up_to,
        "capability": m.capability,
        "description": m.description,
        "author": m.author,
        # written only when false: manifests published before the field keep their form
        **({} if m.pure else {"pure": False}),
        **({"secrets": list(m.secrets)} if m.secrets else {}),
        **({"product": m.product} if m.product else {}),
    }


def manifest_from_dict(d: Mapping[str, Any]) -> CustomizationManifest:
    return CustomizationManifest(
        name=d["name"],
        version=d["version"],
        tenants=tuple(d.get("tenants", ())),
        requires=d.get("requires", ""),
        tested_up_to=d.get("tested_up_to"),
        capability=d.get("capability"),
        description=d.get("description", ""),
        author=d.get("author", ""),
        pure=bool(d.get("pure", True)),
        secrets=tuple(d.get("secrets", ())),
        product=d.get("product"),
    )


def hook_to_dict(h: HookUse) -> dict[str, Any]:
    return {
        "hook": h.hook,
        "params": list(h.params),
        "fingerprint": h.fingerprint,
        "returns_constant": h.returns_constant,
        "location": h.location,
        "features": list(h.features),
        "source": h.source,
    }


def hook_from_dict(d: Mapping[str, Any]) -> HookUse:
    return HookUse(
        hook=d["hook"],
        params=tuple(d.get("params", ())),
        fingerprint=d.get("fingerprint", ""),
        returns_constant=bool(d.get("returns_constant", False)),
        location=d.get("location", ""),
        features=tuple(d.get("features", ())),
        source=d.get("source", ""),
    )


def reference_to_dict(r: KeyReference) -> dict[str, Any]:
    return {"key": r.key, "file": r.file, "line": r.line, "how": r.how}


def reference_from_dict(d: Mapping[str, Any]) -> KeyReference:
    return KeyReference(d["key"], d.get("file", ""), int(d.get("line", 0)), d.get("how", ""))


class RegistryService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._listeners: list[Callable[[], None]] = []
        #: the published parts of registrations, parsed, by row id (see _Parsed)
        self._parsed: dict[int, _Parsed] = {}

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every committed publish or enablement change,
        here or (through :mod:`core.store.invalidation`) in another worker."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def changed_elsewhere(self) -> None:
        """Another worker committed a publish or an enablement change
        (:mod:`core.store.invalidation`): drop what the listeners cache."""
        self._changed()

    # -- writes ---------------------------------------------------------------
    async def publish(self, principal: Principal, registration: Registration) -> Registration:
        """Store (or update to a newer version) a registration. Refuses a name
        another package published, an older version, unknown tenants. Enabled
        states of tenants the new manifest no longer lists are dropped."""
        m = registration.manifest
        principal.require_publish_customization(m.tenants)
        package = registration.package or m.name
        async with self._sessions.begin() as session:
            tenant_ids = await _tenant_ids(session, m.tenants)
            missing = [t for t in m.tenants if t not in tenant_ids]
            if missing:
                raise NotFoundError(
                    "tenant",
                    ", ".join(missing),
                    f"customization.toml: tenants of {m.name!r} must be existing tenants",
                )
            row = await session.scalar(
                select(CustomizationRow).where(CustomizationRow.name == m.name)
            )
            fields = {
                "package": package,
                "version": m.version,
                "capability": m.capability,
                "manifest": manifest_to_dict(m),
                "hooks": [hook_to_dict(h) for h in registration.hooks],
                "setting_keys": list(registration.setting_keys),
                "key_references": [reference_to_dict(r) for r in registration.references],
                "published_at": utcnow(),
                "published_by": principal.name,
            }
            previous = None if row is None else row.version
            if row is None:
                row = CustomizationRow(name=m.name, calls=0, failures=0, **fields)
                session.add(row)
            else:
                if row.package != package:
                    raise NameCollisionError(m.name, package, row.package)
                if Version(m.version) < Version(row.version):
                    raise InvalidInputError(
                        "version",
                        f"{m.name} {m.version} is older than the published {row.version}; "
                        "publish a newer version",
                    )
                for key, value in fields.items():
                    setattr(row, key, value)
                stale = [s for s in await _states(session, row.id) if s[0] not in m.tenants]
                for slug, state in stale:
                    session.add(
                        _audit(
                            principal,
                            "drop_customization_tenant",
                            m.name,
                            state.enabled,
                            None,
                            reason=f"{slug} is no longer listed in {m.name} {m.version}",
                            tenant_id=state.tenant_id,
                        )
                    )
                    await session.delete(state)
            session.add(_audit(principal, "publish_customization", m.name, previous, m.version))
            await session.flush()
            # the listed tenants and those just dropped: their hooks may change
            # (a manifest listing more than MAX_IN_LIST tenants: every tenant, rather
            # than one bind parameter per slug)
            if len(m.tenants) <= MAX_IN_LIST:
                await bump_data_version(
                    session,
                    Tenant.id.in_(
                        select(CustomizationTenant.tenant_id)
                        .where(CustomizationTenant.customization_id == row.id)
                        .union(select(Tenant.id).where(Tenant.slug.in_(list(m.tenants))))
                    ),
                )
            else:
                await bump_data_version(session)
            result = await self._load(session, row)
            await notify(session, REGISTRY)
        self._changed()
        return result

    async def publish_many(
        self, principal: Principal, registrations: Sequence[Registration]
    ) -> int:
        """Publish generated registrations in bulk (fleets for scale tests), with a
        constant number of statements. Idempotent: names already published keep
        their rows; only missing enabled states are added. Returns how many
        registrations were new."""
        for r in registrations:
            principal.require_publish_customization(r.manifest.tenants)
        if not registrations:
            return 0
        slugs = {t for r in registrations for t in (*r.manifest.tenants, *r.enabled_for)}
        async with self._sessions.begin() as session:
            tenant_ids = await _tenant_ids(session, slugs)
            missing = sorted(slugs - set(tenant_ids))
            if missing:
                raise NotFoundError("tenant", ", ".join(missing[:5]))
            names = [r.manifest.name for r in registrations]
            # every published name (one statement, no bind parameter per name:
            # bulk publishing goes beyond PostgreSQL's 32,767 parameters)
            wanted = set(names)
            existing = {
                name: cid
                for name, cid in (
                    await session.execute(select(CustomizationRow.name, CustomizationRow.id))
                ).all()
                if name in wanted
            }
            fresh = [r for r in registrations if r.manifest.name not in existing]
            now = utcnow()
            by_name = dict(existing)
            if fresh:
                ids = await session.scalars(
                    insert(CustomizationRow).returning(
                        CustomizationRow.id, sort_by_parameter_order=True
                    ),
                    [
                        {
                            "name": r.manifest.name,
                            "package": r.package or r.manifest.name,
                            "version": r.manifest.version,
                            "capability": r.manifest.capability,
                            "manifest": manifest_to_dict(r.manifest),
                            "hooks": [hook_to_dict(h) for h in r.hooks],
                            "setting_keys": list(r.setting_keys),
                            "key_references": [reference_to_dict(k) for k in r.references],
                            "published_at": now,
                            "published_by": principal.name,
                            "calls": 0,
                            "failures": 0,
                        }
                        for r in fresh
                    ],
                )
                by_name.update(zip([r.manifest.name for r in fresh], list(ids), strict=True))
            known = set(existing.values())
            present = (
                {
                    (cid, tid)
                    for cid, tid in (
                        await session.execute(
                            select(
                                CustomizationTenant.customization_id, CustomizationTenant.tenant_id
                            )
                        )
                    ).all()
                    if cid in known
                }
                if existing
                else set()
            )
            states = [
                {
                    "customization_id": by_name[r.manifest.name],
                    "tenant_id": tenant_ids[t],
                    "enabled": True,
                    "updated_at": now,
                    "updated_by": principal.name,
                }
                for r in registrations
                for t in r.enabled_for
                if (by_name[r.manifest.name], tenant_ids[t]) not in present
            ]
            if states:
                await session.execute(insert(CustomizationTenant), states)
            # bulk publishing (fleets): every tenant's answer may change
            await bump_data_version(session)
            await notify(session, REGISTRY)
        self._changed()
        return len(fresh)

    async def set_enabled(
        self, principal: Principal, tenant: str, name: str, enabled: bool
    ) -> Registration:
        principal.require_enable_customization(tenant)
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(CustomizationRow).where(CustomizationRow.name == name)
            )
            listed = row.manifest.get("tenants", []) if row is not None else []
            if not principal.sees_all_tenants and tenant not in listed:
                # a scoped caller learns neither which customizations exist for
                # other tenants nor which tenants they list: one answer for both
                raise NotFoundError(
                    "customization",
                    name,
                    f"none of that name is published for tenant {tenant!r}; publish a "
                    "version that lists the tenant first",
                )
            if row is None:
                row = await _get(session, name)  # the admin's detailed refusal
            tenant_id = (await _tenant_ids(session, [tenant])).get(tenant)
            if tenant_id is None:
                raise NotFoundError("tenant", tenant, "list tenants with the 'tenants' query")
            if tenant not in listed:
                raise InvalidInputError(
                    "tenant",
                    f"customization {name!r} is not made for tenant {tenant!r} (its "
                    f"customization.toml lists: {', '.join(listed)}); publish a version "
                    "that lists the tenant first",
                )
            state = await session.scalar(
                select(CustomizationTenant).where(
                    CustomizationTenant.customization_id == row.id,
                    CustomizationTenant.tenant_id == tenant_id,
                )
            )
            if state is None:
                state = CustomizationTenant(
                    customization_id=row.id, tenant_id=tenant_id, updated_by=principal.name
                )
                session.add(state)
            action = "enable_customization" if enabled else "disable_customization"
            session.add(
                _audit(principal, action, name, bool(state.enabled), enabled, tenant_id=tenant_id)
            )
            state.enabled = enabled
            state.updated_at = utcnow()
            state.updated_by = principal.name
            await bump_data_version(session, Tenant.id == tenant_id)
            await session.flush()
            result = await self._load(session, row)
            await notify(session, REGISTRY)
        self._changed()
        return result

    async def record_health(self, deltas: Sequence[HealthDelta]) -> None:
        """Add calls and failures to registrations: ONE statement for the batch."""
        deltas = [d for d in deltas if d.calls or d.failures]
        if not deltas:
            return
        # a declarative class's __table__ is typed FromClause; for a mapped class it is a Table
        table = cast(Table, CustomizationRow.__table__)
        statement = (
            update(table)
            .where(table.c.name == bindparam("b_name"))
            .values(
                calls=table.c.calls + bindparam("b_calls"),
                failures=table.c.failures + bindparam("b_failures"),
                last_error=func.coalesce(bindparam("b_error"), table.c.last_error),
                last_error_at=func.coalesce(bindparam("b_error_at"), table.c.last_error_at),
            )
        )
        params = [
            {
                "b_name": d.name,
                "b_calls": d.calls,
                "b_failures": d.failures,
                "b_error": d.last_error[:MAX_ERROR_LENGTH] if d.last_error else None,
                "b_error_at": d.last_error_at,
            }
            for d in deltas
        ]
        async with self._sessions.begin() as session:
            conn = await session.connection()
            await conn.execute(statement, params)

    # -- reads ----------------------------------------------------------------
    async def list_all(
        self,
        principal: Principal,
        tenant: str | None = None,
        capability: str | None = None,
    ) -> list[Registration]:
        """Registrations in the caller's scope; consultants see those made for
        their tenants, and only their tenants' enabled states."""
        principal.require_read_customizations(tenant)
        async with self._sessions() as session:
            # plain columns, not ORM instances: a fleet has tens of thousands of rows
            query = select(*_COLUMNS).order_by(CustomizationRow.name)
            if capability is not None:
                query = query.where(CustomizationRow.capability == capability)
            rows = (await session.execute(query)).all()
            # a join, never one bind parameter per customization (PostgreSQL
            # refuses more than 32,767 of them)
            enabled = await _enabled_by_row(
                session,
                CustomizationTenant.customization_id.in_(
                    select(CustomizationRow.id).where(CustomizationRow.capability == capability)
                )
                if capability is not None
                else None,
            )
        everyone = principal.sees_all_tenants
        result = []
        for row in rows:
            listed = row.manifest.get("tenants", [])
            if tenant is not None and tenant not in listed:
                continue
            if not everyone and not principal.visible(listed):
                continue
            states = enabled.get(row.id, ())
            result.append(
                _registration(row, states if everyone else principal.visible(states), self._parsed)
            )
        return result

    async def get(self, principal: Principal, name: str) -> Registration:
        principal.require_read_customizations()
        async with self._sessions() as session:
            row = await _get(session, name)
            if not principal.sees_all_tenants and not principal.visible(
                row.manifest.get("tenants", [])
            ):
                raise NotFoundError("customization", name)
            enabled = await _enabled_by_row(session, CustomizationTenant.customization_id == row.id)
        return _registration(row, principal.visible(enabled.get(row.id, [])))

    async def enabled_map(self) -> dict[str, frozenset[str]]:
        """tenant slug -> names of the customizations enabled for it (one query;
        for the plugin runtime, which is not a caller with a scope)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Tenant.slug, CustomizationRow.name)
                    .join(CustomizationTenant, CustomizationTenant.tenant_id == Tenant.id)
                    .join(
                        CustomizationRow,
                        CustomizationRow.id == CustomizationTenant.customization_id,
                    )
                    .where(CustomizationTenant.enabled.is_(True))
                )
            ).all()
        found: dict[str, set[str]] = {}
        for slug, name in rows:
            found.setdefault(slug, set()).add(name)
        return {k: frozenset(v) for k, v in found.items()}

    async def _load(self, session: AsyncSession, row: CustomizationRow) -> Registration:
        enabled = await _enabled_by_row(session, CustomizationTenant.customization_id == row.id)
        return _registration(row, enabled.get(row.id, []))


def _audit(
    principal: Principal,
    action: str,
    name: str,
    old: Any,
    new: Any,
    *,
    tenant_id: int | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Audit entries for customization changes name the customization in ``key``."""
    return AuditEntry(
        actor=principal.name,
        action=action,
        tenant_id=tenant_id,
        key=f"customization:{name}",
        old=old,
        new=new,
        reason=reason,
    )


async def _get(session: AsyncSession, name: str) -> CustomizationRow:
    row = await session.scalar(select(CustomizationRow).where(CustomizationRow.name == name))
    if row is None:
        raise NotFoundError(
            "customization", name, "publish it first ('tailor customization publish PATH')"
        )
    return row


#: the most values bound in one IN list (PostgreSQL refuses more than 32,767
#: parameters in a statement); beyond it a statement reads the rows and filters
MAX_IN_LIST = 1_000


async def _tenant_ids(session: AsyncSession, slugs: Iterable[str]) -> dict[str, int]:
    slugs = list(slugs)
    if not slugs:
        return {}
    if len(slugs) > MAX_IN_LIST:
        # a fleet: read every tenant rather than bind one parameter per slug
        wanted = set(slugs)
        rows = await session.execute(select(Tenant.slug, Tenant.id))
        return {slug: tid for slug, tid in rows.all() if slug in wanted}
    rows = await session.execute(select(Tenant.slug, Tenant.id).where(Tenant.slug.in_(slugs)))
    return {slug: tid for slug, tid in rows.all()}


async def _states(
    session: AsyncSession, customization_id: int
) -> list[tuple[str, CustomizationTenant]]:
    rows = await session.execute(
        select(Tenant.slug, CustomizationTenant)
        .join(Tenant, Tenant.id == CustomizationTenant.tenant_id)
        .where(CustomizationTenant.customization_id == customization_id)
    )
    return [(slug, state) for slug, state in rows.all()]


async def _enabled_by_row(session: AsyncSession, where: Any | None) -> dict[int, list[str]]:
    """customization id -> the slugs of the tenants it is enabled for, for the
    enabled states matching ``where`` (None: all): one statement."""
    query = (
        select(CustomizationTenant.customization_id, Tenant.slug)
        .join(Tenant, Tenant.id == CustomizationTenant.tenant_id)
        .where(CustomizationTenant.enabled.is_(True))
        .order_by(Tenant.slug)
    )
    if where is not None:
        query = query.where(where)
    rows = await session.execute(query)
    found: dict[int, list[str]] = {}
    for cid, slug in rows.all():
        found.setdefault(cid, []).append(slug)
    return found


#: the columns a :class:`Registration` is built from (rows, not ORM instances)
_COLUMNS = (
    CustomizationRow.id,
    CustomizationRow.manifest,
    CustomizationRow.hooks,
    CustomizationRow.setting_keys,
    CustomizationRow.key_references,
    CustomizationRow.published_at,
    CustomizationRow.calls,
    CustomizationRow.failures,
    CustomizationRow.last_error,
    CustomizationRow.last_error_at,
    CustomizationRow.package,
    CustomizationRow.published_by,
)


@dataclass(frozen=True)
class _Parsed:
    """A row's published parts (manifest, hooks, keys, references) as values. They
    change only when the customization is published again, which sets a new
    ``published_at`` and stores a new manifest: both are compared before reuse, so
    a fleet's readiness runs stop re-parsing thousands of unchanged registrations."""

    published_at: Any
    manifest_data: Any
    manifest: CustomizationManifest
    hooks: tuple[HookUse, ...]
    setting_keys: tuple[str, ...]
    references: tuple[KeyReference, ...]


def _parse(row: Any) -> _Parsed:
    return _Parsed(
        row.published_at,
        row.manifest,
        manifest_from_dict(row.manifest),
        tuple(hook_from_dict(h) for h in row.hooks),
        tuple(row.setting_keys),
        tuple(reference_from_dict(r) for r in row.key_references or ()),
    )


def _registration(
    row: Any, enabled_for: Sequence[str], parsed: dict[int, _Parsed] | None = None
) -> Registration:
    """A registration from a :class:`CustomizationRow` or a row of ``_COLUMNS``;
    ``parsed`` keeps the published parts parsed across calls (by row id)."""
    if parsed is None:
        static = _parse(row)
    else:
        kept = parsed.get(row.id)
        if (
            kept is None
            or kept.published_at != row.published_at
            or kept.manifest_data != row.manifest
        ):
            kept = parsed[row.id] = _parse(row)
        static = kept
    return Registration(
        manifest=static.manifest,
        hooks=static.hooks,
        setting_keys=static.setting_keys,
        references=static.references,
        enabled_for=tuple(enabled_for),
        published_at=aware(row.published_at),
        health=Health(
            calls=row.calls,
            failures=row.failures,
            last_error=row.last_error,
            last_error_at=aware(row.last_error_at),
        ),
        package=row.package,
        published_by=row.published_by,
    )
