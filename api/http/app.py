"""The Starlette application factory (no import-time globals)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.schema.config import BatchingConfig, StrawberryConfig

from api.graphql.document_cache import DocumentCache, DocumentStore
from api.graphql.limits import GraphQLLimits, LimitsExtension
from api.graphql.suggestions import NoSuggestions
from api.graphql.trusted import schema_check
from api.http.background import Background
from api.http.bearer import Authenticate
from api.http.cors import Cors
from api.http.graphql_view import TailorGraphQL
from api.http.logging import RequestLog
from api.http.metrics import DEFAULT_TOP_CUSTOMIZATIONS, Metrics, MetricsMiddleware
from api.http.ofrep import Ofrep
from api.http.ofrep_stream import EventStreams
from api.http.outage import OutageGuard
from api.http.probes import Probes
from api.http.protocol import ProtocolGuard
from api.http.webhooks import WebhookDeliverer
from api.web.views import Console
from api.wiring import attach
from core.model.product import Product
from core.store.changes import APPLY_EVERY
from core.store.feed import Announcer, feed_tenants, is_feed, on_commit
from core.store.feed_hub import FeedHub
from core.store.invalidation import Listener, is_postgres
from core.store.services import Services
from plugins.catalog import Catalog
from plugins.runtime import PluginRuntime, RuntimeOptions

log = logging.getLogger("tailor.http")
#: seconds between prunes of what is kept for a while (the change feed, webhook
#: deliveries, observations, kept readiness runs: docs/operations.md)
PRUNE_SECONDS = 3600.0


@dataclass(frozen=True)
class AppOptions:
    """How the app serves GraphQL. ``None`` for ``introspection`` and
    ``field_suggestions`` means: on with ``--demo``, off otherwise."""

    demo: bool = False
    #: the GraphiQL page at GET /graphql (None: only with demo)
    graphiql: bool | None = None
    #: the plugin runtime to use; None: load customizations from customizations/,
    #: TAILOR_CUSTOMIZATIONS_PATH and the tailor.customizations entry points, for
    #: the product's catalog
    plugins: PluginRuntime | None = None
    #: False keeps the hooks the services were built with (embedding, fault tests)
    attach_plugins: bool = True
    introspection: bool | None = None
    field_suggestions: bool | None = None
    limits: GraphQLLimits = field(default_factory=GraphQLLimits)
    #: answer settings operations from memory (api.http.response_cache); None: on
    #: when the app attaches the plugin runtime, whose hooks it knows are pure
    response_cache: bool | None = None
    #: complete plain object selections by projection (api.graphql.projection); off only
    #: to compare with strawberry's normal execution (the answers are the same)
    projection: bool = True
    #: customizations named in the hook metrics, the busiest (the rest: "other")
    metrics_customizations: int = DEFAULT_TOP_CUSTOMIZATIONS

    @property
    def cache_enabled(self) -> bool:
        return self.attach_plugins if self.response_cache is None else self.response_cache

    @property
    def graphiql_enabled(self) -> bool:
        return self.demo if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.demo if self.introspection is None else self.introspection

    @property
    def field_suggestions_enabled(self) -> bool:
        return self.demo if self.field_suggestions is None else self.field_suggestions

    def extensions(
        self, documents: DocumentStore | None = None
    ) -> list[Callable[[], SchemaExtension] | type[SchemaExtension]]:
        """Factories: strawberry makes new extension instances for every operation.
        ``documents``: the app's one store of parsed and validated documents (after
        the limits: see api.graphql.document_cache); a new one when not given."""
        limits = self.limits
        if documents is None:
            documents = DocumentStore(limits)
        factories: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
            lambda: LimitsExtension(limits),
            lambda: DocumentCache(documents),
        ]
        if not self.introspection_enabled:
            factories.append(DisableIntrospection)
        if not self.field_suggestions_enabled:
            factories.append(NoSuggestions)
        return factories

    def schema_config(self) -> StrawberryConfig:
        batching: BatchingConfig | None = (
            {"max_operations": self.limits.max_batch_size} if self.limits.max_batch_size else None
        )
        return StrawberryConfig(
            disable_field_suggestions=not self.field_suggestions_enabled,
            batching_config=batching,
        )


def on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Also call ``callback`` (in the event loop) when the process is asked to stop
    (SIGTERM, SIGINT), before the handler the server installed; returns what
    restores that handler. Long-lived responses (a subscription's event stream)
    end at once instead of holding the server's graceful shutdown open. Only in
    the main thread (where signals are handled); elsewhere nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(sig: int, frame: Any) -> None:
        loop.call_soon_threadsafe(callback)
        chained = previous[signal.Signals(sig)]
        if callable(chained):
            chained(sig, frame)
        elif chained == signal.SIG_DFL:
            # nobody handled it before: what the signal would have done
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, handler)

    return restore


def create_app(
    services: Services, options: AppOptions | None = None, *, product: Product | None = None
) -> Starlette:
    """Build the ASGI app around ``services`` (which the app disposes on shutdown)
    for the host ``product`` (None: the declared one, see
    :func:`plugins.product.load_product`). On PostgreSQL, the app listens for other
    workers' committed changes while it runs (:mod:`core.store.invalidation`)."""
    options = options or AppOptions()
    plugins = options.plugins
    if plugins is None:
        if product is None:
            from plugins.product import load_product

            product = load_product()
        plugins = PluginRuntime(Catalog.for_product(product), RuntimeOptions())
    if options.attach_plugins:
        attach(services, plugins)
    services.set_document_check(schema_check())
    # this process's subscribers to the change feed (settingsChanged)
    hub = FeedHub(services.feed)
    graphql = TailorGraphQL(services, options, plugins, hub)
    guard = ProtocolGuard(graphql, options.limits, graphql.documents, services.apps)
    console = Console(services, plugins.installed)
    metrics = Metrics(services, options.metrics_customizations)

    async def readiness_page(request: Request) -> Response:
        """The old readiness page: now the console's fleet page (sign in there)."""
        target = request.query_params.get("target")
        query = f"?target={quote(target)}" if target else ""
        return RedirectResponse(f"/console/fleet{query}", status_code=308)

    registry = services.registry

    # webhooks hear every change: committed here, or by another worker (FEED)
    deliverer = WebhookDeliverer(services.webhooks)

    def on_message(topic: str) -> None:
        # a change feed notice (every write) changes no registration; one naming a
        # tenant wakes the hub only where someone listens to that tenant
        if is_feed(topic):
            hub.wake(feed_tenants(topic))
            deliverer.wake(topic)
        else:
            # every notice may follow a commit that fed the feed (after a
            # reconnect, REGISTRY stands for every notice lost): read it once
            hub.wake()
            registry.changed_elsewhere()

    url = services.engine.url.render_as_string(hide_password=False)
    listener = Listener(url, on_message)
    # this process's commits are announced to every worker after they commit, from
    # the listener's connection (core.store.feed: no NOTIFY inside a write)
    announcer = Announcer(services.engine, listener.notify) if is_postgres(url) else None

    probes = Probes(services, plugins)

    background = Background()
    # what is kept for a while is pruned here (docs: "Environment variables")
    background.every(PRUNE_SECONDS, "prune change feed", services.feed.prune)
    background.every(PRUNE_SECONDS, "prune observations", services.observations.prune)
    background.every(PRUNE_SECONDS, "prune kept readiness runs", services.triage.prune_runs)
    # /readyz waits for it: every pinned version in this node's cache
    background.run("materialize pinned customizations", probes.warm_up)
    # /metrics: hook calls seen within seconds, this worker's cache counts summed
    flush = max(1.0, plugins.options.health_flush_seconds)
    background.every(flush, "flush customization observations", plugins.flush_health)
    background.every(flush, "sync metrics", metrics.sync_now)
    # recorded hook inputs written, and which tenants record re-read (issue 24)
    background.every(flush, "flush recorded inputs", plugins.flush_samples)
    background.every(PRUNE_SECONDS, "prune recorded inputs", services.samples.prune)
    # scheduled change requests (applyAt): every worker looks, each is applied once
    background.every(APPLY_EVERY, "apply scheduled changes", services.changes.apply_due)
    background.every(PRUNE_SECONDS, "prune webhook deliveries", services.webhooks.prune)
    background.run("deliver webhooks", deliverer.run)
    background.run("change feed hub", hub.run)
    if announcer is not None:
        background.run("announce change feed commits", announcer.run)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await listener.start()
        plugins.start()
        stop_hearing = on_commit(deliverer.wake)
        background.start()
        probes.watch_signals()
        # this process's commits (the only notice on SQLite)
        stop_hearing_commits = on_commit(hub.wake)
        # subscriptions end (cleanly: a 'complete') when the server is asked to stop,
        # before it waits for open connections to close
        restore_signals = on_stop_signal(hub.close)
        # what start-up built lives as long as the process: keep it out of the
        # collector's generations, so its pauses stay short (p99)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            restore_signals()
            stop_hearing_commits()
            hub.close()
            probes.drain()
            probes.restore_signals()
            await background.stop()
            stop_hearing()
            await listener.stop()
            if graphql.cache is not None:
                await graphql.cache.close()
            await plugins.close()
            await services.close()

    app = Starlette(
        routes=[
            Route(
                "/graphql",
                RequestLog(Cors(Authenticate(guard, services), services)),
            ),
            # OpenFeature's remote evaluation protocol (the same per-token budget), and
            # its change notifications (a stream ticket in the URL, fed by the hub)
            Route(
                "/ofrep/{rest:path}",
                RequestLog(
                    Cors(
                        Ofrep(
                            services,
                            graphql.cache,
                            guard.rate,
                            options.limits.max_body_bytes,
                            EventStreams(services.tokens, hub),
                        ),
                        services,
                    )
                ),
            ),
            # graphql-transport-ws (subscriptions only; authenticated by TailorGraphQL)
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", probes.healthz, methods=["GET"]),
            Route("/readyz", probes.readyz, methods=["GET"]),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
            # the release managers' console (session cookie after one sign-in)
            Mount("/console", app=RequestLog(Starlette(routes=console.routes()))),
            Route("/readiness", readiness_page, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    # inside the metrics (the last added is outermost): they count its 503s
    app.add_middleware(OutageGuard)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
