"""Retire candidates of the tenants in scope: loads the inputs of
:func:`core.analysis.usage.retire_candidates` with a constant number of statements."""

from __future__ import annotations

from datetime import datetime

from core.analysis.usage import UsageReport, retire_candidates
from core.model.auth import Principal
from core.store.observations import ObservationStore
from core.store.readiness_service import ReadinessService


class UsageService:
    def __init__(self, readiness: ReadinessService, observations: ObservationStore) -> None:
        self.readiness = readiness
        self.observations = observations

    async def retire(
        self,
        principal: Principal,
        release: str,
        days: int = 30,
        now: datetime | None = None,
    ) -> UsageReport:
        """Retire candidates of the tenants in scope. ``release`` is any registered
        release (it only anchors the load; each tenant is judged by its own release)."""
        data = await self.readiness.load(principal, release)
        observations = await self.observations.list_all(principal)
        manifests = {m.version: m for m in (data.target, *data.history)}
        visible = {t.slug for t in data.tenants}
        registrations = [
            r
            for r in data.registry.registrations
            if principal.sees_all_tenants or set(r.enabled_for) & visible
        ]
        return retire_candidates(
            data.tenants,
            data.overrides,
            manifests,
            registrations,
            [o for o in observations if o.tenant in visible],
            days=days,
            now=now,
        )
