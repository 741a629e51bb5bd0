"""Recorded hook inputs (issue 24): each tenant's recording policy and the
samples the plugin runtime hands in (see :mod:`core.model.samples`).

**Opt-in.** A tenant records only after ``setInputRecording`` /
``tailor tenant record`` turned it on (no row: off). Turning it on is refused,
with the reason, when the server has no ``TAILOR_SECRET_KEY``: samples are only
ever stored sealed. Turning it off (``--off``) stops recording and keeps what was
recorded (still dropped after the tenant's retention); ``tailor tenant samples T
--delete`` / ``deleteInputSamples`` deletes them.

**Bounded: the newest K.** :meth:`InputSampleService.record_inputs` stores a
batch (one INSERT) and then keeps, per (tenant, customization, hook), only the
newest ``samples`` of the tenant's policy (one DELETE ranking them with a window
function); the runtime hands at most K per key per rotation
(:mod:`plugins.runtime.record`), so newer calls replace older ones over time.

**Sealed, no secret.** A sample's inputs are sealed with
:class:`core.model.secrets.SecretBox` (the key that seals secret settings: one
home); the runtime removed every secret setting before handing them, and a
listing also drops any key that is secret now (a setting made secret after it
was recorded).

**Dropped after D days.** :meth:`InputSampleService.prune` (the server's
background job) deletes the samples older than their tenant's retention.
"""

from __future__ import annotations

import logging
import secrets as tokens
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import Principal, Role
from core.model.clock import utcnow
from core.model.errors import NotFoundError
from core.model.samples import HookInput, InputSample, RecordingPolicy, recording_policy
from core.model.secrets import SecretBox
from core.store.models import AuditEntry, InputRecordingRow, InputSampleRow, Tenant, aware
from core.store.secret_store import secret_keys

log = logging.getLogger("tailor.samples")

#: the audit key of a recording change (on the change feed: no setting changed)
AUDIT_KEY = "recording:inputs"


def _sample_id() -> str:
    return "smp-" + tokens.token_hex(8)


class InputSampleService:
    """Policies and samples; implements :class:`core.model.samples.SampleSink`,
    :class:`~core.model.samples.SampleSource` and
    :class:`~core.model.samples.PolicySource`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box
        self._listeners: list[Callable[[RecordingPolicy], None]] = []

    # -- policies --------------------------------------------------------------
    def subscribe(self, listener: Callable[[RecordingPolicy], None]) -> None:
        """Call ``listener`` with each policy this process changes, once committed."""
        self._listeners.append(listener)

    async def set_policy(
        self,
        principal: Principal,
        tenant: str,
        enabled: bool,
        retention_days: int | None = None,
        samples: int | None = None,
    ) -> RecordingPolicy:
        """Turn ``tenant``'s recording on or off (admin; audited). ``None`` keeps
        the current value (the default for a first policy). Turning it on is
        refused without ``TAILOR_SECRET_KEY``; a smaller ``samples`` drops the
        oldest at once."""
        principal.require_role(Role.ADMIN, action="recording a tenant's hook inputs")
        if enabled:
            self._box.require()
        async with self._sessions.begin() as session:
            tenant_id = await _tenant_id(session, tenant)
            row = await session.get(InputRecordingRow, tenant_id)
            policy = recording_policy(
                tenant,
                enabled,
                retention_days if retention_days is not None or row is None else row.retention_days,
                samples if samples is not None or row is None else row.samples,
            )
            old = None if row is None else _policy_dict(row)
            if row is None:
                row = InputRecordingRow(tenant_id=tenant_id)
                session.add(row)
            row.enabled = policy.enabled
            row.retention_days = policy.retention_days
            row.samples = policy.samples
            row.updated_by = principal.name
            row.updated_at = utcnow()
            new = _policy_dict(row)
            if old != new:
                session.add(
                    AuditEntry(
                        actor=principal.name,
                        action="input_recording_set",
                        tenant_id=tenant_id,
                        key=AUDIT_KEY,
                        old=old,
                        new=new,
                    )
                )
            await session.flush()
            await session.execute(_trim([tenant_id]))
        for listener in self._listeners:
            listener(policy)
        return policy

    async def policy(self, principal: Principal, tenant: str) -> RecordingPolicy:
        """``tenant``'s policy (admin): off with the defaults when never set."""
        principal.require_role(Role.ADMIN, action="reading a tenant's recorded inputs")
        async with self._sessions() as session:
            tenant_id = await _tenant_id(session, tenant)
            row = await session.get(InputRecordingRow, tenant_id)
        if row is None:
            return RecordingPolicy(tenant)
        return RecordingPolicy(tenant, row.enabled, row.retention_days, row.samples)

    async def recording_policies(self) -> dict[str, RecordingPolicy]:
        """The tenants recording now, by slug (one statement); none without a key."""
        if not self._box.enabled:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    Tenant.slug,
                    InputRecordingRow.retention_days,
                    InputRecordingRow.samples,
                )
                .join(Tenant, Tenant.id == InputRecordingRow.tenant_id)
                .where(InputRecordingRow.enabled.is_(True))
            )
            return {slug: RecordingPolicy(slug, True, days, count) for slug, days, count in rows}

    # -- samples ---------------------------------------------------------------
    async def record_inputs(self, inputs: Sequence[HookInput]) -> None:
        """Store a batch (:class:`~core.model.samples.SampleSink`): three statements
        whatever its size (the tenants recording among the batch's, one INSERT,
        one DELETE keeping the newest K per key). Inputs of a tenant not recording
        any more are dropped; without a key nothing is stored (never plaintext)."""
        if not inputs:
            return
        if not self._box.enabled:
            log.warning(
                "%d recorded hook input(s) dropped: no TAILOR_SECRET_KEY to seal them",
                len(inputs),
            )
            return
        slugs = sorted({i.tenant for i in inputs})
        async with self._sessions.begin() as session:
            recording: dict[str, int] = {
                slug: tenant_id
                for slug, tenant_id in await session.execute(
                    select(Tenant.slug, Tenant.id)
                    .join(InputRecordingRow, InputRecordingRow.tenant_id == Tenant.id)
                    .where(Tenant.slug.in_(slugs), InputRecordingRow.enabled.is_(True))
                )
            }
            now = utcnow()
            # one call's inputs, handed once per customization called: sealed once
            sealed: dict[int, dict[str, str]] = {}
            rows = []
            for i in inputs:
                if i.tenant not in recording:
                    continue
                token = sealed.get(id(i.inputs))
                if token is None:
                    token = sealed[id(i.inputs)] = self._box.seal(dict(i.inputs))
                rows.append(
                    {
                        "sample_id": _sample_id(),
                        "tenant_id": recording[i.tenant],
                        "environment": i.environment,
                        "customization": i.customization,
                        "version": i.version,
                        "hook": i.hook,
                        "inputs": token,
                        "recorded_at": now,
                    }
                )
            if not rows:
                return
            await session.execute(insert(InputSampleRow), rows)
            await session.execute(_trim(sorted(set(recording.values()))))

    async def samples(self, tenants: Sequence[str] | None = None) -> list[InputSample]:
        """Every stored sample of ``tenants`` (None: all), opened, oldest first
        (:class:`~core.model.samples.SampleSource`: the system's reading, for a
        rehearsal). Two statements."""
        async with self._sessions() as session:
            return await self._read(session, tenants)

    async def list_samples(self, principal: Principal, tenant: str) -> list[InputSample]:
        """``tenant``'s samples as an admin sees them: opened, without any key
        that is a secret setting now (it never held one when recorded)."""
        principal.require_role(Role.ADMIN, action="reading a tenant's recorded inputs")
        async with self._sessions() as session:
            await _tenant_id(session, tenant)
            return await self._read(session, [tenant])

    async def delete_samples(self, principal: Principal, tenant: str) -> int:
        """Delete every sample of ``tenant`` (admin; audited): how many went. The
        policy stays as it is (``set_policy(..., False)`` stops recording)."""
        principal.require_role(Role.ADMIN, action="deleting a tenant's recorded inputs")
        async with self._sessions.begin() as session:
            tenant_id = await _tenant_id(session, tenant)
            result = await session.execute(
                delete(InputSampleRow).where(InputSampleRow.tenant_id == tenant_id)
            )
            deleted = int(getattr(result, "rowcount", 0) or 0)
            session.add(
                AuditEntry(
                    actor=principal.name,
                    action="input_samples_deleted",
                    tenant_id=tenant_id,
                    key=AUDIT_KEY,
                    old={"samples": deleted},
                    new=None,
                )
            )
        return deleted

    async def prune(self, *, now: datetime | None = None) -> int:
        """Delete the samples older than their tenant's retention (the server's
        background job): one statement per distinct retention in use, plus one."""
        now = now or utcnow()
        deleted = 0
        async with self._sessions.begin() as session:
            by_days: dict[int, list[int]] = {}
            for tenant_id, days in await session.execute(
                select(InputRecordingRow.tenant_id, InputRecordingRow.retention_days)
            ):
                by_days.setdefault(days, []).append(tenant_id)
            for days, tenant_ids in sorted(by_days.items()):
                result = await session.execute(
                    delete(InputSampleRow).where(
                        InputSampleRow.tenant_id.in_(tenant_ids),
                        InputSampleRow.recorded_at < now - timedelta(days=days),
                    )
                )
                deleted += int(getattr(result, "rowcount", 0) or 0)
        return deleted

    async def _read(
        self, session: AsyncSession, tenants: Sequence[str] | None
    ) -> list[InputSample]:
        query = (
            select(InputSampleRow, Tenant.slug)
            .join(Tenant, Tenant.id == InputSampleRow.tenant_id)
            .order_by(InputSampleRow.recorded_at, InputSampleRow.id)
        )
        if tenants is not None:
            query = query.where(Tenant.slug.in_(list(tenants)))
        rows = list(await session.execute(query))
        if not rows:
            return []
        secret = await secret_keys(session)
        found = []
        for row, slug in rows:
            opened = self._box.open(row.inputs)
            found.append(
                InputSample(
                    id=row.sample_id,
                    tenant=slug,
                    environment=row.environment,
                    customization=row.customization,
                    version=row.version,
                    hook=row.hook,
                    inputs=_without(opened, secret),
                    recorded_at=aware(row.recorded_at) or row.recorded_at,
                )
            )
        return found


def _without(inputs: Any, secret: set[str]) -> Mapping[str, Any]:
    """``inputs`` without a secret setting in its ``values``."""
    if not isinstance(inputs, dict):
        return {}
    values = inputs.get("values")
    if isinstance(values, dict) and secret & values.keys():
        return {**inputs, "values": {k: v for k, v in values.items() if k not in secret}}
    return inputs


def _policy_dict(row: InputRecordingRow) -> dict[str, Any]:
    return {
        "enabled": row.enabled,
        "retention_days": row.retention_days,
        "samples": row.samples,
    }


async def _tenant_id(session: AsyncSession, tenant: str) -> int:
    found = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
    if found is None:
        raise NotFoundError("tenant", tenant, "list tenants: tailor tenant list")
    return int(found)


def _trim(tenant_ids: Sequence[int]) -> Any:
    """The DELETE keeping, for ``tenant_ids``, the newest ``samples`` of their
    policy per (tenant, customization, hook)."""
    s, p = InputSampleRow, InputRecordingRow
    rank = (
        func.row_number()
        .over(
            partition_by=(s.tenant_id, s.customization, s.hook),
            order_by=(s.recorded_at.desc(), s.id.desc()),
        )
        .label("rank")
    )
    ranked = (
        select(s.id, rank, p.samples.label("keep"))
        .join(p, p.tenant_id == s.tenant_id)
        .where(s.tenant_id.in_(list(tenant_ids)))
        .subquery()
    )
    return delete(s).where(s.id.in_(select(ranked.c.id).where(ranked.c.rank > ranked.c.keep)))
