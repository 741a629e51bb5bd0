"""Loads what fold-back analysis needs (a constant number of statements) and
runs :func:`core.foldback.analyze`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from packaging.version import Version
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth import Principal, Role
from core.foldback import FoldbackReport, OverrideFact, analyze
from core.manifest import PLANNED, RELEASED
from core.models import Override, Release, SettingDefinitionRow, Tenant
from core.observations import ObservationStore
from core.readiness_service import RegistrySnapshot
from core.registry import RegistryService
from core.secrets import is_sealed

#: customization name -> blocked tenant upgrades it causes across planned releases,
#: given the registrations fold-back already loaded
BlockerSource = Callable[[RegistrySnapshot], Awaitable[Mapping[str, int]]]


async def no_blockers(_registry: RegistrySnapshot) -> Mapping[str, int]:
    return {}


class FoldbackService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: RegistryService,
        blockers: BlockerSource = no_blockers,
        installed: frozenset[str] | None = None,
    ) -> None:
        self._sessions = sessions
        self._registry = registry
        self._blockers = blockers
        self._installed = installed

    def with_blockers(
        self, blockers: BlockerSource, installed: frozenset[str] | None = None
    ) -> FoldbackService:
        return FoldbackService(self._sessions, self._registry, blockers, installed)

    async def candidates(self, principal: Principal, limit: int | None = None) -> FoldbackReport:
        """Fold-back candidates across the whole fleet (admin and release managers:
        the evidence names every tenant)."""
        principal.require_role(
            Role.ADMIN, Role.RELEASE_MANAGER, action="reading fold-back candidates"
        )
        registrations = await self._registry.list_all(principal)
        snapshot = RegistrySnapshot(tuple(registrations), self._installed)
        async with self._sessions() as session:
            releases = (
                await session.execute(
                    select(Release.id, Release.version, Release.status, Release.manifest)
                )
            ).all()
            current = _current(releases)
            defaults: dict[str, object] = {}
            if current is not None:
                rows = await session.scalars(
                    select(SettingDefinitionRow.definition).where(
                        SettingDefinitionRow.release_id == current
                    )
                )
                defaults = {d["key"]: d["default"] for d in rows if not d.get("secret")}
            overrides = [
                OverrideFact(slug, env or None, key, value)
                for slug, env, key, value in (
                    await session.execute(
                        select(Tenant.slug, Override.environment, Override.key, Override.value)
                        .join(Tenant, Tenant.id == Override.tenant_id)
                        .where(Override.active.is_(True))
                    )
                ).all()
                if not is_sealed(value)  # a secret is no evidence for fold-back
            ]
        return analyze(
            registrations,
            overrides,
            defaults,
            blockers=await self._blockers(snapshot),
            superseded=_superseded(releases),
            limit=limit,
            observations=await ObservationStore(self._sessions).list_all(),
        )


def _current(releases: Sequence[Any]) -> int | None:
    released = [r for r in releases if r.status == RELEASED]
    if not released:
        return None
    return max(released, key=lambda r: Version(r.version)).id


def _superseded(releases: Sequence[Any]) -> dict[str, str]:
    """capability -> the first release (released or planned) that supersedes it."""
    out: dict[str, str] = {}
    for r in sorted(releases, key=lambda r: Version(r.version)):
        if r.status not in (RELEASED, PLANNED):
            continue
        for capability in (r.manifest or {}).get("supersedes", []):
            out.setdefault(capability, r.version)
    return out
