"""Upgrade rehearsal: the tenants' recorded hook inputs replayed through the
versions they run (or a candidate) on the current release and translated to the
target's (``tailor upgrade rehearse``, GraphQL ``rehearsal``).

The service reads, in a constant number of statements, what readiness reads of
the tenants (their releases and overrides, secrets opened), every release
manifest and every tenant's pins; the samples come from a
:class:`core.model.samples.SampleSource`, the calls are made by a
:class:`core.model.rehearsal.Replayer` (the plugin runtime, bound by
``api/wiring.py``); :mod:`core.analysis.rehearsal` plans and judges.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.analysis.rehearsal import Judge, RehearsalReport, TenantState, plan
from core.model.auth import Principal
from core.model.errors import InvalidInputError
from core.model.rehearsal import Replayer
from core.model.samples import SampleSource
from core.store.models import RehearsalRun
from core.store.readiness_service import ReadinessService, RegistrySnapshot
from core.store.registry import RegistryService

#: tenants whose samples are read, translated and replayed at a time: what a
#: rehearsal holds in memory is bounded by this, not by the fleet (the workers
#: stay up from one chunk to the next)
CHUNK = 25
#: ``--version NAME@V``
CANDIDATE_SEPARATOR = "@"


def parse_candidate(value: str) -> tuple[str, str]:
    """``NAME@V`` -> (name, version), or a clear error."""
    name, sep, version = value.strip().partition(CANDIDATE_SEPARATOR)
    if not sep or not name or not version:
        raise InvalidInputError(
            "version",
            f"{value!r} is not a candidate version; name one as NAME@VERSION, "
            "e.g. globex_eur_rounding@1.1.0",
        )
    return name, version


class RehearsalService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        readiness: ReadinessService,
        registry: RegistryService,
        samples: SampleSource | None = None,
        replayer: Replayer | None = None,
    ) -> None:
        self._sessions = sessions
        self.readiness = readiness
        self.registry = registry
        #: where recorded inputs are read (None: this server records none)
        self.samples = samples
        #: what replays them (None: no plugin runtime here)
        self.replayer = replayer

    async def rehearse(
        self,
        principal: Principal,
        target: str,
        tenants: Sequence[str] | None = None,
        candidate: str | None = None,
        *,
        keep: bool = False,
    ) -> RehearsalReport:
        """Replay the recorded inputs of ``tenants`` (default: every tenant in
        scope) through the versions they run, or through ``candidate``
        (``NAME@V``, pinned or not) for the tenants it lists, against
        ``target``. Scope as readiness's; a bad target, tenant or candidate is
        an input error and nothing runs. ``keep``: keep the findings as the
        last rehearsal of ``target``, which readiness joins (source
        ``rehearsal``) while a tenant runs the version rehearsed."""
        if keep:
            principal.require_triage()
        wanted = parse_candidate(candidate) if candidate is not None else None
        data = await self.readiness.load(
            principal, target, tenants, registry=RegistrySnapshot(), with_apps=False
        )
        if self.samples is None or self.replayer is None:
            missing = "recorded inputs (no sample store)" if self.samples is None else "workers"
            raise InvalidInputError(
                "rehearsal",
                f"this Tailor has no {missing} to rehearse with: run the rehearsal where the "
                "server runs (tailor upgrade rehearse on its database)",
            )
        pins = await self.registry.pinned_map()
        if wanted is not None:
            chosen = await self.registry.version_pin(principal, *wanted)
            pins = {t.slug: (chosen,) for t in data.tenants if t.slug in chosen.manifest.tenants}
        manifests = {m.version: m for m in (*data.history, data.target)}
        overrides: dict[str, dict[str, dict[str, object]]] = {}
        for o in data.overrides:
            overrides.setdefault(o.tenant, {}).setdefault(o.environment, {})[o.key] = o.value
        states = [
            TenantState(t.slug, t.release, overrides.get(t.slug, {}), tuple(pins.get(t.slug, ())))
            for t in data.tenants
        ]
        judge = Judge(target)
        running = [s for s in states if s.pins]  # a tenant that runs nothing has nothing to replay
        replaying = self.replayer.session()
        try:
            for start in range(0, len(running), CHUNK):
                chunk = running[start : start + CHUNK]
                samples = await self.samples.samples([t.tenant for t in chunk])
                built = plan(data.target, manifests, chunk, samples)
                judge.add(built, await replaying.replay(built.batches))
        finally:
            stats = await replaying.close()
        report = judge.report(states, stats)
        if keep:
            async with self._sessions.begin() as session:
                session.add(
                    RehearsalRun(
                        target=report.target,
                        actor=principal.name,
                        tenants=[t.tenant for t in report.tenants],
                        findings=[
                            {"tenant": t.tenant, "finding": f.to_dict()}
                            for t in report.tenants
                            for f in t.findings
                        ],
                        customizations=[c.to_dict() for c in report.customizations],
                    )
                )
        return report
