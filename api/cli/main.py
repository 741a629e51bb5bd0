"""The ``tailor`` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from api.cli.common import (
    CLI_ACTOR,
    DatabaseOption,
    ListFormat,
    cli_product,
    err,
    open_services,
    out,
    run,
    run_with_services,
    serving_runtime,
)
from api.cli.release import readiness_command, release_app
from api.cli.remote import refuse_while_remote
from api.cli.samples import tenant_record, tenant_samples
from api.cli.setting import change_app, setting_app, tenant_protect
from api.cli.upgrade import upgrade_app
from core.model.config import Config
from core.model.errors import SecretKeyError, TailorError

if TYPE_CHECKING:
    from api.wiring import DemoPublishReport
    from core.model.customizations import Registration
    from core.store.demo import SeedReport
    from core.store.fleet import FleetReport
    from core.store.services import Services
    from core.store.tokens import TokenInfo

T = TypeVar("T")

app = typer.Typer(
    help="Tailor: configurable settings, consultant customizations and upgrade readiness.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema: migrations.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (bearer tokens, stored hashed).", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Secret settings, encrypted at rest with TAILOR_SECRET_KEY.", no_args_is_help=True
)
tenant_app = typer.Typer(help="Tenants: the product's clients.", no_args_is_help=True)


def _print_version(asked: bool) -> None:
    if asked:
        from core.model.version import VERSION
        from core.store.db import head_revision

        out.print(f"tailor {VERSION} (schema {head_revision()})", highlight=False)
        raise typer.Exit()


@app.callback()
def _local_or_remote(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print Tailor's version and the schema revision it needs, and exit "
            "(releases: RELEASES.toml).",
        ),
    ] = False,
) -> None:
    """Tailor: configurable settings, consultant customizations and upgrade readiness."""
    # only `tailor customization ...` talks to a server (--url / TAILOR_URL); every
    # other command acts on a local database and refuses while TAILOR_URL is set
    if ctx.invoked_subcommand not in (None, "customization"):
        refuse_while_remote(ctx.invoked_subcommand)


app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(setting_app, name="setting")
tenant_app.command("protect")(tenant_protect)
tenant_app.command("record")(tenant_record)
tenant_app.command("samples")(tenant_samples)
app.add_typer(change_app, name="change")
app.add_typer(demo_app, name="demo")
app.add_typer(token_app, name="token")
app.add_typer(secrets_app, name="secrets")
app.add_typer(release_app, name="release")
app.command("readiness")(readiness_command)
app.add_typer(upgrade_app, name="upgrade")

# -- serve --------------------------------------------------------------------


@app.command()
def serve(
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Migrate, seed demo data (idempotent), print tokens to try; GraphiQL, "
            "introspection and field suggestions on.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Apply pending migrations before serving.")
    ] = False,
    introspection: Annotated[
        bool | None,
        typer.Option(
            "--introspection/--no-introspection",
            envvar="TAILOR_INTROSPECTION",
            help="Allow schema introspection (default: only with --demo).",
            show_envvar=True,
        ),
    ] = None,
    graphiql: Annotated[
        bool | None,
        typer.Option(
            "--graphiql/--no-graphiql",
            envvar="TAILOR_GRAPHIQL",
            help="Serve the GraphiQL page at GET /graphql (default: only with --demo).",
            show_envvar=True,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes (stateless; PostgreSQL only when more than 1).",
        ),
    ] = 1,
    database_url: DatabaseOption = None,
) -> None:
    """Serve the GraphQL API (http://HOST:PORT/graphql) for the host product
    (TAILOR_PRODUCT, or the installed product plugin).

    GraphQL limits come from TAILOR_MAX_DEPTH, TAILOR_MAX_ALIASES, TAILOR_MAX_TOKENS,
    TAILOR_MAX_DIRECTIVES, TAILOR_MAX_BATCH_SIZE (0 = no batches), TAILOR_MAX_BODY_BYTES,
    TAILOR_MAX_COST, TAILOR_RATE_LIMIT_PER_MINUTE and TAILOR_RATE_LIMIT_BURST (per role
    and tenant: TAILOR_RATE_LIMITS); customization hooks get TAILOR_HOOK_TIMEOUT
    seconds in TAILOR_HOOK_PROCESSES worker processes; secret settings are
    encrypted with TAILOR_SECRET_KEY.
    With --workers N, N processes share the port; each worker's caches are
    invalidated through PostgreSQL (LISTEN/NOTIFY) when another commits a change."""
    from api.cli.customization import publish_demo_customizations
    from api.graphql.limits import GraphQLLimits
    from api.http.app import AppOptions, create_app
    from api.http.asgi import environment_for
    from api.http.logging import configure_logging
    from core.model.secrets import ENV_VAR, MAKE_KEY, SecretBox
    from core.store.bootstrap import register_planned_releases, sync_product_releases
    from core.store.db import migration_lock
    from core.store.demo import create_demo_tokens, protect_demo, seed_demo
    from core.store.invalidation import workers_refusal
    from core.store.secret_store import (
        count_stored_secrets,
        count_stored_webhook_secrets,
        demo_key,
    )
    from plugins.catalog import tailor_extension_points

    try:
        config = Config.from_env(database_url)
        limits = GraphQLLimits.from_env()
        if demo and not os.environ.get(ENV_VAR, "").strip():
            # the demo database keeps its own key, so the quick start needs none
            key, key_path = demo_key(config.database_url)
            os.environ[ENV_VAR] = key
            out.print(f"secret settings: key kept in {key_path} (mode 0600)", highlight=False)
        secrets = SecretBox.from_env()
    except TailorError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    refusal = workers_refusal(config.database_url, workers)
    if refusal:
        err.print(f"[bold red]error:[/] {refusal}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    product = cli_product()
    options = AppOptions(
        demo=demo,
        introspection=introspection,
        graphiql=graphiql,
        limits=limits,
        metrics_customizations=config.metrics_customizations,
    )

    async def prepare() -> None:
        # nodes started together take turns: one migrates and registers releases,
        # the next finds it done (a PostgreSQL advisory lock; docs/operations.md)
        async with migration_lock(config.database_url):
            await prepare_locked()

    async def prepare_locked() -> None:
        services = await open_services(database_url, migrate=migrate or demo)
        try:
            if not secrets.enabled:
                stored = await count_stored_secrets(services.sessions)
                hooks = await count_stored_webhook_secrets(services.sessions)
                if stored or hooks:
                    held = f"{stored} secret setting value(s)" if stored else ""
                    if hooks:
                        held += (" and " if held else "") + f"{hooks} webhook signing secret(s)"
                    raise SecretKeyError(
                        ENV_VAR,
                        f"the database holds {held}, encrypted at "
                        f"rest, and {ENV_VAR} is not set: set it to the key they were "
                        f"sealed with (a new key is made with: {MAKE_KEY})",
                    )
            added = await sync_product_releases(services, product, tailor_extension_points)
            added += await register_planned_releases(services, product, tailor_extension_points)
            if added:
                out.print(f"{product.name} releases registered: {', '.join(added)}")
            if demo:
                report = await seed_demo(services, product, tailor_extension_points)
                published = await publish_demo_customizations(services, product)
                # after the data: protected environments change by change requests
                await protect_demo(services, product)
                out.print(
                    f"customizations: {len(published.published)} published, "
                    f"{len(published.enabled)} enablements, refused: "
                    f"{', '.join(published.skipped) or 'none'}",
                    highlight=False,
                    soft_wrap=True,
                )
                tokens = await create_demo_tokens(services, product)
                out.print(
                    f"demo data: {len(report.tenants_added)} tenants and "
                    f"{report.overrides_set} overrides added"
                )
                out.print("Tokens to try (shown once; new ones at every start):")
                for t in tokens:
                    scope = ", ".join(t.tenants) or "all tenants"
                    out.print(
                        f"  {t.role.value:<16} {scope:<20} {t.secret}",
                        highlight=False,
                        soft_wrap=True,
                    )
        finally:
            await services.close()

    run(prepare)
    from core.store.services import Services

    plugins = serving_runtime(
        product,
        hook_timeout=config.hook_timeout,
        workers=config.hook_processes,
        worker_memory_mb=config.hook_memory_mb,
    )
    plugins.probe_confinement()
    out.print(
        "customizations: the versions pinned in the database, materialized in "
        f"{plugins.cache_root} (details: 'tailor doctor')",
        highlight=False,
        soft_wrap=True,
    )
    if plugins.confinement:
        out.print(
            "customizations run in worker processes confined by: " + ", ".join(plugins.confinement),
            highlight=False,
            soft_wrap=True,
        )
        if not any(c.startswith(("landlock", "seccomp")) for c in plugins.confinement):
            err.print(
                "[bold yellow]warning:[/] this kernel offers neither Landlock nor seccomp "
                "(libseccomp): customization workers are confined by Python's audit hook "
                "only, which hostile code can defeat; run Tailor on Linux >= 5.13 with "
                "libseccomp2 installed",
                highlight=False,
                soft_wrap=True,
            )
    configure_logging()
    out.print(
        f"Tailor serving {product.name} {product.version} on http://{host}:{port}/graphql "
        f"(database: {config.database_url}; workers: {workers})",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"Release managers' console: http://{host}:{port}/console (sign in with a token)",
        highlight=False,
    )
    out.print(
        f"OpenFeature (OFREP) for front-end apps: http://{host}:{port}/ofrep/v1/evaluate/flags "
        "(an app token; CORS: tailor token create --role app --origin ORIGIN)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        'Try: curl -H "Authorization: Bearer <token>" -H "Content-Type: application/json" '
        f'-d \'{{"query": "{{ tenants {{ slug release }} }}"}}\' '
        f"http://{host}:{port}/graphql",
        highlight=False,
        soft_wrap=True,
    )
    from api.cli.node import run_node

    if workers > 1:
        # each worker builds its app from the environment (api.http.asgi); the
        # database is migrated and the product's releases registered already
        asyncio.run(plugins.close())
        os.environ.update(environment_for(config.database_url, product, options, workers))
        run_node(
            "api.http.asgi:create_app_from_env",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            grace=config.shutdown_grace,
        )
        return
    services = Services.from_url(config.database_url)
    application = create_app(services, replace(options, plugins=plugins), product=product)
    run_node(application, workers=1, host=host, port=port, grace=config.shutdown_grace)


# -- secrets ------------------------------------------------------------------


@secrets_app.command("rotate")
def secrets_rotate(database_url: DatabaseOption = None) -> None:
    """Re-encrypt every stored secret with the first key of TAILOR_SECRET_KEY.

    To rotate: set TAILOR_SECRET_KEY="NEW,OLD", run this, then keep only NEW.
    Values stored before encryption was on get encrypted too. One transaction:
    all or nothing."""
    from core.store.secret_store import rotate_secrets

    async def go(services: Services) -> int:
        services.secrets.require()  # no key: refuse before touching anything
        return await rotate_secrets(services.sessions, services.secrets)

    count = run_with_services(database_url, go)
    out.print(f"secret values re-encrypted with the first key: {count}")


# -- db -----------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    database_url: DatabaseOption = None,
) -> None:
    """Apply migrations (never drops data), then register the product's releases.
    Customizations registered before versions stored code become version 1 of
    themselves, every enablement kept; their code is stored from the packages found
    on disk (customizations/, TAILOR_CUSTOMIZATIONS_PATH, entry points) with the
    same name and version. Those not found are listed: publish them again."""
    from api.cli.common import cli_runtime
    from api.wiring import store_missing_code
    from core.model.auth import Principal
    from core.store.bootstrap import register_planned_releases, sync_product_releases
    from core.store.db import check_reachable, create_engine, migration_lock, upgrade
    from core.store.services import Services
    from plugins.catalog import tailor_extension_points

    url = Config.from_env(database_url).database_url
    product = cli_product()

    async def go() -> tuple[list[str], list[str], list[str]]:
        engine = create_engine(url)
        try:
            await check_reachable(engine)
        finally:
            await engine.dispose()
        # several at once (nodes deployed together) take turns
        async with migration_lock(url):
            return await migrate()

    async def migrate() -> tuple[list[str], list[str], list[str]]:
        await upgrade(url, revision)
        if revision != "head":
            return [], [], []
        services = Services.from_url(url)
        try:
            added = await sync_product_releases(services, product, tailor_extension_points)
            planned = await register_planned_releases(services, product, tailor_extension_points)
            if not await services.registry.versions_without_code():
                return added + planned, [], []
            runtime = cli_runtime(product)
            try:
                stored, missing = await store_missing_code(
                    services, runtime, Principal.system("db-upgrade")
                )
            finally:
                await runtime.close()
            return added + planned, stored, missing
        finally:
            await services.close()

    added, stored, missing = run(go)
    out.print(f"database is at {revision}; product releases added: {', '.join(added) or 'none'}")
    if stored:
        out.print(f"code stored from disk for: {', '.join(stored)}", highlight=False)
    if missing:
        err.print(
            "registered without their code, not found on disk (their tenants run without "
            f"them; publish them again): {', '.join(missing)}",
            highlight=False,
            soft_wrap=True,
        )


# -- demo ---------------------------------------------------------------------


@demo_app.command("seed")
def demo_seed(
    tenants: Annotated[
        int, typer.Option("--tenants", min=0, help="Also generate N fleet tenants (scale tests).")
    ] = 0,
    customizations_per_tenant: Annotated[
        int,
        typer.Option(
            "--customizations-per-tenant", min=0, help="Generated customizations per fleet tenant."
        ),
    ] = 0,
    database_url: DatabaseOption = None,
) -> None:
    """Load the demo releases (with planned 3.0), tenants and overrides, and publish
    and enable the sample customizations (idempotent); with --tenants N, also a
    generated fleet."""
    if customizations_per_tenant and not tenants:
        err.print(
            "error: --customizations-per-tenant needs --tenants N (the generated fleet)",
            highlight=False,
        )
        raise typer.Exit(2)
    from api.cli.customization import publish_demo_customizations
    from core.store.demo import DEMO_ACTOR, protect_demo, seed_demo
    from core.store.fleet import seed_fleet
    from plugins.catalog import tailor_extension_points

    product = cli_product()

    async def go() -> tuple[SeedReport, DemoPublishReport, FleetReport | None, list[str]]:
        services = await open_services(database_url, migrate=True)
        try:
            seeded = await seed_demo(services, product, tailor_extension_points)
            published = await publish_demo_customizations(services, product)
            fleet = None
            if tenants:

                async def publish(registrations: Sequence[Registration]) -> None:
                    await services.registry.publish_many(DEMO_ACTOR, registrations)

                fleet = await seed_fleet(
                    services,
                    tenants,
                    customizations_per_tenant,
                    demo=product.demo,
                    publish=publish,
                )
            # last, once every row is written: from now on these change by
            # change requests (run again, the rows above are skipped)
            protected = await protect_demo(services, product)
            return seeded, published, fleet, protected
        finally:
            await services.close()

    report, published, fleet, protected = run(go)
    out.print(
        f"customizations published: {', '.join(published.published) or 'none'}; "
        f"refused: {', '.join(published.skipped) or 'none'}",
        highlight=False,
        soft_wrap=True,
    )
    out.print(
        f"releases added: {', '.join(report.releases_added + report.planned_added) or 'none'}; "
        f"tenants added: {', '.join(report.tenants_added) or 'none'}; "
        f"overrides set: {report.overrides_set}"
    )
    if protected:
        out.print(
            f"protected (changes there are change requests): {', '.join(protected)}",
            highlight=False,
        )
    if fleet is not None:
        out.print(
            f"fleet: {fleet.tenants_added} tenants, {fleet.overrides_added} overrides added; "
            f"{len(fleet.registrations)} customization registrations generated"
            + (" and published" if fleet.published else "")
        )


# -- token --------------------------------------------------------------------


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, release_manager, consultant, app or host.")],
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            "--tenant",
            help="Tenant slug in scope (repeat; consultant and app; host: its tenants, "
            "or all when omitted).",
        ),
    ] = None,
    label: Annotated[str, typer.Option(help="Who or what uses it (shown in the audit log).")] = "",
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", help="Expire after this many days.")
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            help="app tokens: a web origin a browser app may call Tailor from with it "
            "(CORS), e.g. https://shop.example (repeat). None by default.",
        ),
    ] = None,
    app_name: Annotated[
        str | None,
        typer.Option(
            "--app",
            help="app tokens: the front-end app it belongs to (tailor app register): a "
            "trusted-only app's tokens run only its registered documents.",
        ),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""

    from core.store.tokens import expiry

    async def create(services: Services) -> tuple[str, TokenInfo]:
        expires = expiry(expires_in_days) if expires_in_days is not None else None
        return await services.tokens.create(
            role, tenant or (), label, expires, origins=origin or (), app=app_name
        )

    secret, info = run_with_services(database_url, create)
    err.print(
        f"created {info.role.value} token {info.prefix}... "
        f"({'tenants: ' + ', '.join(info.tenants) if info.tenants else 'all tenants'}"
        f"{', app ' + info.app if info.app else ''}"
        f"{', origins: ' + ', '.join(info.origins) if info.origins else ''}"
        f"{', expires ' + info.expires_at.isoformat() if info.expires_at else ''}); "
        "store it now, it is not shown again:",
        highlight=False,
    )
    print(secret)


@token_app.command("list")
def token_list(database_url: DatabaseOption = None) -> None:
    """List tokens (prefix, role, scope, state); never the secrets."""

    table = Table()
    for col in ("prefix", "label", "role", "tenants", "origins", "expires", "revoked", "state"):
        table.add_column(col)
    for t in run_with_services(database_url, lambda services: services.tokens.list_all()):
        table.add_row(
            t.prefix,
            t.label + (f" (app {t.app})" if t.app else ""),
            t.role.value,
            (", ".join(t.tenants) or "all") + (f" (app {t.app})" if t.app else ""),
            ", ".join(t.origins),
            t.expires_at.isoformat() if t.expires_at else "never",
            t.revoked_at.isoformat() if t.revoked_at else "",
            t.state,
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    prefix: Annotated[str, typer.Argument(help="The token's prefix, as 'token list' shows.")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a token: it stops working at once."""

    info, revoked_now = run_with_services(
        database_url, lambda services: services.tokens.revoke(prefix)
    )
    if revoked_now:
        out.print(f"revoked {info.prefix}... ({info.label})", highlight=False)
    else:
        at = info.revoked_at.isoformat() if info.revoked_at else "?"
        out.print(
            f"{info.prefix}... ({info.label}) was already revoked at {at}; nothing changed",
            highlight=False,
        )


# -- tenant -------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[str, typer.Argument(help="The tenant's slug (lower-case, e.g. 'globex').")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    release: Annotated[str, typer.Option("--release", help="The product release it runs.")],
    environment: Annotated[
        list[str] | None,
        typer.Option("--environment", help="An environment (repeat), e.g. production."),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a tenant (audited); environments default to production and sandbox.
    Exit status 2 on bad input (taken slug, unknown or planned release, bad
    environment name); nothing is stored then."""
    from core.store.tenants import DEFAULT_ENVIRONMENTS

    actor = CLI_ACTOR
    envs = tuple(environment) if environment else DEFAULT_ENVIRONMENTS
    info = run_with_services(
        database_url, lambda services: services.tenants.create(actor, slug, name, release, envs)
    )
    out.print(
        f"created tenant {info.slug} ({info.name}) on release {info.release}; environments: "
        f"{', '.join(info.environments) or 'none'}",
        highlight=False,
        soft_wrap=True,
    )


@tenant_app.command("list")
def tenant_list(
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """Every tenant with its release and environments."""
    import json

    tenants = run_with_services(database_url, lambda services: services.tenants.list_all(CLI_ACTOR))
    if fmt is ListFormat.JSON:
        rows = [
            {
                "slug": t.slug,
                "name": t.name,
                "release": t.release,
                "environments": list(t.environments),
                "protected": {name: approvals for name, approvals in t.protected},
            }
            for t in tenants
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in ("slug", "name", "release", "environments", "protected"):
        table.add_column(col)
    for t in tenants:
        protected = ", ".join(f"{name} ({approvals})" for name, approvals in t.protected)
        table.add_row(t.slug, t.name, t.release, ", ".join(t.environments), protected)
    out.print(table)


@app.command("audit")
def audit_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's entries.")] = None,
    key: Annotated[str | None, typer.Option(help="Only this setting key's entries.")] = None,
    request_id: Annotated[
        str | None,
        typer.Option(help="Only what the HTTP request with this X-Request-Id changed."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.TABLE,
    database_url: DatabaseOption = None,
) -> None:
    """The audit log, newest first: who changed what, and the request that did it
    (the request id its log lines carry; none for a change made here)."""
    import json

    entries = run_with_services(
        database_url,
        lambda services: services.audit.list_all(
            CLI_ACTOR, tenant, key, limit, request_id=request_id
        ),
    )
    if fmt is ListFormat.JSON:
        rows = [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "tenant": e.tenant,
                "environment": e.environment,
                "key": e.key,
                "old": e.old,
                "new": e.new,
                "reason": e.reason,
                "request_id": e.request_id,
            }
            for e in entries
        ]
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table()
    for col in ("id", "at", "actor", "action", "tenant", "key", "request"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            str(e.id),
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.action,
            e.tenant or "",
            e.key or "",
            e.request_id or "",
        )
    out.print(table)


from api.cli.apps import app_app  # noqa: E402
from api.cli.customization import register as _register_customization_cli  # noqa: E402
from api.cli.foldback import foldback_app  # noqa: E402
from api.cli.roadmap import roadmap_app  # noqa: E402
from api.cli.webhook import webhook_app  # noqa: E402

_register_customization_cli(app)
app.add_typer(foldback_app, name="foldback")
app.add_typer(roadmap_app, name="roadmap")
app.add_typer(webhook_app, name="webhook")
app.add_typer(app_app, name="app")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
