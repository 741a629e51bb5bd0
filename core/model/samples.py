"""Recorded hook inputs: what a tenant's customizations really received, kept
(opt-in, per tenant) so an upgrade can be rehearsed on them.

The recorder (the plugin runtime, through :class:`SampleSink`) hands samples
in batches; the store keeps at most ``samples`` per (customization, hook,
tenant), encrypted at rest, for ``retention_days``; a rehearsal reads them
back through :class:`SampleSource`. A sample never holds a secret setting's
value: secrets are removed before a sample leaves the runtime, and a rehearsal
injects the ones a customization declares from the tenant's current values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.model.errors import InvalidInputError

#: samples kept per (customization, hook, tenant) unless the tenant says otherwise
DEFAULT_SAMPLES = 20
#: days a sample is kept unless the tenant says otherwise
DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True, slots=True)
class RecordingPolicy:
    """A tenant's choice: record its customizations' inputs or not, how many
    and for how long."""

    tenant: str
    enabled: bool = False
    retention_days: int = DEFAULT_RETENTION_DAYS
    samples: int = DEFAULT_SAMPLES


@dataclass(frozen=True, slots=True)
class HookInput:
    """One hook call's inputs as the runtime handed them, before storage.

    ``inputs`` are the hook's keyword arguments (for ``tailor_resolve_settings``
    ``{"tenant", "environment", "values"}`` with the layered values; for a
    product extension point its arguments), with every secret setting removed.
    """

    tenant: str
    environment: str | None
    customization: str
    #: the tenant's pinned version of ``customization`` when it was called
    version: str
    hook: str
    inputs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class InputSample:
    """A stored sample, read back (decrypted) for a rehearsal or a listing."""

    #: stable id, ``smp-`` and hex
    id: str
    tenant: str
    environment: str | None
    customization: str
    version: str
    hook: str
    inputs: Mapping[str, Any]
    recorded_at: datetime


class SampleSink(Protocol):
    """Where the runtime hands the inputs it sampled, in batches
    (``core/store/samples.py`` implements it)."""

    async def record_inputs(self, inputs: Sequence[HookInput]) -> None: ...


class SampleSource(Protocol):
    """Where a rehearsal reads recorded samples (decrypted, no secret)."""

    async def samples(self, tenants: Sequence[str] | None = None) -> list[InputSample]: ...


#: the most samples a tenant may keep per (customization, hook)
MAX_SAMPLES = 1000
#: the longest a tenant may keep its samples, days
MAX_RETENTION_DAYS = 3650


def recording_policy(
    tenant: str, enabled: bool, retention_days: int | None = None, samples: int | None = None
) -> RecordingPolicy:
    """A checked policy (``None``: the default); a bound broken is refused with
    what is allowed."""
    days = DEFAULT_RETENTION_DAYS if retention_days is None else retention_days
    count = DEFAULT_SAMPLES if samples is None else samples
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise InvalidInputError(
            "retentionDays", f"must be between 1 and {MAX_RETENTION_DAYS} days; got {days}"
        )
    if not 1 <= count <= MAX_SAMPLES:
        raise InvalidInputError(
            "samples",
            f"must be between 1 and {MAX_SAMPLES} samples per customization and hook; got {count}",
        )
    return RecordingPolicy(tenant, enabled, days, count)


class PolicySource(Protocol):
    """Where the runtime learns which tenants record (``core/store/samples.py``):
    the enabled policies by tenant, read in one statement, and each change made
    in this process as it commits."""

    async def recording_policies(self) -> dict[str, RecordingPolicy]: ...

    def subscribe(self, listener: Callable[[RecordingPolicy], None]) -> None: ...
