"""Loads what fold-back analysis needs (a constant number of statements) and
runs :func:`core.analysis.foldback.analyze`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.analysis.foldback import (
    FoldbackReport,
    Proposal,
    analyze,
    find_family,
    propose,
)
from core.model.auth import Principal, Role
from core.model.overrides import ActiveOverride
from core.model.secrets import is_sealed
from core.store.gcpause import gc_paused
from core.store.models import Override, Tenant
from core.store.observations import ObservationStore
from core.store.readiness_service import RegistryRegistrations, RegistrySnapshot
from core.store.releases import load_history

#: customization name -> blocked tenant upgrades it causes across planned releases,
#: given the registrations fold-back already loaded
BlockerSource = Callable[[RegistrySnapshot], Awaitable[Mapping[str, int]]]


async def no_blockers(_registry: RegistrySnapshot) -> Mapping[str, int]:
    return {}


class FoldbackService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registrations: RegistryRegistrations,
        blockers: BlockerSource = no_blockers,
    ) -> None:
        self._sessions = sessions
        #: the registry, and which code counts as installed (shared with readiness)
        self._registrations = registrations
        self._registry = registrations.registry
        self._blockers = blockers

    async def candidates(self, principal: Principal, limit: int | None = None) -> FoldbackReport:
        """Fold-back candidates across the whole fleet (admin and release managers:
        the evidence names every tenant)."""
        principal.require_role(
            Role.ADMIN, Role.RELEASE_MANAGER, action="reading fold-back candidates"
        )
        with gc_paused():  # a fleet-sized build (core.store.gcpause)
            return await self._candidates(principal, limit)

    async def propose(self, principal: Principal, family: str) -> Proposal:
        """The proposal for fold-back family ``family`` (its id): the settings its
        differing constants become and each tenant's migration. Admin and release
        managers (it names every tenant of the family)."""
        principal.require_role(
            Role.ADMIN, Role.RELEASE_MANAGER, action="reading fold-back candidates"
        )
        registrations = await self._registry.list_all(principal)
        pinned = await self._registry.pinned_registrations(principal, registrations)
        found, capability = find_family(pinned, family)
        return propose(found, capability)

    async def _candidates(self, principal: Principal, limit: int | None) -> FoldbackReport:
        registrations = await self._registry.list_all(principal)
        snapshot = self._registrations.snapshot(registrations)
        async with self._sessions() as session:
            history = await load_history(session)
            current = history.current
            defaults: dict[str, object] = {
                d.key: d.default for d in (current.settings if current else ()) if not d.secret
            }
            overrides = [
                ActiveOverride(slug, env, key, value)
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
            superseded=history.superseded,
            limit=limit,
            observations=await ObservationStore(self._sessions).list_all(),
            pinned=await self._registry.pinned_registrations(principal, registrations),
        )
