"""The customization registry: published customizations (manifest plus what
introspection found), their per-tenant enabled state, and runtime health.

``core`` never imports the plugin runtime: the runtime hands over
:class:`~core.model.customizations.Registration` objects and health deltas, and
subscribes to changes (:meth:`RegistryService.subscribe`) to drop its per-tenant
caches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from sqlalchemy import (
    JSON,
    String,
    Table,
    bindparam,
    exists,
    func,
    insert,
    null,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import Principal
from core.model.clock import utcnow
from core.model.customizations import (
    CustomizationManifest,
    CustomizationVersion,
    Health,
    HealthDelta,
    HookUse,
    KeyReference,
    Pin,
    Registration,
    customization_not_found,
    sees_customization,
    visible_customization,
)
from core.model.errors import (
    AlreadyExistsError,
    ChangeRequestRequiredError,
    InvalidInputError,
    NotFoundError,
)
from core.store.authorization import (
    Authorization,
    locked_protection,
    require_change_request,
)
from core.store.invalidation import REGISTRY, notify
from core.store.models import (
    AuditEntry,
    CustomizationArtifact,
    CustomizationRow,
    CustomizationTenant,
    CustomizationVersionRow,
    Environment,
    Release,
    Tenant,
    aware,
)
from core.store.tenants import bump_data_version, load_tenant_ref

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
        "signature": list(h.signature),
        "behaviour": h.behaviour,
        "constants": [list(c) for c in h.constants],
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
        signature=tuple(d.get("signature", ())),
        behaviour=d.get("behaviour", ""),
        constants=tuple((str(s), v, str(r)) for s, v, r in d.get("constants", ())),
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
        #: versions as the runtime runs them, parsed once (a version never changes)
        self._pins: dict[int, Pin] = {}

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
        """Store a new version of a customization (its artifact, when the
        registration carries one). Versions are immutable: the same name and version
        with other content is refused, with the same content it changes nothing.
        Publishing moves no tenant: pins change only through :meth:`set_enabled`
        and :meth:`set_version`. The newest version (highest PEP 440, not yanked)
        is what listings, readiness and fold-back read as the customization's.
        Returns the version published, with the customization's tenants and health."""
        m = registration.manifest
        principal.require_publish_customization(m.tenants)
        package = registration.package or m.name
        fields = _version_fields(registration)
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
            if row is None:
                row = CustomizationRow(
                    name=m.name,
                    calls=0,
                    failures=0,
                    package=package,
                    published_by=principal.name,
                    **_current_fields(fields),
                )
                session.add(row)
                await session.flush()
                versions: list[CustomizationVersionRow] = []
            else:
                # a new version may not take a customization away from the tenants
                # of its earlier versions' consultants
                principal.require_publish_customization(row.manifest.get("tenants", []))
                if registration.package and row.package != package and row.package != m.name:
                    raise NameCollisionError(m.name, package, row.package)
                versions = await _versions(session, row.id)
            same = next((v for v in versions if v.version == m.version), None)
            if same is not None:
                if _same_content(same, fields):
                    return _as_published(await self._load(session, row), registration)
                if (
                    same.sha256 is None
                    and registration.sha256 is not None
                    and _same_identity(same.manifest, fields["manifest"])
                ):
                    # registered before versions existed: its code is stored now
                    await _store_artifact(session, registration)
                    same.sha256 = registration.sha256
                    same.manifest = fields["manifest"]
                    same.hooks = fields["hooks"]
                    same.setting_keys = fields["setting_keys"]
                    same.key_references = fields["key_references"]
                    same.hooks_module = fields["hooks_module"]
                    session.add(
                        _audit(principal, "store_customization_code", m.name, None, m.version)
                    )
                    await _refresh_current(session, row, [*versions])
                    await session.flush()
                    result = await self._load(session, row)
                    await notify(session, REGISTRY)
                    self._changed()
                    return _as_published(result, registration)
                raise AlreadyExistsError(
                    "customization version",
                    f"{m.name} {m.version}",
                    f"{m.name} {m.version} is already published with other content "
                    f"(sha256 {(same.sha256 or 'none')[:12]}); a version never changes: "
                    "raise the version in customization.toml and publish again",
                )
            await _store_artifact(session, registration)
            version = CustomizationVersionRow(
                customization_id=row.id, published_by=principal.name, **fields
            )
            session.add(version)
            await session.flush()
            previous = row.version if versions else None
            await _refresh_current(session, row, [*versions, version])
            row.published_at = utcnow()
            row.published_by = principal.name
            session.add(_audit(principal, "publish_customization", m.name, previous, m.version))
            await session.flush()
            result = await self._load(session, row)
            await notify(session, REGISTRY)
        self._changed()
        return _as_published(result, registration)

    async def versions(self, principal: Principal, name: str) -> list[CustomizationVersion]:
        """Every published version of ``name``, newest first, with the tenants (in
        the caller's scope) pinned to each."""
        principal.require_read_customizations()
        async with self._sessions() as session:
            row = await self._visible_row(session, principal, name)
        return (await self.versions_of(principal, [row.name])).get(name, [])

    async def versions_of(
        self, principal: Principal, names: Sequence[str] | None = None
    ) -> dict[str, list[CustomizationVersion]]:
        """name -> versions (newest first) of the customizations ``names`` (None:
        every one), each with its tenants in the caller's scope pinned to it:
        two statements, whatever the number of customizations. Callers check scope
        on the customizations themselves."""
        async with self._sessions() as session:
            query = select(CustomizationRow.name, CustomizationVersionRow).join(
                CustomizationRow, CustomizationRow.id == CustomizationVersionRow.customization_id
            )
            pins = (
                select(CustomizationTenant.version_id, Tenant.slug)
                .join(Tenant, Tenant.id == CustomizationTenant.tenant_id)
                .join(CustomizationRow, CustomizationRow.id == CustomizationTenant.customization_id)
            )
            if names is not None and len(names) <= MAX_IN_LIST:
                query = query.where(CustomizationRow.name.in_(list(names)))
                pins = pins.where(CustomizationRow.name.in_(list(names)))
            rows = (await session.execute(query)).all()
            pinned = (
                await session.execute(
                    pins.where(CustomizationTenant.enabled.is_(True)).order_by(Tenant.slug)
                )
            ).all()
        by_version: dict[int | None, list[str]] = {}
        for version_id, slug in pinned:
            if principal.in_scope(slug):
                by_version.setdefault(version_id, []).append(slug)
        wanted = set(names) if names is not None else None
        found: dict[str, list[CustomizationVersion]] = {}
        for name, v in rows:
            if wanted is not None and name not in wanted:
                continue
            found.setdefault(name, []).append(
                CustomizationVersion(
                    name=name,
                    version=v.version,
                    sha256=v.sha256,
                    published_at=aware(v.published_at),
                    published_by=v.published_by,
                    tenants=tuple(v.manifest.get("tenants", ())),
                    requires=v.manifest.get("requires", ""),
                    yanked_at=aware(v.yanked_at),
                    yank_reason=v.yank_reason,
                    pinned_for=tuple(by_version.get(v.id, [])),
                )
            )
        for versions in found.values():
            versions.sort(key=lambda v: _version_key(v.version), reverse=True)
        return found

    async def yank(
        self, principal: Principal, name: str, version: str, reason: str
    ) -> CustomizationVersion:
        """Withdraw a bad version: it can never be pinned again; the tenants still
        on it keep running it and are flagged (readiness, the console)."""
        principal.require_publish_customization(())  # the role; the tenants below
        if not reason.strip():
            raise InvalidInputError(
                "reason", "say why the version is withdrawn (--reason), for its tenants"
            )
        async with self._sessions.begin() as session:
            row = await self._visible_row(session, principal, name)
            versions = await _versions(session, row.id)
            found = next((v for v in versions if v.version == version), None)
            if found is None:
                raise NotFoundError(
                    "customization version",
                    f"{name} {version}",
                    f"published versions: {', '.join(v.version for v in versions)}",
                )
            principal.require_publish_customization(found.manifest.get("tenants", []))
            if found.yanked_at is None:
                found.yanked_at = utcnow()
                found.yank_reason = reason.strip()
                session.add(
                    _audit(principal, "yank_customization", name, version, None, reason=reason)
                )
                await _refresh_current(session, row, versions)
                await session.flush()
                await notify(session, REGISTRY)
        self._changed()
        return next(v for v in await self.versions(principal, name) if v.version == version)

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
                await session.execute(
                    insert(CustomizationVersionRow),
                    [
                        {
                            "customization_id": by_name[r.manifest.name],
                            "published_at": now,
                            "published_by": principal.name,
                            **_version_fields(r),
                        }
                        for r in fresh
                    ],
                )
            # each customization's version as published (the pin of its tenants)
            wanted_versions = {
                (by_name[r.manifest.name], r.manifest.version) for r in registrations
            }
            version_ids = {
                (cid, version): vid
                for cid, version, vid in (
                    await session.execute(
                        select(
                            CustomizationVersionRow.customization_id,
                            CustomizationVersionRow.version,
                            CustomizationVersionRow.id,
                        )
                    )
                ).all()
                if (cid, version) in wanted_versions
            }
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
                    "version_id": version_ids.get((by_name[r.manifest.name], r.manifest.version)),
                    "updated_at": now,
                    "updated_by": principal.name,
                }
                for r in registrations
                for t in r.enabled_for
                if (by_name[r.manifest.name], tenant_ids[t]) not in present
            ]
            if states:
                # no bulk path past a protected environment: one statement
                enabling = {st["tenant_id"] for st in states}
                protected = [
                    slug
                    for tid, slug in (
                        await session.execute(
                            select(Tenant.id, Tenant.slug)
                            .join(Environment, Environment.tenant_id == Tenant.id)
                            .where(Environment.protected.is_(True))
                        )
                    ).all()
                    if tid in enabling
                ]
                if protected:
                    raise ChangeRequestRequiredError(
                        protected[0], None, "enabling a customization in bulk"
                    )
                await session.execute(insert(CustomizationTenant), states)
            # bulk publishing (fleets): every tenant's answer may change
            await bump_data_version(session)
            await notify(session, REGISTRY)
        self._changed()
        return len(fresh)

    async def set_enabled(
        self,
        principal: Principal,
        tenant: str,
        name: str,
        enabled: bool,
        version: str | None = None,
        *,
        authorization: Authorization | None = None,
        dry_run: bool = False,
    ) -> Registration:
        """Turn ``name`` on or off for ``tenant``. Enabling pins ``version`` when
        named; otherwise the tenant keeps its pin when it has a valid one, else it
        is pinned to the newest version that lists it, whose ``requires`` contains
        its release and that is not yanked (pre-releases only when named).

        For a tenant with a protected environment (a customization runs in all of
        them) only with an ``authorization``, else
        :class:`~core.model.errors.ChangeRequestRequiredError`. ``dry_run``: check
        everything, write nothing (a change request being proposed)."""
        return await self._pin(
            principal,
            tenant,
            name,
            enabled=enabled,
            version=version,
            authorization=authorization,
            dry_run=dry_run,
        )

    async def set_version(
        self,
        principal: Principal,
        tenant: str,
        name: str,
        version: str,
        *,
        authorization: Authorization | None = None,
        dry_run: bool = False,
    ) -> Registration:
        """Pin ``tenant`` to ``version`` of ``name`` (rolling back is pinning the
        previous version); its enabled state stays as it is. Protected
        environments: as :meth:`set_enabled`."""
        return await self._pin(
            principal,
            tenant,
            name,
            enabled=None,
            version=version,
            authorization=authorization,
            dry_run=dry_run,
        )

    async def _pin(
        self,
        principal: Principal,
        tenant: str,
        name: str,
        *,
        enabled: bool | None,
        version: str | None,
        authorization: Authorization | None = None,
        dry_run: bool = False,
    ) -> Registration:
        principal.require_enable_customization(tenant)
        try:
            return await self._pin_once(
                principal, tenant, name, enabled, version, authorization, dry_run
            )
        except _DryRun as checked:
            return checked.result

    async def _pin_once(
        self,
        principal: Principal,
        tenant: str,
        name: str,
        enabled: bool | None,
        version: str | None,
        authorization: Authorization | None,
        dry_run: bool,
    ) -> Registration:
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(CustomizationRow).where(CustomizationRow.name == name)
            )
            versions = await _versions(session, row.id) if row is not None else []
            listed = {t for v in versions for t in v.manifest.get("tenants", [])}
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
            found = (
                await session.execute(
                    select(Tenant.id, Release.version)
                    .join(Release, Release.id == Tenant.release_id)
                    .where(Tenant.slug == tenant)
                )
            ).first()
            if found is None:
                raise NotFoundError("tenant", tenant, "list tenants with the 'tenants' query")
            tenant_id, release = found
            what = "enabling, disabling or pinning a customization"
            if not dry_run:
                ref = await locked_protection(session, await load_tenant_ref(session, tenant))
                require_change_request(ref, None, authorization, what)
                if authorization is not None:
                    await authorization.record(
                        session,
                        tenant_id,
                        None,
                        f"customization:{name}",
                        protected=ref.protects(None),
                    )
            state = await session.scalar(
                select(CustomizationTenant).where(
                    CustomizationTenant.customization_id == row.id,
                    CustomizationTenant.tenant_id == tenant_id,
                )
            )
            current = next((v for v in versions if state and v.id == state.version_id), None)
            target: CustomizationVersionRow | None
            if version is not None:
                target = _pinnable(versions, name, tenant, release, version)
            elif enabled and current is not None and _fits(current, tenant) is None:
                target = current
            elif enabled:
                target = _newest_pinnable(versions, name, tenant, release)
            else:
                target = current
            if state is None:
                state = CustomizationTenant(
                    customization_id=row.id,
                    tenant_id=tenant_id,
                    enabled=False,
                    updated_by=principal.name,
                )
                session.add(state)
            was_enabled = bool(state.enabled)
            now_enabled = was_enabled if enabled is None else enabled
            if enabled is not None:
                action = "enable_customization" if enabled else "disable_customization"
                session.add(
                    _audit(principal, action, name, was_enabled, enabled, tenant_id=tenant_id)
                )
            if target is not None and target is not current:
                session.add(
                    _audit(
                        principal,
                        "pin_customization",
                        name,
                        current.version if current else None,
                        target.version,
                        tenant_id=tenant_id,
                    )
                )
                state.version_id = target.id
            state.enabled = now_enabled
            state.updated_at = utcnow()
            state.updated_by = principal.name
            await bump_data_version(session, Tenant.id == tenant_id)
            await session.flush()
            result = await self._load(session, row)
            if dry_run:
                raise _DryRun(result)  # rolls every change back
            await notify(session, REGISTRY)
        self._changed()
        return result

    async def versions_without_code(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(name, version, tenants) of the versions registered without their code
        (before versions stored it): ``tailor db upgrade`` stores it from disk."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    CustomizationRow.name,
                    CustomizationVersionRow.version,
                    CustomizationVersionRow.manifest,
                )
                .join(
                    CustomizationRow,
                    CustomizationRow.id == CustomizationVersionRow.customization_id,
                )
                .where(CustomizationVersionRow.sha256.is_(None))
                .order_by(CustomizationRow.name)
            )
        return [(n, v, tuple(m.get("tenants", ()))) for n, v, m in rows.all()]

    async def pinned_map(self) -> dict[str, tuple[Pin, ...]]:
        """tenant slug -> the pinned versions of its enabled customizations, in name
        order (one statement; for the plugin runtime, not a caller with a scope).
        Versions are immutable: each is parsed once per process, and read once per
        call whatever the number of tenants pinned to it (a version pinned by a
        thousand tenants is not decoded a thousand times)."""
        enabled = (CustomizationTenant.enabled.is_(True),)
        versions = select(
            type_coerce(null(), String).label("slug"),
            CustomizationVersionRow.id,
            CustomizationVersionRow.manifest,
            CustomizationVersionRow.sha256,
            CustomizationVersionRow.hooks,
            CustomizationVersionRow.hooks_module,
        ).where(
            exists().where(CustomizationTenant.version_id == CustomizationVersionRow.id, *enabled)
        )
        pins = (
            select(
                Tenant.slug,
                CustomizationTenant.version_id,
                type_coerce(null(), JSON),
                type_coerce(null(), String),
                type_coerce(null(), JSON),
                type_coerce(null(), String),
            )
            .join(CustomizationTenant, CustomizationTenant.tenant_id == Tenant.id)
            .where(CustomizationTenant.version_id.is_not(None), *enabled)
        )
        async with self._sessions() as session:
            rows = (await session.execute(union_all(versions, pins))).all()
        pairs: list[tuple[str, int]] = []
        for slug, vid, manifest, sha256, hooks, hooks_module in rows:
            if slug is not None:
                pairs.append((slug, vid))
            elif vid not in self._pins:
                self._pins[vid] = Pin(
                    tenant="",
                    manifest=manifest_from_dict(manifest),
                    sha256=sha256,
                    hooks=tuple(hook_from_dict(h) for h in hooks),
                    hooks_module=hooks_module,
                )
        found: dict[str, list[Pin]] = {}
        for slug, vid in pairs:
            found.setdefault(slug, []).append(replace(self._pins[vid], tenant=slug))
        return {slug: tuple(sorted(pins, key=lambda p: p.name)) for slug, pins in found.items()}

    async def version_pin(self, principal: Principal, name: str, version: str) -> Pin:
        """Version ``version`` of ``name`` as the runtime runs it (a rehearsal's
        candidate, pinned or not): two statements."""
        principal.require_read_customizations()
        async with self._sessions() as session:
            row = await self._visible_row(session, principal, name)
            found = (
                await session.execute(
                    select(CustomizationVersionRow).where(
                        CustomizationVersionRow.customization_id == row.id,
                        CustomizationVersionRow.version == version,
                    )
                )
            ).scalar_one_or_none()
        if found is None:
            known = ", ".join(v.version for v in await self.versions(principal, name)) or "none"
            raise NotFoundError(
                "customization version", f"{name}@{version}", f"published versions: {known}"
            )
        return Pin(
            tenant="",
            manifest=manifest_from_dict(found.manifest),
            sha256=found.sha256,
            hooks=tuple(hook_from_dict(h) for h in found.hooks),
            hooks_module=found.hooks_module,
        )

    async def artifacts(self, hashes: Sequence[str]) -> dict[str, bytes]:
        """The stored packages (canonical zips) with these tree hashes: one statement."""
        if not hashes:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(CustomizationArtifact.sha256, CustomizationArtifact.data).where(
                    CustomizationArtifact.sha256.in_(list(hashes)[:MAX_IN_LIST])
                )
            )
        return {sha: bytes(data) for sha, data in rows.all()}

    async def _visible_row(
        self, session: AsyncSession, principal: Principal, name: str
    ) -> CustomizationRow:
        row = await _get(session, name)
        if not sees_customization(principal, row.manifest.get("tenants", [])):
            raise customization_not_found(name)  # the same answer as for no such name
        return row

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
            query = _with_current_version(select(*_COLUMNS)).order_by(CustomizationRow.name)
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
        result = []
        for row in rows:
            listed = row.manifest.get("tenants", [])
            if tenant is not None and tenant not in listed:
                continue
            if not sees_customization(principal, listed):
                continue
            registration = _registration(row, enabled.get(row.id, []), self._parsed)
            if not principal.sees_all_tenants:
                registration = _as_seen(principal, registration)
            result.append(registration)
        return result

    async def pinned_registrations(
        self, principal: Principal, registrations: Sequence[Registration] | None = None
    ) -> list[Registration]:
        """What the tenants run, as readiness judges it: one registration per pinned
        version (its manifest, code evidence and yank reason), enabled for the
        tenants pinned to it; the newest version also stands for the tenants its
        manifest lists that run none yet. Two statements more than
        :meth:`list_all`'s, whatever the fleet's size (one, given
        ``registrations``: what :meth:`list_all` returned for ``principal``)."""
        if registrations is None:
            registrations = await self.list_all(principal)
        wanted = {(r.name, v) for r in registrations for _t, v in r.pins if v}
        rows: dict[tuple[str, str], CustomizationVersionRow] = {}
        if wanted:
            async with self._sessions() as session:
                # the pinned versions, by a semi-join: no bind parameter per name
                query = (
                    select(CustomizationRow.name, CustomizationVersionRow)
                    .join(
                        CustomizationRow,
                        CustomizationRow.id == CustomizationVersionRow.customization_id,
                    )
                    .where(
                        exists().where(
                            CustomizationTenant.version_id == CustomizationVersionRow.id,
                            CustomizationTenant.enabled.is_(True),
                        )
                    )
                )
                for name, found in (await session.execute(query)).all():
                    if (name, found.version) in wanted:
                        rows[(name, found.version)] = found
        result: list[Registration] = []
        for r in registrations:
            by_version: dict[str, list[str]] = {}
            for tenant, v in r.pins:
                by_version.setdefault(v or r.manifest.version, []).append(tenant)
            current = rows.get((r.name, r.manifest.version))
            result.append(
                replace(
                    r,
                    enabled_for=tuple(by_version.pop(r.manifest.version, [])),
                    yank_reason=current.yank_reason if current is not None else None,
                )
            )
            for pinned, tenants in sorted(by_version.items()):
                version_row = rows.get((r.name, pinned))
                if version_row is None:
                    continue
                result.append(
                    replace(
                        r,
                        manifest=manifest_from_dict(version_row.manifest),
                        hooks=tuple(hook_from_dict(h) for h in version_row.hooks),
                        setting_keys=tuple(version_row.setting_keys),
                        references=tuple(
                            reference_from_dict(k) for k in version_row.key_references
                        ),
                        sha256=version_row.sha256,
                        hooks_module=version_row.hooks_module,
                        enabled_for=tuple(tenants),
                        yank_reason=version_row.yank_reason,
                    )
                )
        return result

    async def get(self, principal: Principal, name: str) -> Registration:
        principal.require_read_customizations()
        async with self._sessions() as session:
            found = await self._visible_row(session, principal, name)
            registration = await self._load(session, found)
        return _as_seen(principal, registration)

    async def _load(self, session: AsyncSession, row: CustomizationRow) -> Registration:
        enabled = await _enabled_by_row(session, CustomizationTenant.customization_id == row.id)
        current = (
            await session.execute(
                _with_current_version(select(*_COLUMNS)).where(CustomizationRow.id == row.id)
            )
        ).one()
        return _registration(current, enabled.get(row.id, []))


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


def _as_seen(principal: Principal, registration: Registration) -> Registration:
    """``registration`` as ``principal`` may see it (:func:`visible_customization`):
    its enabled tenants and pins in scope, no last error that may be another
    scope's. Its manifest is the stored one: render its tenants from the view."""
    seen = visible_customization(
        principal, registration.manifest.tenants, registration.pins, registration.health
    )
    return replace(registration, enabled_for=seen.enabled_for, pins=seen.pins, health=seen.health)


class _DryRun(Exception):
    """Ends a checked write's transaction without committing it."""

    def __init__(self, result: Registration) -> None:
        self.result = result


async def _get(session: AsyncSession, name: str) -> CustomizationRow:
    row = await session.scalar(select(CustomizationRow).where(CustomizationRow.name == name))
    if row is None:
        raise customization_not_found(name)
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


async def _enabled_by_row(
    session: AsyncSession, where: Any | None
) -> dict[int, list[tuple[str, str]]]:
    """customization id -> (slug, pinned version) of the tenants it is enabled
    for, for the enabled states matching ``where`` (None: all): one statement."""
    query = (
        select(CustomizationTenant.customization_id, Tenant.slug, CustomizationVersionRow.version)
        .join(Tenant, Tenant.id == CustomizationTenant.tenant_id)
        .outerjoin(
            CustomizationVersionRow,
            CustomizationVersionRow.id == CustomizationTenant.version_id,
        )
        .where(CustomizationTenant.enabled.is_(True))
        .order_by(Tenant.slug)
    )
    if where is not None:
        query = query.where(where)
    rows = await session.execute(query)
    found: dict[int, list[tuple[str, str]]] = {}
    for cid, slug, version in rows.all():
        found.setdefault(cid, []).append((slug, version or ""))
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
    CustomizationVersionRow.sha256,
    CustomizationVersionRow.hooks_module,
)


def _with_current_version(query: Any) -> Any:
    """``query`` over ``_COLUMNS``: joined with the row's current version."""
    return query.outerjoin(
        CustomizationVersionRow,
        (CustomizationVersionRow.customization_id == CustomizationRow.id)
        & (CustomizationVersionRow.version == CustomizationRow.version),
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
    row: Any, states: Sequence[tuple[str, str]], parsed: dict[int, _Parsed] | None = None
) -> Registration:
    """A registration from a row of ``_COLUMNS`` (with its current version);
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
        enabled_for=tuple(slug for slug, _ in states),
        pins=tuple(states),
        sha256=row.sha256,
        hooks_module=row.hooks_module or "hooks",
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


# -- versions -------------------------------------------------------------------------


def _version_key(version: str) -> Version:
    try:
        return Version(version)
    except ValueError:  # InvalidVersion; stored before versions were checked: sorts first
        return Version("0")


def _version_fields(registration: Registration) -> dict[str, Any]:
    """A version row's published parts, from a registration."""
    return {
        "version": registration.manifest.version,
        "sha256": registration.sha256,
        "manifest": manifest_to_dict(registration.manifest),
        "hooks": [hook_to_dict(h) for h in registration.hooks],
        "setting_keys": list(registration.setting_keys),
        "key_references": [reference_to_dict(r) for r in registration.references],
        "hooks_module": registration.hooks_module,
    }


def _current_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The customization row's copy of its newest version."""
    return {
        "version": fields["version"],
        "capability": fields["manifest"].get("capability"),
        "manifest": fields["manifest"],
        "hooks": fields["hooks"],
        "setting_keys": fields["setting_keys"],
        "key_references": fields["key_references"],
    }


def _same_content(row: CustomizationVersionRow, fields: Mapping[str, Any]) -> bool:
    """The same version published again: the same artifact, or (both without
    code) the same manifest and hooks."""
    if row.sha256 is not None or fields["sha256"] is not None:
        return row.sha256 == fields["sha256"]
    return bool(row.manifest == fields["manifest"] and row.hooks == fields["hooks"])


async def _versions(session: AsyncSession, customization_id: int) -> list[CustomizationVersionRow]:
    return list(
        await session.scalars(
            select(CustomizationVersionRow).where(
                CustomizationVersionRow.customization_id == customization_id
            )
        )
    )


async def _store_artifact(session: AsyncSession, registration: Registration) -> None:
    """Keep the registration's archive under its tree hash (once per hash)."""
    if registration.sha256 is None or registration.archive is None:
        return
    exists = await session.scalar(
        select(CustomizationArtifact.sha256).where(
            CustomizationArtifact.sha256 == registration.sha256
        )
    )
    if exists is None:
        session.add(
            CustomizationArtifact(
                sha256=registration.sha256,
                size=len(registration.archive),
                data=registration.archive,
            )
        )


async def _refresh_current(
    session: AsyncSession, row: CustomizationRow, versions: Sequence[CustomizationVersionRow]
) -> None:
    """The customization row mirrors its newest version that is not yanked (the
    newest yanked one when all are)."""
    live = [v for v in versions if v.yanked_at is None] or list(versions)
    if not live:
        return
    newest = max(live, key=lambda v: _version_key(v.version))
    for key, value in _current_fields(
        {
            "version": newest.version,
            "manifest": newest.manifest,
            "hooks": newest.hooks,
            "setting_keys": newest.setting_keys,
            "key_references": newest.key_references,
        }
    ).items():
        setattr(row, key, value)


def _fits(version: CustomizationVersionRow, tenant: str) -> str | None:
    """Why ``version`` cannot be pinned for ``tenant`` whatever its release (None: it can)."""
    if version.yanked_at is not None:
        return f"{version.version} was yanked ({version.yank_reason})"
    listed = version.manifest.get("tenants", [])
    if tenant not in listed:
        return (
            f"{version.version} does not list {tenant} in its customization.toml "
            f"(it lists: {', '.join(listed)})"
        )
    return None


def _requires_release(version: CustomizationVersionRow, release: str) -> str | None:
    requires = version.manifest.get("requires", "")
    try:
        ok = SpecifierSet(requires, prereleases=True).contains(Version(release), prereleases=True)
    except ValueError:  # InvalidSpecifier, InvalidVersion, a 5,000-digit segment
        ok = False
    if not ok:
        return f"{version.version} requires {requires!r}, which excludes release {release}"
    return None


def _pinnable(
    versions: Sequence[CustomizationVersionRow],
    name: str,
    tenant: str,
    release: str,
    wanted: str,
) -> CustomizationVersionRow:
    try:
        wanted_key = Version(wanted)
    except ValueError:  # InvalidVersion, or a segment beyond the int-string limit
        raise InvalidInputError(
            "version", f"{wanted!r} is not a PEP 440 version (e.g. '1.2.0')"
        ) from None
    found = next((v for v in versions if _version_key(v.version) == wanted_key), None)
    if found is None:
        known = ", ".join(
            v.version for v in sorted(versions, key=lambda v: _version_key(v.version))
        )
        raise NotFoundError(
            "customization version",
            f"{name} {wanted}",
            f"published versions: {known or 'none'} ('tailor customization versions {name}')",
        )
    why = _fits(found, tenant) or _requires_release(found, release)
    if why is not None:
        raise InvalidInputError("version", f"{name} {why}; pin another version")
    return found


def _newest_pinnable(
    versions: Sequence[CustomizationVersionRow], name: str, tenant: str, release: str
) -> CustomizationVersionRow:
    reasons = []
    for v in sorted(versions, key=lambda v: _version_key(v.version), reverse=True):
        why = _fits(v, tenant) or _requires_release(v, release)
        if why is None and _version_key(v.version).is_prerelease:
            why = f"{v.version} is a pre-release (pin it by naming its version)"
        if why is None:
            return v
        reasons.append(why)
    raise InvalidInputError(
        "version",
        f"no version of {name} can run for {tenant} at release {release}: "
        + "; ".join(reasons or ["none is published"]),
    )


def _as_published(stored: Registration, published: Registration) -> Registration:
    """The version just published (its manifest, code and evidence), with what the
    registry keeps for the customization (tenants enabled, pins, health)."""
    return replace(
        stored,
        manifest=published.manifest,
        hooks=published.hooks,
        setting_keys=published.setting_keys,
        references=published.references,
        sha256=published.sha256,
        hooks_module=published.hooks_module,
    )


def _same_identity(stored: Mapping[str, Any], published: Mapping[str, Any]) -> bool:
    """The same customization version: name, version, tenants and requires (a
    manifest stored before newer optional fields existed still matches)."""
    keys = ("name", "version", "tenants", "requires")
    return all(stored.get(k) == published.get(k) for k in keys)
