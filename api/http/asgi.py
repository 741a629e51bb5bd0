"""The ASGI factory for any ASGI server, configured from the environment.

    uvicorn --factory api.http.asgi:create_app_from_env --workers 4
    gunicorn -k uvicorn.workers.UvicornWorker 'api.http.asgi:create_app_from_env()'

Each worker is stateless: it reads ``TAILOR_DATABASE_URL``, ``TAILOR_PRODUCT``
(or the installed product plugin), ``TAILOR_CUSTOMIZATIONS_PATH``,
``TAILOR_HOOK_TIMEOUT``, the GraphQL limits (``TAILOR_MAX_*``),
``TAILOR_INTROSPECTION`` and ``TAILOR_GRAPHIQL``, and invalidates its caches when
another worker commits a change (PostgreSQL ``LISTEN/NOTIFY``). Run ``tailor db
upgrade`` once before starting workers: they neither migrate nor register
releases. More than one worker on SQLite is refused. With several workers, set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory so that ``/metrics`` sums them
(``tailor serve --workers`` does it itself: :mod:`api.cli.node`).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette

from api.graphql.limits import GraphQLLimits
from api.http.app import AppOptions, create_app
from api.http.logging import configure_logging
from core.model.config import Config
from core.model.errors import InvalidInputError
from core.model.product import Product
from core.store.services import Services
from plugins.catalog import Catalog
from plugins.product import PRODUCT_ENV, load_product
from plugins.runtime import PluginRuntime, RuntimeOptions

INTROSPECTION_ENV = "TAILOR_INTROSPECTION"
GRAPHIQL_ENV = "TAILOR_GRAPHIQL"
DEMO_ENV = "TAILOR_DEMO"
#: how many workers serve (set by ``tailor serve --workers``); >1 needs PostgreSQL
WORKERS_ENV = "TAILOR_WORKERS"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(name: str) -> bool | None:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidInputError(name, f"{raw!r} is not true/false (1/0, yes/no, on/off)")


def create_app_from_env() -> Starlette:
    """One worker's app, configured from the environment only."""
    from core.store.invalidation import workers_refusal

    config = Config.from_env()
    raw_workers = os.environ.get(WORKERS_ENV, "1").strip() or "1"
    if not raw_workers.isdigit():
        raise InvalidInputError(WORKERS_ENV, f"{raw_workers!r} is not a number of workers")
    refusal = workers_refusal(config.database_url, int(raw_workers))
    if refusal:
        raise InvalidInputError(WORKERS_ENV, refusal)
    product = load_product()
    options = AppOptions(
        demo=bool(_flag(DEMO_ENV)),
        introspection=_flag(INTROSPECTION_ENV),
        graphiql=_flag(GRAPHIQL_ENV),
        limits=GraphQLLimits.from_env(),
        metrics_customizations=config.metrics_customizations,
        plugins=PluginRuntime(
            Catalog.for_product(product),
            RuntimeOptions(
                hook_timeout=config.hook_timeout,
                workers=config.hook_processes,
                worker_memory_mb=config.hook_memory_mb,
            ),
        ),
    )
    services = Services.from_url(config.database_url)
    configure_logging()  # one JSON line per request, as under tailor serve
    return create_app(services, options, product=product)


def environment_for(
    database_url: str, product: Product, options: AppOptions, workers: int
) -> dict[str, str]:
    """The environment that makes :func:`create_app_from_env` build the app
    ``tailor serve`` would (used by ``serve --workers``)."""
    env = {
        "TAILOR_DATABASE_URL": database_url,
        PRODUCT_ENV: product.reference,
        WORKERS_ENV: str(workers),
    }
    env[DEMO_ENV] = "1" if options.demo else "0"
    flags = ((INTROSPECTION_ENV, options.introspection), (GRAPHIQL_ENV, options.graphiql))
    for name, value in flags:
        if value is not None:
            env[name] = "1" if value else "0"
    return env
