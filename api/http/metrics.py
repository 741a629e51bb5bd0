"""``GET /metrics`` for Prometheus (prometheus-client's text format).

- ``tailor_http_requests_total{route,method,status}`` and
  ``tailor_http_request_duration_seconds{route}``: this process's requests
  (``route`` is a bounded name: ``/graphql``, ``/console/tenants``, ...; never a
  raw path, so labels cannot grow with tenants or attackers' URLs); a
  subscription's event stream is counted, not timed (it lasts as long as it listens);
- ``tailor_hook_calls_total{customization,hook}``, ``tailor_hook_failures_total``,
  ``tailor_hook_changed_total`` and the ``tailor_hook_duration_seconds`` histogram:
  read at scrape time from the observation store, which every worker adds to
  (every few seconds: ``RuntimeOptions.health_flush_seconds``), so one scrape of
  any node sees the whole fleet's counts. Labels are bounded: never a tenant; the
  ``top`` busiest customizations (by calls; ``TAILOR_METRICS_CUSTOMIZATIONS``) by
  name, the others summed as ``other``;
- ``tailor_cache_hits_total{cache}`` / ``tailor_cache_misses_total{cache}``: the
  caches of the node's processes (``setting_definitions``: parsed definitions
  reused by resolutions).

Under ``tailor serve --workers N`` every worker writes its counters and histograms
to ``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory per node, set by
:mod:`api.cli.node`) and a scrape of any worker sums them all
(prometheus-client's multiprocess mode): the same value whichever worker answers,
and never a decrease while the node runs.

The endpoint needs a bearer token of role admin or release_manager (the metrics
name customizations); Prometheus sends it with ``authorization: {credentials: ...}``.
Each app has its own registry (no process-global state).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.bearer import bearer_principal
from core.model.auth import Role
from core.model.config import DEFAULT_METRICS_CUSTOMIZATIONS
from core.model.customizations import LATENCY_BUCKETS_MS, Observation
from core.model.errors import AuthenticationError, PermissionDeniedError
from core.store.services import Services

#: prometheus-client's multiprocess directory (set by ``tailor serve --workers N``)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: first path segments that name a route; anything else is "other"
KNOWN = {"graphql", "ofrep", "healthz", "metrics", "readiness"}
CONSOLE_PAGES = {
    "sign-in",
    "sign-out",
    "fleet",
    "runs",
    "tenants",
    "triage",
    "customizations",
    "foldback",
    "usage",
    "static",
}


def route_name(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "/"
    if parts[0] == "console":
        page = parts[1] if len(parts) > 1 else ""
        return f"/console/{page}" if page in CONSOLE_PAGES else "/console"
    return f"/{parts[0]}" if parts[0] in KNOWN else "other"


#: customizations named in the hook metrics (the busiest; the rest are "other")
DEFAULT_TOP_CUSTOMIZATIONS = DEFAULT_METRICS_CUSTOMIZATIONS
OTHER = "other"


class Metrics:
    def __init__(self, services: Services, top: int = DEFAULT_TOP_CUSTOMIZATIONS) -> None:
        self.services = services
        self.top = top
        #: prometheus-client's multiprocess directory (None: one process serves)
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tailor_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tailor_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "tailor_cache_hits", "Cache hits", ["cache"], registry=self.registry
        ).labels("setting_definitions")
        self.cache_misses = Counter(
            "tailor_cache_misses", "Cache misses", ["cache"], registry=self.registry
        ).labels("setting_definitions")
        self._synced = (0, 0)

    def sync(self) -> None:
        """Add what this process's caches counted since the last sync to the metrics
        (at every scrape, and every few seconds: see ``api.http.app``)."""
        settings = self.services.settings
        hits, misses = settings.definition_cache_hits, settings.definition_cache_misses
        self.cache_hits.inc(max(0, hits - self._synced[0]))
        self.cache_misses.inc(max(0, misses - self._synced[1]))
        self._synced = (hits, misses)

    async def sync_now(self) -> None:
        self.sync()

    def own(self) -> bytes:
        """The HTTP and cache metrics: this process's, or every worker's summed."""
        self.sync()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged)

    async def endpoint(self, request: Request) -> Response:
        try:
            principal = await bearer_principal(self.services, request.headers.get("authorization"))
            principal.require_role(Role.ADMIN, Role.RELEASE_MANAGER, action="reading /metrics")
        except AuthenticationError as exc:
            return PlainTextResponse(exc.message + "\n", 401, {"WWW-Authenticate": "Bearer"})
        except PermissionDeniedError as exc:
            return PlainTextResponse(exc.message + "\n", 403)
        observations = await self.services.observations.list_all(principal)
        hooks = CollectorRegistry(auto_describe=False)
        hooks.register(_HookCollector(observations, self.top))
        body = self.own() + generate_latest(hooks)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


class _HookCollector:
    """Metric families built from observations read for this scrape."""

    def __init__(self, observations: list[Observation], top: int) -> None:
        self.observations = observations
        self.top = top

    def _names(self) -> dict[str, str]:
        """customization -> its label: the ``top`` busiest by name, else "other"
        (ties by name, so every node and worker picks the same)."""
        calls: dict[str, int] = defaultdict(int)
        for o in self.observations:
            calls[o.customization] += o.calls
        ranked = sorted(calls, key=lambda name: (-calls[name], name))
        return {name: (name if i < self.top else OTHER) for i, name in enumerate(ranked)}

    def collect(self) -> list[Metric]:
        labels = ["customization", "hook"]
        calls = CounterMetricFamily(
            "tailor_hook_calls", "Hook calls per customization", labels=labels
        )
        failures = CounterMetricFamily(
            "tailor_hook_failures", "Failed hook calls per customization", labels=labels
        )
        changed = CounterMetricFamily(
            "tailor_hook_changed",
            "Hook calls whose result differed from the product's values",
            labels=labels,
        )
        duration = HistogramMetricFamily(
            "tailor_hook_duration_seconds", "Hook call latency", labels=labels
        )
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        buckets: dict[tuple[str, str], list[int]] = defaultdict(
            lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1)
        )
        names = self._names()
        for o in self.observations:
            key = (names[o.customization], o.hook)
            totals = sums[key]
            totals[0] += o.calls
            totals[1] += o.failures
            totals[2] += o.changed
            for i, n in enumerate(o.latency_buckets):
                buckets[key][i] += n
        for key in sorted(sums):
            calls.add_metric(list(key), sums[key][0])
            failures.add_metric(list(key), sums[key][1])
            changed.add_metric(list(key), sums[key][2])
            cumulative = 0
            out = []
            for bound, n in zip((*LATENCY_BUCKETS_MS, None), buckets[key], strict=True):
                cumulative += n
                out.append(("+Inf" if bound is None else str(bound / 1000), cumulative))
            # the store keeps buckets, not sums: the sum is not known
            duration.add_metric(list(key), out, sum_value=None)
        return [calls, failures, changed, duration]


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        stream = False

        async def send_status(message: Message) -> None:
            nonlocal status, stream
            if message["type"] == "http.response.start":
                status = message["status"]
                stream = any(
                    name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in message.get("headers", ())
                )
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_name(scope.get("path", ""))
            self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
            if not stream:  # a subscription's event stream lasts as long as it listens
                self.metrics.latency.labels(route).observe(time.perf_counter() - started)
