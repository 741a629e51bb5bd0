"""Tenants (clients): slug, name, current release, environments."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import Principal
from core.model.customizations import SLUG_PATTERN
from core.model.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from core.model.manifest import RELEASED, known_releases, newest_release
from core.store.models import AuditEntry, Environment, Release, Tenant

ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
DEFAULT_ENVIRONMENTS = ("production", "sandbox")
#: the tenants.name column's size
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class TenantInfo:
    id: int
    slug: str
    name: str
    release: str
    environments: tuple[str, ...]
    created_at: datetime
    #: (protected environment, approvals a change request needs there)
    protected: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class TenantRef:
    """What a request needs of a tenant: its ids and the release it runs."""

    id: int
    slug: str
    release_id: int
    release: str
    environments: frozenset[str]
    #: protected environment -> the approvals a change request needs there
    protected: Mapping[str, int] = field(default_factory=dict)

    def protects(self, environment: str | None) -> bool:
        """Whether a change at ``environment`` needs a change request: that
        environment is protected, or (``None``: tenant-wide, which every
        environment sees) any of the tenant's is."""
        if environment is None:
            return bool(self.protected)
        return environment in self.protected

    def approvals_needed(self, environment: str | None) -> int:
        """Approvals a change at ``environment`` needs (0: none, it applies at once)."""
        if not self.protects(environment):
            return 0
        if environment is None:
            return max(self.protected.values())
        return self.protected[environment]

    def check_environment(self, environment: str | None) -> None:
        if environment is not None and environment not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise NotFoundError(
                "environment",
                environment,
                f"tenant {self.slug!r} has environments: {known}",
            )


async def load_tenant_ref(session: AsyncSession, slug: str) -> TenantRef:
    """One statement: the tenant, its release and its environments."""
    rows = (
        await session.execute(
            select(
                Tenant.id,
                Tenant.release_id,
                Release.version,
                Environment.name,
                Environment.protected,
                Environment.approvals,
            )
            .join(Release, Release.id == Tenant.release_id)
            .outerjoin(Environment, Environment.tenant_id == Tenant.id)
            .where(Tenant.slug == slug)
        )
    ).all()
    if not rows:
        raise NotFoundError("tenant", slug, "list tenants with the 'tenants' query")
    tenant_id, release_id, version = rows[0][:3]
    envs = frozenset(r[3] for r in rows if r[3] is not None)
    protected = {r[3]: int(r[5]) for r in rows if r[3] is not None and r[4]}
    return TenantRef(tenant_id, slug, release_id, version, envs, protected)


async def bump_data_version(session: AsyncSession, *where: Any) -> None:
    """Bump the data version of the tenants matching ``where`` (every tenant
    without a condition) inside ``session``'s transaction: one statement. Every
    write that can change a tenant's settings answer calls it, so an answer cached
    under the old version is never served once the write has committed."""
    await session.execute(update(Tenant).where(*where).values(data_version=Tenant.data_version + 1))


async def data_versions(session: AsyncSession, slugs: Sequence[str]) -> dict[str, tuple[int, int]]:
    """One statement: ``slug -> (tenant id, data version)`` of the tenants that exist."""
    rows = await session.execute(
        select(Tenant.slug, Tenant.id, Tenant.data_version).where(Tenant.slug.in_(list(slugs)))
    )
    return {slug: (tenant_id, version) for slug, tenant_id, version in rows}


class TenantService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(
        self,
        principal: Principal,
        slug: str,
        name: str,
        release: str | None = None,
        environments: Sequence[str] = DEFAULT_ENVIRONMENTS,
    ) -> TenantInfo:
        """Create a tenant on ``release`` (default: the newest released release)."""
        principal.require_manage_tenants()
        if not SLUG_PATTERN.match(slug):
            raise InvalidInputError(
                "slug",
                f"{slug!r} is not a valid tenant slug: use 2-63 lower-case letters, digits "
                "and '-', starting with a letter (e.g. 'northwind')",
            )
        if not name.strip():
            raise InvalidInputError("name", "the tenant name must not be empty")
        if len(name.strip()) > MAX_NAME_LENGTH:
            raise InvalidInputError(
                "name", f"the tenant name must be at most {MAX_NAME_LENGTH} characters"
            )
        envs = tuple(dict.fromkeys(environments))
        for env in envs:
            if not ENVIRONMENT_PATTERN.match(env):
                raise InvalidInputError(
                    "environments",
                    f"{env!r} is not a valid environment name: lower-case letters, digits, "
                    "'-' and '_', starting with a letter",
                )
        async with self._sessions.begin() as session:
            target = await _pick_release(session, release)
            tenant = Tenant(slug=slug, name=name.strip(), release_id=target.id)
            tenant.environments = [Environment(name=e) for e in envs]
            session.add(tenant)
            try:
                await session.flush()
            except IntegrityError:
                raise AlreadyExistsError("tenant", slug) from None
            session.add(
                AuditEntry(
                    actor=principal.name,
                    action="create_tenant",
                    tenant_id=tenant.id,
                    new={
                        "slug": slug,
                        "name": tenant.name,
                        "release": target.version,
                        "environments": list(envs),
                    },
                )
            )
            return TenantInfo(
                tenant.id,
                slug,
                tenant.name,
                target.version,
                tuple(sorted(envs)),
                tenant.created_at,
            )

    async def get(self, principal: Principal, slug: str) -> TenantInfo:
        principal.require_read_tenant(slug)
        infos = await self._load(slug=slug)
        if not infos:
            raise NotFoundError("tenant", slug, "list tenants with the 'tenants' query")
        return infos[0]

    async def list_all(self, principal: Principal) -> list[TenantInfo]:
        """The tenants the caller may see, by slug."""
        principal.require_list_tenants()
        infos = await self._load()
        return [t for t in infos if principal.in_scope(t.slug)]

    async def _load(self, slug: str | None = None) -> list[TenantInfo]:
        query = (
            select(
                Tenant.id,
                Tenant.slug,
                Tenant.name,
                Tenant.created_at,
                Release.version,
                Environment.name,
                Environment.protected,
                Environment.approvals,
            )
            .join(Release, Release.id == Tenant.release_id)
            .outerjoin(Environment, Environment.tenant_id == Tenant.id)
            .order_by(Tenant.slug, Environment.name)
        )
        if slug is not None:
            query = query.where(Tenant.slug == slug)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        by_slug: dict[str, TenantInfo] = {}
        envs: dict[str, list[str]] = {}
        protected: dict[str, list[tuple[str, int]]] = {}
        for tid, tslug, name, created, version, env, is_protected, approvals in rows:
            if tslug not in by_slug:
                by_slug[tslug] = TenantInfo(tid, tslug, name, version, (), created)
                envs[tslug] = []
                protected[tslug] = []
            if env is not None:
                envs[tslug].append(env)
                if is_protected:
                    protected[tslug].append((env, int(approvals)))
        return [
            TenantInfo(
                t.id,
                t.slug,
                t.name,
                t.release,
                tuple(envs[t.slug]),
                t.created_at,
                tuple(protected[t.slug]),
            )
            for t in by_slug.values()
        ]


async def _pick_release(session: AsyncSession, version: str | None) -> Release:
    releases = (await session.scalars(select(Release))).all()
    if not releases:
        raise NotFoundError(
            "release", version or "(any)", "no release is registered yet: run 'tailor db upgrade'"
        )
    if version is None:
        # the current release; never a planned one, as for a version named below
        newest = newest_release(releases, RELEASED)
        if newest is None:
            raise InvalidInputError(
                "release",
                "every registered release is planned ("
                + known_releases(r.version for r in releases)
                + "): no code runs them yet, so no tenant can be on one; 'tailor db "
                "upgrade' registers the product's releases and marks the one it runs "
                "released",
            )
        return newest
    for r in releases:
        if r.version == version:
            if r.status != "released":
                raise InvalidInputError(
                    "release",
                    f"{version} is a planned release: no code runs it yet, so no tenant can "
                    "be on it (create the tenant on a released version and upgrade it later)",
                )
            return r
    raise NotFoundError("release", version, known_releases(r.version for r in releases))
