"""Health and observations: what the runtime saw, accumulated in memory and
written in one batch (``RegistryService.record_health`` per customization,
``ObservationStore.record`` per customization, tenant and hook) when a failure
happened or ``flush_seconds`` have passed. A failure's stored message names the
request it happened in (``core.model.request_id``)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from core.model.clock import utcnow
from core.model.customizations import (
    READ,
    RETURNED,
    SCAN_KEY,
    SCANNED,
    HealthDelta,
    ObservationDelta,
    latency_bucket,
)
from core.model.hooks import CustomizationRegistry, ObservationSink
from core.model.request_id import current_request_id


class Observer:
    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self.registry: CustomizationRegistry | None = None
        self.store: ObservationSink | None = None
        self._deltas: dict[tuple[str, str, str], ObservationDelta] = {}
        self._flushed_at = time.monotonic()
        self._failed = False

    def call(
        self,
        customization: str,
        tenant: str,
        hook: str,
        *,
        ms: float | None,
        error: str | None = None,
        changed: bool = False,
        read: Iterable[str] = (),
        scanned: bool = False,
        returned: Iterable[str] = (),
        version: str = "",
    ) -> None:
        """One call of ``customization`` (at ``version``: the tenant's pin) for
        ``tenant`` at ``hook``."""
        now = utcnow()
        key = (customization, tenant, hook)
        delta = self._deltas.get(key)
        if delta is None:
            delta = self._deltas[key] = ObservationDelta(
                customization, tenant, hook, first_seen=now
            )
        delta.calls += 1
        delta.last_seen = now
        if version:
            delta.version = version
        if ms is not None:
            delta.latency_buckets[latency_bucket(ms)] += 1
        if error is not None:
            delta.failures += 1
            # the request it failed in, as its log line says (before the message:
            # a long message is cut at its end when stored)
            request_id = current_request_id()
            during = f" (request {request_id})" if request_id else ""
            delta.last_error = f"{hook} for tenant {tenant!r}{during}: {error}"
            delta.last_error_at = now
            self._failed = True
        if changed:
            delta.changed += 1
        for k in read:
            delta.keys[(k, READ)] = delta.keys.get((k, READ), 0) + 1
        for k in returned:
            delta.keys[(k, RETURNED)] = delta.keys.get((k, RETURNED), 0) + 1
        if scanned:  # one row for the scan: no key is a dependency because of it
            delta.keys[(SCAN_KEY, SCANNED)] = delta.keys.get((SCAN_KEY, SCANNED), 0) + 1

    async def maybe_flush(self) -> None:
        due = time.monotonic() - self._flushed_at >= self.flush_seconds
        if self._deltas and (self._failed or due):
            await self.flush()

    async def flush(self) -> None:
        if not self._deltas:
            return
        deltas, self._deltas = list(self._deltas.values()), {}
        self._failed = False
        self._flushed_at = time.monotonic()
        health: dict[str, HealthDelta] = {}
        for d in deltas:
            prev = health.get(d.customization)
            health[d.customization] = HealthDelta(
                d.customization,
                d.calls + (prev.calls if prev else 0),
                d.failures + (prev.failures if prev else 0),
                d.last_error or (prev.last_error if prev else None),
                d.last_error_at or (prev.last_error_at if prev else None),
            )
        if self.registry is not None:
            await self.registry.record_health(sorted(health.values(), key=lambda h: h.name))
        if self.store is not None:
            await self.store.record(deltas)
