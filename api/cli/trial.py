"""``tailor customization run``: one package's hook, called once on a tenant's
real values in a confined worker (:mod:`plugins.runtime.trial`), and what it
did. The values come from a :class:`plugins.runtime.trial.ValuesSource`: here
the database, through the settings service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import CLI_ACTOR, DatabaseOption, cli_product, err, out, run, run_with_services
from api.cli.remote import (
    Remote,
    RemoteError,
    TokenFileOption,
    TokenOption,
    UrlOption,
    expect,
    remote,
)
from core.model.auth import Principal
from core.model.definitions import SettingDefinition
from core.model.errors import InvalidInputError
from core.store.services import Services
from core.store.settings import SECRET_MARK
from plugins.catalog import Catalog
from plugins.runtime.trial import TenantValues, TrialOutcome, is_set, run_trial

NO_KERNEL = "unconfined: this machine has no Landlock/seccomp"


class DatabaseValues:
    """A tenant's layered values read from the database (the settings service's
    :meth:`~core.store.settings.SettingsService.layered`)."""

    def __init__(self, services: Services, principal: Principal | None = None) -> None:
        self.services = services
        self.principal = principal or CLI_ACTOR

    async def tenant_values(
        self, tenant: str, environment: str | None, extra: Sequence[SettingDefinition]
    ) -> TenantValues:
        layered = await self.services.settings.layered(self.principal, tenant, environment, extra)
        return TenantValues(
            tenant=tenant,
            environment=environment,
            release=layered.release,
            definitions={s.key: s.definition for s in layered.settings},
            values={s.key: s.value for s in layered.settings},
        )


_LAYERED = """query($t: String!, $e: String) {
  settings(tenant: $t, environment: $e, customizations: false) {
    __typename
    ... on Settings { release items { key value definition {
      key type default description category min max choices pattern added deprecated
      removed replacement secret } } }
    ... on Error { code message } } }"""


class RemoteValues:
    """A tenant's layered values read from a server (GraphQL ``settings`` with
    ``customizations: false``): a consultant's machine has no database. A secret
    comes back as null; whether one is set cannot be told from here, so a declared
    secret is handed to the code as set."""

    def __init__(self, server: Remote) -> None:
        self.server = server

    async def tenant_values(
        self, tenant: str, environment: str | None, extra: Sequence[SettingDefinition]
    ) -> TenantValues:
        try:
            answer = await asyncio.to_thread(
                self.server.call, _LAYERED, {"t": tenant, "e": environment}
            )
            found = expect(answer["settings"], "Settings")
        except RemoteError as exc:
            raise InvalidInputError(self.server.url, exc.message) from None
        definitions: dict[str, SettingDefinition] = {}
        values: dict[str, Any] = {}
        for item in found["items"]:
            data = {k: v for k, v in item["definition"].items() if v is not None}
            data["type"] = str(data["type"]).lower()
            data.setdefault("default", None)  # a secret's default is never shown
            definition = SettingDefinition.from_stored(data)  # checked by the server
            definitions[item["key"]] = definition
            values[item["key"]] = SECRET_MARK if definition.secret else item["value"]
        for definition in extra:
            if definition.key not in definitions:
                definitions[definition.key] = definition
                values[definition.key] = definition.default
        return TenantValues(tenant, environment, found["release"], definitions, values)


def parse_args(text: str | None) -> dict[str, Any]:
    """``--args``: a JSON object of the hook's other arguments."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            "args", f"not valid JSON ({exc.msg} at character {exc.pos}): {text!r}"
        ) from None
    if not isinstance(value, dict):
        raise InvalidInputError(
            "args", f"must be a JSON object of argument -> value, got {type(value).__name__}"
        )
    return value


def run_command(
    path: Annotated[
        Path, typer.Argument(help="The customization's directory.", show_default=False)
    ],
    hook: Annotated[
        str, typer.Option(help="The hook to call (it must implement it).", show_default=False)
    ],
    tenant: Annotated[
        str,
        typer.Option(
            help="The tenant whose values it gets (one it is made for).", show_default=False
        ),
    ],
    environment: Annotated[
        str | None,
        typer.Option(help="The environment to resolve (default: tenant-wide values)."),
    ] = None,
    args: Annotated[
        str | None,
        typer.Option(
            "--args",
            help="The hook's other arguments as a JSON object, e.g. "
            '\'{"invoice": {"number": "F-1", "total": 120.0}}\'.',
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds the call may take, as TAILOR_HOOK_TIMEOUT.")
    ] = 2.0,
    url: UrlOption = None,
    token_file: TokenFileOption = None,
    token: TokenOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Call one hook of the package at PATH once, as the server would: checked,
    loaded in a worker process under the server's confinement, called by value on
    the tenant's real values (default < tenant < environment, before any
    customization; for tailor_resolve_settings the settings the package registers
    itself included). Nothing is published or stored.

    Prints the result, the values it changes (old -> new, and whether the server
    would accept them), the setting keys it read and returned, its latency and the
    confinement applied. A secret setting the manifest declares in `secrets` is
    handed to the code as a placeholder and printed as "set (secret)"; other
    secrets are absent.

    Exit status 0 when the hook answered, 1 when it failed, 2 on bad input
    (unknown tenant, a hook it does not implement, invalid --args JSON).

    \b
    Examples:
      tailor customization run customizations/globex_eur_rounding \\
          --hook tailor_resolve_settings --tenant globex --environment production
      tailor customization run customizations/stark_invoice_footer \\
          --hook acme_invoice_footer --tenant stark --args '{"invoice": {"number": "F-7"}}'
    """
    product = cli_product()
    catalog = Catalog.for_product(product)
    arguments = parse_args_or_exit(args)
    server = remote(url, token, token_file)
    if server is not None:
        # the tenant's values from the server, the code run here, confined
        outcome = run(
            lambda: run_trial(
                path.resolve(),
                catalog,
                product.version,
                RemoteValues(server),
                hook,
                tenant,
                environment,
                arguments,
                timeout,
            )
        )
        print_outcome(outcome)
        if not outcome.ok:
            raise typer.Exit(1)
        return

    async def go(services: Services) -> TrialOutcome:
        return await run_trial(
            path.resolve(),
            catalog,
            product.version,
            DatabaseValues(services),
            hook,
            tenant,
            environment,
            arguments,
            timeout,
        )

    outcome = run_with_services(database_url, go)
    print_outcome(outcome)
    if not outcome.ok:
        raise typer.Exit(1)


def parse_args_or_exit(text: str | None) -> dict[str, Any]:
    try:
        return parse_args(text)
    except InvalidInputError as exc:
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def print_outcome(o: TrialOutcome) -> None:
    """The outcome, a line per fact; a secret's value never appears."""

    def say(text: str) -> None:
        out.print(text, highlight=False, soft_wrap=True, markup=False)

    def shown(key: str, value: Any) -> str:
        if key in o.secret_keys:
            return "set (secret)" if is_set(value) else "not set (secret)"
        return _json(value)

    where = f"{o.tenant}" + (f" ({o.environment})" if o.environment else " (tenant-wide)")
    say(f"{o.customization} {o.version}: {o.hook} for {where}")
    say(
        "confinement: " + ", ".join(o.confinement)
        if o.confined
        else f"{NO_KERNEL} (only {', '.join(o.confinement) or 'nothing'})"
    )
    if o.ok:
        value = o.value
        if isinstance(value, dict):
            text = "{" + ", ".join(f"{_json(k)}: {shown(k, v)}" for k, v in value.items()) + "}"
        else:
            text = _json(value)
        say(f"result: {text}")
    else:
        say(f"failed: {o.error}")
    if o.changed:
        say("changed:")
        for c in o.changed:
            line = f"  {c.key}: {shown(c.key, c.old)} -> {shown(c.key, c.new)}"
            say(line + (f"  (invalid: {c.invalid})" if c.invalid else ""))
    elif o.ok and o.returned:
        say("changed: nothing (every value returned is the one it had)")
    say(f"read: {', '.join(o.read) or 'nothing'}")
    say(f"returned: {', '.join(o.returned) or 'nothing'}")
    if o.ignored:
        say(f"ignored (not settings of this tenant's release): {', '.join(o.ignored)}")
    for key, has_value in sorted(o.secrets.items()):
        say(f"secret {key}: {'set (secret)' if has_value else 'not set (secret)'}")
    hook_ms = f"{o.ms:.2f} ms in the hook; " if o.ms is not None else ""
    say(f"latency: {hook_ms}{o.wall_ms:.0f} ms with check, worker start-up and import")


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``customization`` sub-app."""
    app.command("run")(run_command)
