"""A per-token rate limit: one token bucket per bearer token, in memory.

Each request takes its cost (see :mod:`api.graphql.cost`) from its token's bucket; the
bucket refills at ``rate`` units per minute up to ``burst``. A request that finds
too little is answered 429 with ``Retry-After`` (whole seconds until it would
fit). Buckets live in the worker's memory: with N workers a token gets up to N
times the rate, which bounds the cost of a burst without shared state.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: buckets kept at most (least recently used ones go first; a forgotten bucket
#: comes back full, which only ever errs towards letting a request through)
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    level: float
    at: float


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_minute / 60.0
        self.burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def take(self, key: str, cost: int) -> float:
        """Take ``cost`` units from ``key``'s bucket: 0.0 when taken, otherwise the
        seconds until they would be there (nothing is taken then)."""
        if not self.enabled or cost <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.level = min(self.burst, bucket.level + (now - bucket.at) * self.per_second)
            bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        if bucket.level >= cost:
            bucket.level -= cost
            return 0.0
        return (cost - bucket.level) / self.per_second


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
