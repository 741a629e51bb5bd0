"""Recording hook inputs (issue 24): for the tenants whose policy says so, the
inputs of each hook call, sampled in memory and handed in batches to a
:class:`core.model.samples.SampleSink` (as :mod:`plugins.runtime.observe` does
for observations).

**Cheap on the call path.** Which tenants record is a dict in memory, changed
by the store's notices (this process) and re-read by the background job (other
processes): a request never reads it from the database. A call of a tenant not
recording costs one dict lookup; once K samples of a (customization, hook,
tenant) were taken in the current rotation, one more per customization called.
The inputs are copied (without the secret settings) only for a sample taken.

**Rotation.** The counters are cleared every ``rotate_seconds``: the next calls
are sampled again and the store keeps the newest K per key, so the samples
follow what the tenant really sends over time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from core.model.samples import HookInput, PolicySource, RecordingPolicy, SampleSink

log = logging.getLogger("tailor.plugins")

#: samples waiting for a flush past which new ones are dropped (the store down)
MAX_PENDING = 10_000


class Recorder:
    def __init__(self, rotate_seconds: float) -> None:
        self.rotate_seconds = rotate_seconds
        self.sink: SampleSink | None = None
        self.source: PolicySource | None = None
        #: the tenants recording now: the only thing a call looks at first
        self.policies: dict[str, RecordingPolicy] = {}
        #: samples taken in this rotation per (customization, hook, tenant)
        self._taken: dict[tuple[str, str, str], int] = {}
        self._pending: list[HookInput] = []
        self._rotated_at = time.monotonic()

    def bind(self, source: PolicySource, sink: SampleSink) -> None:
        self.source = source
        self.sink = sink
        source.subscribe(self.set_policy)

    def set_policy(self, policy: RecordingPolicy) -> None:
        """A tenant's policy changed: its calls are sampled afresh."""
        if policy.enabled:
            self.policies[policy.tenant] = policy
        else:
            self.policies.pop(policy.tenant, None)
        self._forget({policy.tenant})

    def _forget(self, tenants: set[str]) -> None:
        if tenants:
            self._taken = {k: n for k, n in self._taken.items() if k[2] not in tenants}

    def offer(
        self,
        policy: RecordingPolicy,
        hook: str,
        called: Sequence[str],
        kwargs: Mapping[str, Any],
        secret: Collection[str],
        version_of: Callable[[str], str],
    ) -> None:
        """One call of ``hook`` for ``policy``'s tenant, to the customizations
        ``called``, with ``kwargs``; ``secret``: the keys of its ``values`` that
        are secret settings (never kept); ``version_of``: a customization's
        version the tenant runs (asked only for a sample taken)."""
        tenant = policy.tenant
        inputs: dict[str, Any] | None = None
        for name in called:
            key = (name, hook, tenant)
            taken = self._taken.get(key, 0)
            if taken >= policy.samples:
                continue
            if len(self._pending) >= MAX_PENDING:
                return
            self._taken[key] = taken + 1
            if inputs is None:
                inputs = _without_secrets(kwargs, secret)
            environment = kwargs.get("environment")
            self._pending.append(
                HookInput(
                    tenant=tenant,
                    environment=environment if isinstance(environment, str) else None,
                    customization=name,
                    version=version_of(name),
                    hook=hook,
                    inputs=inputs,
                )
            )

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Hand the pending samples to the sink; clear the counters when the
        rotation is due."""
        if time.monotonic() - self._rotated_at >= self.rotate_seconds:
            self._taken.clear()
            self._rotated_at = time.monotonic()
        if not self._pending or self.sink is None:
            return
        batch, self._pending = self._pending, []
        await self.sink.record_inputs(batch)

    async def refresh(self) -> None:
        """Re-read which tenants record (what another process changed)."""
        if self.source is None:
            return
        policies = await self.source.recording_policies()
        changed = {
            t
            for t in policies.keys() | self.policies.keys()
            if policies.get(t) != self.policies.get(t)
        }
        self.policies = policies
        self._forget(changed)


def _without_secrets(kwargs: Mapping[str, Any], secret: Collection[str]) -> dict[str, Any]:
    """A copy of a call's arguments without the secret settings in ``values``."""
    values = kwargs.get("values")
    if isinstance(values, Mapping):
        return {
            **kwargs,
            "values": {k: v for k, v in values.items() if k not in secret},
        }
    return dict(kwargs)
