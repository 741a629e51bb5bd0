"""``tailor customization check|publish|list|enable`` and ``tailor doctor``."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli import scaffold, trial
from api.cli.common import (
    CLI_ACTOR,
    BreakGlassOption,
    ListFormat,
    break_glass,
    cli_product,
    cli_runtime,
    err,
    out,
    run_with_services,
)
from api.cli.common import DatabaseOption as DatabaseUrl
from api.cli.remote import (
    Remote,
    RemoteError,
    TokenFileOption,
    TokenOption,
    UrlOption,
    expect,
    refuse_while_remote,
    remote,
    run_remote,
)
from api.wiring import (
    DemoPublishReport,
    PublishOutcome,
    bind_runtime,
    publish_archive,
    publish_installed,
)
from core.analysis.readiness.evaluation import check_customization
from core.analysis.readiness.report import CustomizationReadiness
from core.analysis.readiness.vocabulary import Severity
from core.model.auth import Principal
from core.model.customizations import Observation, Registration, visible_customization
from core.model.errors import ArchiveError
from core.model.manifest import ReleaseManifest
from core.model.product import Product
from core.store.authorization import Authorization
from core.store.bootstrap import product_manifest
from core.store.services import Services
from plugins.catalog import Catalog
from plugins.evidence import StaticPackage, read_package, unknown_keys
from plugins.evidence import key_categories as evidence_categories
from plugins.loading import Source, _package_dirs
from plugins.manifest import MANIFEST_FILE
from plugins.runtime import PluginRuntime, RuntimeOptions
from plugins.status import (
    CachedVersion,
    CustomizationPresence,
    cache_drift,
    cache_states,
    statuses,
)

customization_app = typer.Typer(
    help="Consultant customizations: check one before you ship it, publish it to the "
    "registry, enable it per tenant, list what is installed and registered.\n\n"
    "A customization is a package directory with a customization.toml (name, version, "
    "tenants, requires, tested_up_to, capability, description, author) and a hooks.py "
    'whose functions are marked with pluggy.HookimplMarker("tailor").',
    no_args_is_help=True,
)


#: ``tailor customization`` commands that act on a server with --url (TAILOR_URL),
#: or that touch no database at all; the others refuse while TAILOR_URL is set
REMOTE_OR_NO_DATABASE = frozenset(
    {"publish", "enable", "pin", "versions", "yank", "list", "run", "check", "new", "fix"}
)


@customization_app.callback()
def _local_or_remote(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in REMOTE_OR_NO_DATABASE:
        refuse_while_remote(f"customization {ctx.invoked_subcommand}")


async def publish_demo_customizations(services: Services, product: Product) -> DemoPublishReport:
    """Publish the installed sample customizations and enable them for their tenants."""
    runtime = cli_runtime(product)
    bind_runtime(services, runtime)
    return await publish_installed(services, runtime, Principal.system("demo-seed"))


@customization_app.command("check")
def check(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Customization directories (or directories of them) to check.",
            show_default=False,
        ),
    ],
    release: Annotated[
        str | None,
        typer.Option(
            help="Run every readiness rule against this release, released or planned "
            "(planned releases are read from the database, or from the server with --url; "
            "default: the running one)."
        ),
    ] = None,
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Report EVERY problem at once, compiler style (file:field: message): manifest
    fields, invalid PEP 440 specifiers, import errors, unknown hooks, parameters a
    hookspec lacks, name collisions, setting keys the code reads or returns that no
    release of the product defines and no customization registers (a typo: the
    nearest known keys are suggested). Then the readiness rules fleet readiness runs,
    for this package against --release (hooks removed or deprecated, parameters
    removed, experimental hooks, settings removed or deprecated, requires,
    tested_up_to), each with the file:line it comes from, and the hooks and setting
    keys Tailor detected in the source.

    Exit status 2 when there is any problem (or the release is unknown), 1 when the
    release would block the customization, else 0; nothing is stored.

    With --url (or TAILOR_URL), the releases and their setting catalog are the
    server's: what it knows, planned releases included, is what the package is
    checked against; the code itself is checked here.

    Example: tailor customization check customizations/northwind_credit_policy --release 3.0
    """
    from plugins.runtime.install import Inspector

    product = cli_product()
    release = release or product.version
    server = remote(url, token, token_file)
    target, history, known_keys = _target_release(product, release, server, database_url)
    categories = key_categories(product, known_keys)
    directories: list[Path] = []
    for path in paths:
        # absolute here: the worker that imports the package runs in another directory
        path = path.resolve()
        directories.extend(_package_dirs(path) or [path])
    packages = {d: read_package(d, categories=categories, product=product.id) for d in directories}
    # keys a customization registers for itself are known to every package checked
    registered = frozenset(k for p in packages.values() for k in p.evidence.registered)
    problems = 0
    blocked = 0

    def say(text: str) -> None:
        out.print(text, highlight=False, soft_wrap=True, markup=False)

    loaded = {}
    if release == product.version:  # the running code: import it (in a worker) and ask pluggy
        # the source is read once, above (read_package): the workers only import it
        inspector = Inspector(Catalog.for_product(product), release, analyze=False)
        try:
            checked = inspector.inspect_all([Source(p, "check") for p in directories])
        finally:
            inspector.close()
        for item in checked:
            loaded[item.source.path] = item
            for problem in item.problems:
                say(str(problem))
                problems += 1
            for warning in item.warnings:
                say(f"{item.source.path / 'hooks.py'}: warning: {warning}")
    for directory in directories:
        package = packages[directory]
        if directory not in loaded:
            for problem in package.problems:
                say(str(problem))
                problems += 1
        unknown = unknown_keys(package.evidence, known_keys, registered)
        for u in unknown:
            say(f"{directory / u.reference.location}: error: {u.message}")
        problems += len(unknown)
        if package.registration is None:
            continue
        result = check_customization(target, package.registration, history)
        if package.evidence.run_time_keys:
            # which keys these hooks use only observed evidence can tell: the fleet's
            observed = _fleet_observations(package.registration.name, server, database_url)
            if observed is None:
                hooks = ", ".join(package.evidence.run_time_keys)
                say(
                    f"{directory / MANIFEST_FILE}: note: {hooks}"
                    " choose setting keys at run time: only observed evidence can tell which; "
                    "give --url/--token or --database-url to use the fleet's observations"
                )
            else:
                result = check_customization(target, package.registration, history, observed)
                calls = sum(o.calls for o in observed)
                say(
                    f"  observed: {len(observed)} observation(s) of {result.name} in the fleet "
                    f"({calls} call(s)), used with the code"
                )
        blocking = any(f.severity is Severity.BLOCKER for f in result.findings)
        blocked += blocking
        _print_check(say, directory, release, package, result)
        inspected = loaded.get(directory)
        if not blocking and not unknown and (inspected is None or not inspected.refused):
            hooks = ", ".join(h.use.hook for h in package.evidence.hooks)
            m = package.registration.manifest
            err.print(f"ok {m.name} {m.version} ({hooks})", highlight=False, markup=False)
    if problems:
        err.print(f"{problems} problem(s)")
        raise typer.Exit(2)
    if blocked:
        err.print(f"{blocked} customization(s) blocked by {release}")
        raise typer.Exit(1)


@customization_app.command("fix")
def fix_command(
    path: Annotated[
        Path, typer.Argument(help="The customization package directory.", show_default=False)
    ],
    release: Annotated[
        str,
        typer.Option(
            help="The target release whose renames to apply (released or planned; planned "
            "releases are read from the database, or from the server with --url).",
            show_default=False,
        ),
    ],
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Apply the rewrite, only when the rewritten package passes "
            "'tailor customization check --release V'.",
        ),
    ] = False,
    bump: Annotated[
        bool,
        typer.Option(
            "--bump", help="Also widen requires and raise tested_up_to to admit the release."
        ),
    ] = False,
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Rewrite what --release renames (setting keys, hooks, hook parameters), and
    nothing else, keeping formatting and comments; print the unified diff. What it
    cannot fix safely (a removed setting or hook, a type change, a key built at run
    time) is listed with the reason.

    With --write the rewrite is applied only when the rewritten package passes
    'tailor customization check --release V' (checked on a copy first); otherwise
    nothing is written and the check's report says why.

    Exit status 0 when there is nothing to fix or the fix was written, 1 when fixes
    are proposed but not written or something cannot be fixed, 2 on bad input.

    Example: tailor customization fix customizations/stark_invoice_footer --release 3.1 --bump
    """
    import shutil
    import tempfile

    from plugins.codemods import plan_fix

    directory = path.resolve()
    if not (directory / MANIFEST_FILE).is_file():
        err.print(
            f"error: {path}: not a customization package (no {MANIFEST_FILE}); give the "
            "package directory",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    product = cli_product()
    server = remote(url, token, token_file)
    target, history, known_keys = _target_release(product, release, server, database_url)
    plan = plan_fix(
        directory,
        target,
        history,
        categories=key_categories(product, known_keys),
        product=product.id,
        bump=bump,
    )
    diff = plan.diff()
    if diff:
        out.print(diff, highlight=False, markup=False, soft_wrap=True, end="")
    for item in plan.unfixable:
        err.print(
            f"{directory / item.location}: cannot fix: {item.what}: {item.reason}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if not plan.changes:
        err.print(
            f"nothing to rewrite for {release}"
            + (f"; {len(plan.unfixable)} item(s) to fix by hand" if plan.unfixable else ""),
            highlight=False,
            markup=False,
        )
        raise typer.Exit(1 if plan.unfixable else 0)
    if not write:
        err.print(
            f"{len(plan.applied)} rewrite(s) proposed in {len(plan.changes)} file(s); "
            "--write applies them",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(1)
    with tempfile.TemporaryDirectory(prefix="tailor-fix-") as scratch:
        copy = Path(scratch) / directory.name
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
        plan.write(copy)
        err.print(f"checking the rewritten package against {release}:", highlight=False)
        try:
            check(
                [copy],
                release=release,
                url=url,
                token_file=token_file,
                token=token,
                database_url=database_url,
            )
            passed = 0
        except typer.Exit as exc:
            passed = exc.exit_code
    if passed != 0:
        err.print(
            f"nothing written: the rewritten package does not pass 'tailor customization "
            f"check --release {release}' (exit {passed}; its report is above)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    plan.write()
    err.print(
        f"wrote {len(plan.changes)} file(s) of {directory.name}: " + "; ".join(plan.applied),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if plan.unfixable:
        raise typer.Exit(1)


def key_categories(product: Product, known_keys: Collection[str]) -> frozenset[str]:
    """What a dotted string must start with to be taken for a setting key
    (:func:`plugins.evidence.key_categories` with the product's categories)."""
    return evidence_categories(product.setting_categories or (), known_keys)


def _target_release(
    product: Product, release: str, server: Remote | None, database_url: str | None
) -> tuple[ReleaseManifest, tuple[ReleaseManifest, ...], frozenset[str]]:
    """Release ``release``'s manifest, the rest of the history, and every key
    they define: from the server (``--url``), else the product and the
    database."""
    target, history = (
        _remote_manifests(server, release)
        if server is not None
        else _release_manifests(product, release, database_url)
    )
    return target, history, frozenset(d.key for m in (target, *history) for d in m.settings)


def _release_manifests(
    product: Product, version: str, database_url: str | None
) -> tuple[ReleaseManifest, tuple[ReleaseManifest, ...]]:
    """The running product's own releases come from its declaration; planned
    (imported) ones from the database."""
    from plugins.catalog import tailor_extension_points

    own = {
        v: product_manifest(product, v, tailor_extension_points) for v in product.release_history
    }
    if version in own:
        return own[version], tuple(m for v, m in own.items() if v != version)

    async def go(services: Services) -> tuple[ReleaseManifest, tuple[ReleaseManifest, ...]]:
        return await services.readiness.release_manifests(CLI_ACTOR, version)

    return run_with_services(database_url, go)


_OBSERVATIONS = (
    "{ customizations { __typename ... on CustomizationList { items { name observations { "
    "tenant hook version calls failures changed firstSeen lastSeen keysRead keysReturned "
    "} } } ... on Error { code message } } }"
)


def _fleet_observations(
    name: str, server: Remote | None, database_url: str | None
) -> list[Observation] | None:
    """The fleet's observations of customization ``name`` (in the caller's scope),
    from the server (``--url``) or the database (``--database-url``); None when
    neither was given. A name the fleet does not know has none."""
    from datetime import datetime

    from core.model.customizations import READ, RETURNED, ObservedKey

    if server is not None:
        answer = run_remote(lambda: server.call(_OBSERVATIONS))["customizations"]
        listed = run_remote(partial(expect, answer, "CustomizationList"))
        mine = [c for c in listed["items"] if c["name"] == name]
        out = []
        for o in mine[0]["observations"] if mine else ():
            last = datetime.fromisoformat(o["lastSeen"])
            keys = [
                *(ObservedKey(k, READ, o["calls"], last) for k in o["keysRead"]),
                *(ObservedKey(k, RETURNED, o["calls"], last) for k in o["keysReturned"]),
            ]
            out.append(
                Observation(
                    customization=name,
                    tenant=o["tenant"],
                    hook=o["hook"],
                    calls=o["calls"],
                    failures=o["failures"],
                    changed=o["changed"],
                    latency_buckets=(),
                    last_error=None,
                    last_error_at=None,
                    first_seen=datetime.fromisoformat(o["firstSeen"]),
                    last_seen=last,
                    keys=tuple(keys),
                    version=o["version"],
                )
            )
        return out
    if database_url is None:
        return None

    async def go(services: Services) -> list[Observation]:
        return await services.observations.list_all(CLI_ACTOR, customization=name)

    return run_with_services(database_url, go)


def _remote_manifests(
    server: Remote, version: str
) -> tuple[ReleaseManifest, tuple[ReleaseManifest, ...]]:
    """The manifest of ``version`` and of every other release, as the server has
    them (two requests)."""
    from core.model.errors import TailorError
    from core.model.manifest_io import ManifestFormat, loads

    listed = run_remote(lambda: server.call("{ releases { version } }"))["releases"]
    versions = [r["version"] for r in listed]
    if version not in versions:
        err.print(
            f"error: release {version!r} is not registered on {server.url} "
            f"(it has: {', '.join(versions) or 'none'})",
            markup=False,
        )
        raise typer.Exit(2)
    fields = " ".join(
        f"r{i}: release(version: {json.dumps(v)}) {{ __typename ... on ReleaseDetail "
        "{ version manifest } ... on Error { code message } }"
        for i, v in enumerate(versions)
    )
    answer = run_remote(lambda: server.call("{ " + fields + " }"))
    manifests: dict[str, ReleaseManifest] = {}
    for i in range(len(versions)):
        detail = run_remote(partial(expect, answer[f"r{i}"], "ReleaseDetail"))
        try:
            manifests[detail["version"]] = loads(
                json.dumps(detail["manifest"]), ManifestFormat.JSON
            )
        except TailorError as exc:
            err.print(f"error: {server.url}: release {detail['version']}: {exc.message}")
            raise typer.Exit(2) from None
    return manifests[version], tuple(m for v, m in manifests.items() if v != version)


def _print_check(
    say: Callable[[str], None],
    directory: Path,
    release: str,
    package: StaticPackage,
    result: CustomizationReadiness,
) -> None:
    """What Tailor detected in the package, then its findings, compiler style."""
    evidence = package.evidence
    say(
        f"{result.name} {result.version} against {release}: {result.status.value} "
        f"(stability level {result.level})"
    )
    for h in evidence.hooks:
        say(f"  hook {h.use.hook}({', '.join(h.use.params)})  {h.use.location} {h.qualname}")
    for ref in evidence.references:
        what = "prefix" if ref.is_prefix else "key"
        say(f"  {what} {ref.key}  {ref.location} ({ref.how})")
    if not evidence.hooks:
        say("  no hook implementation found")
    registration = package.registration
    if registration is not None:
        # what it declares: the server hands it these secrets, and no other
        m = registration.manifest
        say(f"  declares secrets: {', '.join(m.secrets) or 'none'}")
        say(f"  declares pure results (cacheable answers): {'yes' if m.pure else 'no'}")
    for f in result.findings:
        static = f.evidence.get("static") or []
        where = static[0].split(" ", 1)[0] if static else MANIFEST_FILE
        say(f"{directory / where}: {f.severity.value}: {f.code.value}: {f.message}")
        say(f"  fix: {f.action}")


_VERSION_FIELDS = "version sha256 publishedAt publishedBy yanked yankReason pinnedFor"
_CUSTOMIZATION_FIELDS = (
    "__typename ... on Customization { name registeredVersion enabledFor "
    "pins { tenant version } hooks { hook params } versions { " + _VERSION_FIELDS + " } "
    "changeRequests { id tenant } } "
    "... on Error { code message }"
)


def _local_break_glass(enabled: bool, reason: str | None, remote: bool) -> Authorization | None:
    if enabled and remote:
        err.print(
            "error: --break-glass is the operator's path on the local database "
            "(--database-url); against a server, propose a change request (proposeChange)",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    return break_glass(enabled, reason)


def _say(text: str) -> None:
    out.print(text, highlight=False, soft_wrap=True, markup=False)


def _print_rows(
    rows: list[dict[str, Any]],
    fmt: ListFormat,
    columns: dict[str, Callable[[dict[str, Any]], str]],
) -> None:
    """Rows as JSON (every field), or as a table of ``columns`` (header -> cell)."""
    if fmt is ListFormat.JSON:
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for header in columns:
        table.add_column(header)
    for r in rows:
        table.add_row(*(cell(r) for cell in columns.values()))
    out.print(table)


def _pins_text(pins: list[dict[str, str]]) -> str:
    return ", ".join(f"{p['tenant']}@{p['version']}" for p in pins) or "no tenant"


@customization_app.command("publish")
def publish(
    path: Annotated[Path, typer.Argument(help="The customization's package folder.")],
    enable: Annotated[
        bool,
        typer.Option(
            "--enable",
            help="Also pin the tenants it lists that do not run it yet to this version "
            "(tenants already enabled stay on their version).",
        ),
    ] = False,
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Publish the package folder PATH as a new version: it is zipped (the same folder
    gives the same sha256 on any machine), uploaded with --url (or TAILOR_URL) and a
    consultant's token, or stored in the local database as the operator. The server
    reads the manifest itself, checks the code in a confined worker and keeps the
    version, immutable and content-addressed; every server runs it once a tenant is
    pinned to it. Publishing the same version again with other content is refused:
    raise the version. Exit 2 on any problem (every one is listed).

    Example: tailor customization publish customizations/hooli_ui_defaults --enable
             --url https://tailor.example.com   (token in TAILOR_TOKEN)
    """
    from plugins import archive

    path = path.resolve()
    try:
        tree = archive.tree_from_directory(path)
    except ArchiveError as exc:
        err.print(f"error: {exc.message}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(2) from None
    data = archive.build_zip(tree)
    server = remote(url, token, token_file)
    if server is not None:
        query = (
            "mutation($a: Upload!, $e: Boolean!) { publishCustomization(archive: $a, "
            "enable: $e) { " + _CUSTOMIZATION_FIELDS + " } }"
        )
        answer = run_remote(
            lambda: server.call(query, {"e": enable}, upload=("a", f"{path.name}.zip", data))
        )
        item = run_remote(lambda: expect(answer["publishCustomization"], "Customization"))
        _say(
            f"published {item['name']} to {server.url}: sha256 {tree.sha256}; "
            f"pinned: {_pins_text(item['pins'])}"
        )
        _say_requested([(r["id"], r["tenant"]) for r in item["changeRequests"]])
        return

    catalog = Catalog.for_product(cli_product())

    async def go(services: Services) -> PublishOutcome:
        runtime = PluginRuntime(catalog, RuntimeOptions(directories=[]))
        bind_runtime(services, runtime)
        try:
            return await publish_archive(services, runtime, CLI_ACTOR, data, enable=enable)
        finally:
            await runtime.close()

    outcome = run_with_services(database_url, go)
    registration = outcome.registration
    hooks = ", ".join(f"{h.hook}({', '.join(h.params)})" for h in registration.hooks)
    _say(
        f"published {registration.name} {registration.manifest.version}: {hooks}; "
        f"sha256 {tree.sha256}"
        + (f"; enabled for {', '.join(outcome.enabled)}" if outcome.enabled else "")
    )
    for tenant, why in outcome.skipped:
        _say(f"  not enabled for {tenant}: {why}")
    _say_requested([(r.id, r.tenant) for r in outcome.requested])
    # what readiness will use as static evidence: the stored version's, as the
    # server read it from the source while publishing (never a second reading)
    for h in registration.hooks:
        _say(f"  hook {h.hook}({', '.join(h.params)})  {h.location}")
    for ref in registration.references:
        what = "prefix" if ref.is_prefix else "key"
        _say(f"  {what} {ref.key}  {ref.location} ({ref.how})")


def _say_requested(requested: list[tuple[int, str]]) -> None:
    """The change requests ``publish --enable`` proposed: (id, tenant)."""
    for request_id, tenant in requested:
        _say(
            f"  change request {request_id} to enable it for {tenant} (a protected "
            "environment): awaiting approval by another principal"
        )


@customization_app.command("enable")
def enable_command(
    name: Annotated[str, typer.Argument(help="The customization's name.")],
    tenant: Annotated[str, typer.Argument(help="A tenant a version of it lists.")],
    disable: Annotated[bool, typer.Option("--disable", help="Turn it off instead.")] = False,
    version: Annotated[
        str | None,
        typer.Option(
            help="Pin this version (default: the tenant's pin, else the newest that fits)."
        ),
    ] = None,
    glass: BreakGlassOption = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required with --break-glass).")
    ] = None,
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Turn a published customization on (or off with --disable) for one tenant.
    Enabling pins --version when given; otherwise the tenant keeps its pin, or is
    pinned to the newest version that lists it, is not yanked and whose requires
    contains its release (pre-releases only when named). A tenant with a protected
    environment is refused (propose a change request) unless --break-glass
    --reason "..." (local database only; audited)."""
    server = remote(url, token, token_file)
    authorization = _local_break_glass(glass, reason, server is not None)
    if server is not None:
        query = (
            "mutation($t: String!, $n: String!, $e: Boolean!, $v: String) { "
            "setCustomizationEnabled(tenant: $t, name: $n, enabled: $e, version: $v) { "
            + _CUSTOMIZATION_FIELDS
            + " } }"
        )
        variables = {"t": tenant, "n": name, "e": not disable, "v": version}
        answer = run_remote(lambda: server.call(query, variables))
        item = run_remote(lambda: expect(answer["setCustomizationEnabled"], "Customization"))
        _say(f"{name}: enabled for {_pins_text(item['pins'])}")
        return

    async def go(services: Services) -> Registration:
        return await services.registry.set_enabled(
            CLI_ACTOR,
            tenant,
            name,
            not disable,
            version,
            authorization=authorization,
        )

    registration = run_with_services(database_url, go)
    pins = [{"tenant": t, "version": v} for t, v in registration.pins]
    _say(f"{name}: enabled for {_pins_text(pins)}")


@customization_app.command("versions")
def versions_command(
    name: Annotated[str, typer.Argument(help="The customization's name.")],
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.TABLE,
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Every published version of NAME, newest first: its sha256, who published it
    and when, whether it was yanked (and why), and the tenants pinned to it.

    Example: tailor customization versions globex-eur-rounding
    """
    server = remote(url, token, token_file)
    if server is not None:
        query = (
            "{ customizations { __typename ... on CustomizationList { items { name "
            "versions { " + _VERSION_FIELDS + " } } } ... on Error { code message } } }"
        )
        answer = run_remote(lambda: server.call(query))
        listed = run_remote(lambda: expect(answer["customizations"], "CustomizationList"))
        found = next((i for i in listed["items"] if i["name"] == name), None)
        if found is None:
            err.print(f"error: customization {name!r} not found", markup=False)
            raise typer.Exit(2)
        rows = [
            {
                "version": v["version"],
                "sha256": v["sha256"],
                "published_at": v["publishedAt"],
                "published_by": v["publishedBy"],
                "yanked": v["yankReason"] if v["yanked"] else None,
                "pinned_for": v["pinnedFor"],
            }
            for v in found["versions"]
        ]
    else:

        async def go(services: Services) -> list[dict[str, Any]]:
            found = await services.registry.versions(CLI_ACTOR, name)
            return [
                {
                    "version": v.version,
                    "sha256": v.sha256,
                    "published_at": v.published_at.isoformat() if v.published_at else None,
                    "published_by": v.published_by,
                    "yanked": v.yank_reason if v.yanked else None,
                    "pinned_for": list(v.pinned_for),
                }
                for v in found
            ]

        rows = run_with_services(database_url, go)
    _print_rows(
        rows,
        fmt,
        {
            "version": lambda r: r["version"],
            "sha256": lambda r: (r["sha256"] or "no code")[:12],
            "published": lambda r: (r["published_at"] or "")[:19],
            "by": lambda r: r["published_by"],
            "yanked": lambda r: r["yanked"] or "",
            "pinned for": lambda r: ", ".join(r["pinned_for"]),
        },
    )


@customization_app.command("pin")
def pin_command(
    name: Annotated[str, typer.Argument(help="The customization's name.")],
    version: Annotated[str, typer.Argument(help="A published version (not yanked).")],
    tenants: Annotated[
        list[str],
        typer.Option("--tenant", "-t", help="A tenant to move (repeat for several)."),
    ],
    glass: BreakGlassOption = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required with --break-glass).")
    ] = None,
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Move tenants to VERSION of NAME, one at a time: a staged rollout, or a
    rollback (pin the previous version). Each tenant keeps its enabled state. The
    version must list the tenant, not be yanked, and its requires must contain the
    tenant's release. Exit 2 when any tenant could not be moved (the others are). A
    tenant with a protected environment is refused (propose a change request)
    unless --break-glass --reason "..." (local database only; audited).

    Example: tailor customization pin globex-eur-rounding 1.4.0 --tenant globex
    """
    server = remote(url, token, token_file)
    authorization = _local_break_glass(glass, reason, server is not None)
    failed = 0
    for tenant in tenants:
        try:
            if server is not None:
                query = (
                    "mutation($t: String!, $n: String!, $v: String!) { "
                    "setCustomizationVersion(tenant: $t, name: $n, version: $v) { "
                    + _CUSTOMIZATION_FIELDS
                    + " } }"
                )
                answer = server.call(query, {"t": tenant, "n": name, "v": version})
                expect(answer["setCustomizationVersion"], "Customization")
            else:

                async def go(services: Services, tenant: str = tenant) -> Registration:
                    return await services.registry.set_version(
                        CLI_ACTOR,
                        tenant,
                        name,
                        version,
                        authorization=authorization,
                    )

                run_with_services(database_url, go)
        except RemoteError as exc:
            err.print(f"error: {tenant}: {exc.message}", markup=False, soft_wrap=True)
            failed += 1
            continue
        except typer.Exit:
            failed += 1
            continue
        _say(f"{tenant}: {name}@{version}")
    if failed:
        raise typer.Exit(2)


@customization_app.command("yank")
def yank_command(
    name: Annotated[str, typer.Argument(help="The customization's name.")],
    version: Annotated[str, typer.Argument(help="The version to withdraw.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the tenants still on it (required).")
    ],
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Withdraw a bad version: it can never be pinned again; the tenants still on it
    keep running it, flagged in readiness and the console, until they are pinned to
    another version ('tailor customization pin').

    Example: tailor customization yank globex-eur-rounding 1.5.0 --reason "rounds CHF wrong"
    """
    server = remote(url, token, token_file)
    if server is not None:
        query = (
            "mutation($n: String!, $v: String!, $r: String!) { "
            "yankCustomizationVersion(name: $n, version: $v, reason: $r) { "
            + _CUSTOMIZATION_FIELDS
            + " } }"
        )
        answer = run_remote(lambda: server.call(query, {"n": name, "v": version, "r": reason}))
        item = run_remote(lambda: expect(answer["yankCustomizationVersion"], "Customization"))
        still: list[str] = next(
            (v["pinnedFor"] for v in item["versions"] if v["version"] == version), []
        )
    else:

        async def go(services: Services) -> list[str]:
            yanked = await services.registry.yank(CLI_ACTOR, name, version, reason)
            return list(yanked.pinned_for)

        still = run_with_services(database_url, go)
    _say(
        f"yanked {name} {version}"
        + (f"; still running it: {', '.join(still)}" if still else "; no tenant runs it")
    )


@customization_app.command("list")
def list_command(
    tenant: Annotated[str | None, typer.Option(help="Only those made for this tenant.")] = None,
    capability: Annotated[str | None, typer.Option(help="Only this capability.")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", help="table or json.")] = ListFormat.TABLE,
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Customizations published (with their code stored or not) and/or found on disk,
    with the version each tenant runs, hooks and health (calls, failures). With
    --url: those the server shows your token."""
    server = remote(url, token, token_file)
    if server is not None:
        _list_remote(server, tenant, capability, fmt)
        return

    product = cli_product()

    async def go(
        services: Services,
    ) -> tuple[list[CustomizationPresence], list[Observation]]:
        principal = CLI_ACTOR
        registrations = await services.registry.list_all(principal, tenant, capability)
        seen = await services.observations.list_all(principal, tenant=tenant)
        runtime = cli_runtime(product)
        found = statuses(
            registrations, runtime.sources(), runtime.refused(), principal, tenant, capability
        )
        return found, seen

    found, seen = run_with_services(database_url, go)
    observed: dict[str, list] = {}
    for o in seen:
        observed.setdefault(o.customization, []).append(o)
    if fmt is ListFormat.JSON:
        # the operator sees everything, through the same rule as GraphQL and the console
        operator = CLI_ACTOR
        views = {
            s.name: visible_customization(
                operator,
                s.manifest.tenants if s.manifest else (),
                s.registration.pins if s.registration else (),
                s.health,
            )
            for s in found
        }
        rows = [
            {
                "name": s.name,
                "version": s.manifest.version if s.manifest else None,
                "capability": s.manifest.capability if s.manifest else None,
                "tenants": list(views[s.name].tenants),
                "installed": s.stored,
                "found_at": str(s.installed.source.path) if s.installed else None,
                "registered": s.registration is not None,
                "enabled_for": list(views[s.name].enabled_for),
                "pins": dict(views[s.name].pins),
                "refused": [str(p) for p in s.problems],
                "hooks": [h.hook for h in s.hooks],
                "calls": s.health.calls,
                "failures": s.health.failures,
                "last_error": views[s.name].health.last_error,
                "observations": [
                    {
                        "tenant": o.tenant,
                        "version": o.version,
                        "hook": o.hook,
                        "calls": o.calls,
                        "failures": o.failures,
                        "changed": o.changed,
                        "latency_p50_ms": o.latency_p50_ms,
                        "latency_p95_ms": o.latency_p95_ms,
                        "last_error": o.last_error,
                        "last_seen": o.last_seen.isoformat(),
                        "keys_read": sorted(o.keys_read),
                        "keys_returned": sorted(o.keys_returned),
                    }
                    for o in observed.get(s.name, [])
                ],
            }
            for s in found
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in (
        "name",
        "version",
        "capability",
        "enabled for",
        "state",
        "hooks",
        "calls/fail",
        "p95 ms",
        "keys read/returned",
    ):
        table.add_column(col)
    for s in found:
        state = []
        if s.stored:
            state.append("stored")
        if s.installed is not None:
            state.append("on disk")
        if s.problems:
            state.append("refused")
        if s.registration is not None:
            state.append("registered")
        table.add_row(
            s.name,
            s.manifest.version if s.manifest else "?",
            (s.manifest.capability or "") if s.manifest else "",
            ", ".join(s.registration.enabled_for) if s.registration else "",
            ", ".join(state),
            ", ".join(h.hook for h in s.hooks),
            f"{s.health.calls}/{s.health.failures}",
            _p95(observed.get(s.name, [])),
            _keys(observed.get(s.name, [])),
        )
    out.print(table)


_LIST_QUERY = """query($t: String, $c: String) { customizations(tenant: $t, capability: $c) {
  __typename ... on CustomizationList { items { name version capability tenants installed
    registered enabledFor pins { tenant version } problems { file field message }
    hooks { hook } health { calls failures } } }
  ... on Error { code message } } }"""


def _list_remote(
    server: Remote, tenant: str | None, capability: str | None, fmt: ListFormat
) -> None:
    answer = run_remote(lambda: server.call(_LIST_QUERY, {"t": tenant, "c": capability}))
    items = run_remote(lambda: expect(answer["customizations"], "CustomizationList"))["items"]
    rows = [
        {
            "name": i["name"],
            "version": i["version"],
            "capability": i["capability"],
            "tenants": i["tenants"],
            "installed": i["installed"],
            "registered": i["registered"],
            "enabled_for": i["enabledFor"],
            "pins": {p["tenant"]: p["version"] for p in i["pins"]},
            "refused": [f"{p['file']}:{p['field']}: {p['message']}" for p in i["problems"]],
            "hooks": [h["hook"] for h in i["hooks"]],
            "calls": i["health"]["calls"],
            "failures": i["health"]["failures"],
        }
        for i in items
    ]
    _print_rows(
        rows,
        fmt,
        {
            "name": lambda r: r["name"],
            "version": lambda r: r["version"] or "?",
            "capability": lambda r: r["capability"] or "",
            "runs on": lambda r: ", ".join(f"{t}@{v}" for t, v in r["pins"].items()),
            "hooks": lambda r: ", ".join(r["hooks"]),
            "calls/fail": lambda r: f"{r['calls']}/{r['failures']}",
        },
    )


def _p95(observations: list) -> str:
    values = [o.latency_p95_ms for o in observations if o.latency_p95_ms is not None]
    return f"{max(values):g}" if values else ""


def _keys(observations: list) -> str:
    read = set().union(*(o.keys_read for o in observations)) if observations else set()
    returned = set().union(*(o.keys_returned for o in observations)) if observations else set()
    return f"{len(read)}/{len(returned)}" if observations else ""


def doctor(database_url: DatabaseUrl = None) -> None:
    """Drift between the database and this machine: published versions whose code
    the database does not store, packages found on disk (customizations/,
    TAILOR_CUSTOMIZATIONS_PATH, entry points) that are not published or newer than
    what is, and this server's cache of the pinned versions compared with the
    database (TAILOR_CACHE_DIR; run it where the server runs). Also lists refused
    packages with their reasons. Exit status 1 when what servers run is not what was
    published (REGISTERED_NOT_INSTALLED, CACHE_MISMATCH); packages on disk that are
    not published are notes."""

    product = cli_product()

    async def go(
        services: Services,
    ) -> tuple[list[CustomizationPresence], list[CachedVersion], Path]:
        principal = CLI_ACTOR
        registrations = await services.registry.list_all(principal)
        runtime = cli_runtime(product)
        try:
            found = statuses(registrations, runtime.sources(), runtime.refused(), principal)
            cache = cache_states(await services.registry.pinned_map(), runtime.cache_root)
            return found, cache, runtime.cache_root
        finally:
            await runtime.close()

    found, cache, root = run_with_services(database_url, go)
    drift = [d for s in found for d in s.drift] + cache_drift(cache, root)
    for s in found:
        for problem in s.problems:
            _say(f"refused: {problem}")
    for d in drift:
        _say(f"{d.code}: {d.message}" if d.code.affects_serving else f"note: {d.code}: {d.message}")
    for c in cache:
        _say(f"cache: {c.name} {c.version} ({', '.join(c.tenants)}): {c.state}")
    stored = sum(1 for s in found if s.stored)
    registered = sum(1 for s in found if s.registration is not None)
    on_disk = sum(1 for s in found if s.installed is not None)
    _say(
        f"{registered} registered ({stored} with their code stored), {on_disk} found on "
        f"disk, {sum(c.state == 'cached' for c in cache)} of {len(cache)} pinned versions "
        f"cached in {root}, {sum(d.code.affects_serving for d in drift)} drift finding(s)"
    )
    if any(d.code.affects_serving for d in drift):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``customization`` sub-app and ``doctor`` to the ``tailor`` CLI."""
    app.add_typer(customization_app, name="customization")
    scaffold.register(customization_app)
    trial.register(customization_app)
    app.command("doctor")(doctor)
