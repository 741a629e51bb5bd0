"""A per-token rate limit: one token bucket per bearer token, in memory.

Every request is charged its price (:mod:`api.graphql.cost`) from its token's
bucket, refused requests included: a request that finds too little is answered
429 and still charged, the bucket going into debt (at most ``burst`` deep), so
a client that retries without waiting only pushes its own retry further away.
``Retry-After`` (whole seconds) says when a request of that price would fit
again; a client that honours it gets at most ``burst`` plus ``rate`` units a
minute of work done, whatever it sends -- the bound that keeps a noisy token from
slowing the others (``bench/noisy_neighbour.py`` measures it).

The bucket refills at ``rate`` units per minute up to ``burst``. Buckets live in
the process's memory: each ``tailor serve --workers N`` process and each node
keeps its own, so a token gets up to N times the rate on one node (connections
are spread over the workers by the kernel) and that again per node behind a
load balancer. Set ``TAILOR_RATE_LIMIT_PER_MINUTE`` to the budget divided by
the number of processes serving a token to keep the fleet-wide figure; the
bound on a burst holds without shared state.
"""

from __future__ import annotations

import hashlib
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

    def charge(self, key: str, cost: int, retry_cost: int | None = None) -> float:
        """Charge ``cost`` units to ``key``'s bucket, whether or not they are there:
        0.0 when they were, otherwise the seconds until a request of
        ``retry_cost`` (default ``cost``) would fit -- the request is refused,
        and what it was charged stays charged (the bucket owes at most ``burst``)."""
        if not self.enabled or cost <= 0:
            return 0.0
        bucket = self._bucket(key)
        fits = bucket.level >= cost
        bucket.level = max(-float(self.burst), bucket.level - cost)
        if fits:
            return 0.0
        needed = cost if retry_cost is None else retry_cost
        return max(needed - bucket.level, 0.0) / self.per_second

    def level(self, key: str) -> float:
        """The units ``key``'s bucket holds now (negative: owed)."""
        return self._bucket(key).level if self.enabled else float(self.burst)

    def _bucket(self, key: str) -> _Bucket:
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
        return bucket


@dataclass
class Bill:
    """What a request still owes once the minimum is paid: charged by
    :func:`api.http.protocol.settle` when the request is about to run, never
    when the response cache answers it."""

    rate: RateLimiter
    key: str
    amount: int
    #: the request's whole price (what a retry will cost)
    price: int

    def pay(self) -> float:
        """Charge the amount (once): the seconds to wait when it was not there."""
        amount, self.amount = self.amount, 0
        return self.rate.charge(self.key, amount, self.price)


def bucket_key(authorization: str) -> str:
    """The bucket of a request: one per bearer token (its ``Authorization`` header
    value's digest, never the token itself)."""
    return hashlib.sha256(authorization.encode("utf-8", "replace")).hexdigest()


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
