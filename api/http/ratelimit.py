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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from api.graphql.limits import TENANT_RULE, RateRule

#: buckets kept at most (least recently used ones go first; a forgotten bucket
#: comes back full, which only ever errs towards letting a request through)
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    level: float
    at: float


@dataclass(frozen=True)
class Limit:
    """One token's budget: cost units a minute, and the bucket's size."""

    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        rules: Sequence[RateRule] = (),
    ) -> None:
        self.default = Limit(per_minute, burst)
        self._roles = {
            r.selector: Limit(r.per_minute, r.burst) for r in rules if ":" not in r.selector
        }
        self._tenants = {
            r.selector[len(TENANT_RULE) :]: Limit(r.per_minute, r.burst)
            for r in rules
            if r.selector.startswith(TENANT_RULE)
        }
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def per_second(self) -> float:
        return self.default.per_second

    @property
    def burst(self) -> int:
        return self.default.burst

    @property
    def enabled(self) -> bool:
        return self.default.enabled

    def limit_for(self, role: str, tenants: Iterable[str] = ()) -> Limit:
        """The budget of a token of ``role`` scoped to ``tenants``: the largest
        of its tenants' rules, else its role's, else the default."""
        if self._tenants:
            found = [self._tenants[t] for t in tenants if t in self._tenants]
            if found:
                return max(found, key=_generosity)
        return self._roles.get(role, self.default)

    def charge(
        self,
        key: str,
        cost: float,
        retry_cost: float | None = None,
        limit: Limit | None = None,
    ) -> float:
        """Charge ``cost`` units to ``key``'s bucket, whether or not they are there:
        0.0 when they were, otherwise the seconds until a request of
        ``retry_cost`` (default ``cost``) would fit -- the request is refused,
        and what it was charged stays charged (the bucket owes at most ``burst``).
        ``limit``: the token's budget (default: the default one)."""
        limit = limit or self.default
        if not limit.enabled or cost <= 0:
            return 0.0
        bucket = self._bucket(key, limit)
        fits = bucket.level >= cost
        bucket.level = max(-float(limit.burst), bucket.level - cost)
        if fits:
            return 0.0
        needed = cost if retry_cost is None else retry_cost
        return max(needed - bucket.level, 0.0) / limit.per_second

    def refund(self, key: str, amount: float, limit: Limit | None = None) -> None:
        """Give back ``amount`` units charged for work that was not done (an
        answer the response cache served); never beyond the bucket's size."""
        limit = limit or self.default
        if limit.enabled and amount > 0:
            bucket = self._bucket(key, limit)
            bucket.level = min(float(limit.burst), bucket.level + amount)

    def level(self, key: str, limit: Limit | None = None) -> float:
        """The units ``key``'s bucket holds now (negative: owed)."""
        limit = limit or self.default
        return self._bucket(key, limit).level if limit.enabled else float(limit.burst)

    def _bucket(self, key: str, limit: Limit) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(limit.burst), now)
        else:
            bucket.level = min(limit.burst, bucket.level + (now - bucket.at) * limit.per_second)
            bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return bucket


@dataclass
class Bill:
    """What a request still owes once the minimum is paid: charged by
    :func:`api.http.graphql_view.settle_bill` when the request is about to run, never
    when the response cache answers it."""

    rate: RateLimiter
    key: str
    amount: float
    #: the request's whole price (what a retry will cost)
    price: float
    #: the token's budget
    limit: Limit | None = None
    #: what was charged up front (given back but the cached price when the
    #: response cache answers)
    upfront: float = 0.0

    def pay(self) -> float:
        """Charge the amount (once): the seconds to wait when it was not there."""
        amount, self.amount = self.amount, 0
        return self.rate.charge(self.key, amount, self.price, self.limit)

    def refund(self, keep: float) -> None:
        """The response cache answered: give back what was charged up front but
        ``keep`` (once); the rest is never charged."""
        self.amount = 0
        back, self.upfront = self.upfront - keep, 0.0
        self.rate.refund(self.key, back, self.limit)


def _generosity(limit: Limit) -> tuple[bool, int, int]:
    # no limit (0 a minute) is the most generous of all
    return (not limit.enabled, limit.per_minute, limit.burst)


def bucket_key(authorization: str) -> str:
    """The bucket of a request: one per bearer token (its ``Authorization`` header
    value's digest, never the token itself)."""
    return hashlib.sha256(authorization.encode("utf-8", "replace")).hexdigest()


def retry_after(seconds: float) -> str:
    """The ``Retry-After`` header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
