"""One customization's hook, called once on a tenant's real values, the way the
server calls it (``tailor customization run``).

The package is checked in a worker (:class:`plugins.runtime.install.Inspector`),
then loaded and called in a fresh worker process with the server's confinement,
limits and messages (``setup`` and ``call``, :mod:`plugins.runtime.worker`), by
value: what the code does to its inputs stays in the worker. What the trial
reports is what the runtime observes of a call (result, keys read and returned,
latency) plus what it would change in the tenant's answer.

Where the values come from is a :class:`ValuesSource`: the database (through
the settings service, ``api/cli/trial.py``) or, later, a server. Secret
settings: one the manifest declares in ``secrets`` is handed to the code as
:data:`SECRET_PLACEHOLDER` (never its value); any other secret is absent, as
the design has it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.model.definitions import SettingDefinition
from core.model.errors import InvalidInputError, SettingValidationError, TailorError
from core.model.extension_points import ExtensionPoint
from plugins.catalog import Catalog
from plugins.loading import Loaded, Source
from plugins.runtime import protocol, sandbox
from plugins.runtime.install import Inspector, spec_descriptions, spec_roots
from plugins.runtime.process import DeadlinePassed, WorkerDied, WorkerProcess, private_workdir

#: what a declared secret setting that has a value reads as in a trial
SECRET_PLACEHOLDER = "<secret: its value is not handed to a trial run>"
#: the hooks whose ``values`` are the tenant's layered settings
RESOLVE_HOOKS = ("tailor_resolve_settings", "tailor_resolve_setting")
REGISTER = "tailor_register_settings"
#: why a call failed (``call``'s ``failure``): the code raised, the call ran past
#: its deadline (the worker was killed), or the worker died
RAISED, TIMED_OUT, KILLED = "raised", "timed_out", "killed"
#: what the kernel applies; the audit hook alone is no confinement
_NOT_KERNEL = sandbox.IN_PYTHON


@dataclass(frozen=True)
class TenantValues:
    """A tenant's settings as customizations receive them: default < tenant <
    environment, before any customization."""

    tenant: str
    environment: str | None
    release: str
    definitions: Mapping[str, SettingDefinition]
    values: Mapping[str, Any]

    @property
    def secret(self) -> frozenset[str]:
        return frozenset(k for k, d in self.definitions.items() if d.secret)


class ValuesSource(Protocol):
    """Where a trial reads a tenant's layered values (the database, a server)."""

    async def tenant_values(
        self, tenant: str, environment: str | None, extra: Sequence[SettingDefinition]
    ) -> TenantValues:
        """``extra``: the definitions the customization registers for itself."""
        ...


@dataclass(frozen=True)
class Change:
    """A value the call changes in the tenant's answer."""

    key: str
    old: Any
    new: Any
    secret: bool = False
    #: why the server would not serve ``new`` (invalid for the definition)
    invalid: str | None = None


@dataclass(frozen=True)
class TrialOutcome:
    customization: str
    version: str
    hook: str
    tenant: str
    environment: str | None
    ok: bool
    value: Any = None
    error: str | None = None
    #: the hook's own time in the worker (what observations record), ms
    ms: float | None = None
    #: worker start-up, import and call, ms
    wall_ms: float = 0.0
    read: tuple[str, ...] = ()
    returned: tuple[str, ...] = ()
    #: keys returned that are not settings of the batch (the server ignores them)
    ignored: tuple[str, ...] = ()
    changed: tuple[Change, ...] = ()
    confinement: tuple[str, ...] = ()
    #: the declared secret settings handed to the code: key -> has a value
    secrets: Mapping[str, bool] = field(default_factory=dict)
    secret_keys: frozenset[str] = frozenset()

    @property
    def confined(self) -> bool:
        """Whether the kernel confines the worker (a mount namespace, Landlock,
        seccomp), not only Python."""
        return any(c not in _NOT_KERNEL for c in self.confinement)


def is_set(value: Any) -> bool:
    """Whether a secret setting has a value (an empty default is none)."""
    return value not in (None, "")


def handed_values(values: TenantValues, declared: Collection[str]) -> dict[str, Any]:
    """The ``values`` the code receives: every setting, a declared secret as the
    placeholder (as it is when it has no value), an undeclared secret absent."""
    secret = values.secret
    out: dict[str, Any] = {}
    for key, value in values.values.items():
        if key in secret:
            if key in declared:
                out[key] = SECRET_PLACEHOLDER if is_set(value) else value
            continue
        out[key] = value
    return out


def hook_kwargs(
    point: ExtensionPoint,
    tenant: str,
    environment: str | None,
    args: Mapping[str, Any],
    values: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The hook's arguments by name: ``tenant`` and ``environment`` from the
    trial, ``values`` from the tenant, the rest from ``args`` (``--args``)."""
    given = dict(args)
    unknown = sorted(set(given) - set(point.params))
    if unknown:
        raise InvalidInputError(
            "args",
            f"{point.name} takes ({', '.join(point.params)}); --args gave "
            f"{', '.join(repr(u) for u in unknown)}, which it does not take",
        )
    if "values" in given and values is not None:
        raise InvalidInputError(
            "args",
            "values are the tenant's real layered values; change an override or choose "
            "--environment to try other ones",
        )
    kwargs: dict[str, Any] = {}
    missing = []
    for param in point.params:
        if param in given:
            kwargs[param] = given[param]
        elif param == "tenant":
            kwargs[param] = tenant
        elif param == "environment":
            kwargs[param] = environment
        elif param == "values" and values is not None:
            kwargs[param] = dict(values)
        else:
            missing.append(param)
    if missing:
        example = ", ".join(f'"{m}": ...' for m in missing)
        raise InvalidInputError(
            "args",
            f"{point.name} takes ({', '.join(point.params)}); give "
            f"{', '.join(missing)} with --args '{{{example}}}'",
        )
    return kwargs


class Trial:
    """One package in one confined worker, for a few calls (blocking)."""

    def __init__(
        self,
        path: Path,
        catalog: Catalog,
        release: str,
        timeout: float = 2.0,
        import_timeout: float = 5.0,
        memory_mb: int = 1024,
    ) -> None:
        self.path = Path(path).resolve()
        self.catalog = catalog
        self.release = release
        self.timeout = timeout
        self.import_timeout = import_timeout
        self.memory_mb = memory_mb
        self.workdir = private_workdir()
        self.worker: WorkerProcess | None = None
        self.loaded: Loaded | None = None
        self._confinement: tuple[str, ...] = ()
        self.started = time.perf_counter()

    # -- loading ----------------------------------------------------------------
    def open(self) -> Loaded:
        """Check the package (as publish does) and load it in a worker of its own;
        a refused package or one that fails to load raises, saying why."""
        if not self.path.is_dir():
            raise InvalidInputError("path", f"{self.path} is not a directory")
        inspector = Inspector(self.catalog, self.release, self.import_timeout, self.memory_mb)
        try:
            loaded = inspector.inspect(Source(self.path, "run"))
        finally:
            inspector.close()
        if loaded.refused or loaded.manifest is None:
            problems = "\n  ".join(str(p) for p in loaded.problems) or "no manifest"
            raise InvalidInputError(
                "path",
                f"{self.path} does not pass check (run tailor customization check):\n  {problems}",
            )
        return self.start(loaded)

    def start(self, loaded: Loaded) -> Loaded:
        """Load an already checked package (``loaded``: a published version,
        materialized from the database) in a worker of its own."""
        specs = spec_descriptions(self.catalog)
        try:
            worker = WorkerProcess.spawn(
                self.memory_mb, self.workdir, [*spec_roots(specs), str(self.path)]
            )
        except WorkerDied as exc:
            raise TailorError(str(exc)) from None
        self.worker = worker
        self._confinement = tuple(worker.confinement)
        deadline = time.monotonic() + self.import_timeout
        setup = {
            "op": "setup",
            "tenant": "",
            "specs": specs,
            "customizations": [
                {"name": loaded.name, "path": str(self.path), "module": loaded.hooks_module}
            ],
        }
        try:
            worker.send(deadline, setup)
            answer = worker.receive(deadline)
        except (DeadlinePassed, WorkerDied) as exc:
            raise TailorError(f"{loaded.name} could not be loaded: {exc}") from None
        failed = (answer.get("failed") or {}).get(loaded.name)
        if answer.get("event") != "done" or failed:
            raise TailorError(f"{loaded.name} {failed or answer.get('message', answer)}")
        self.loaded = loaded
        return loaded

    def implements(self, hook: str) -> bool:
        return self.loaded is not None and any(h.hook == hook for h in self.loaded.hooks)

    # -- calling ------------------------------------------------------------------
    def call(self, hook: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """One call as the runner makes it: the package's ``result`` event (ok,
        value or error, ms, read), or a failure the runtime would charge to it."""
        assert self.loaded is not None, "open() first"
        if self.worker is None:  # killed by an earlier call: a fresh one, as the pool would
            self.start(self.loaded)
            assert self.worker is not None
        point = self.catalog.get(hook)
        message = {
            "op": "call",
            "hook": hook,
            "firstresult": bool(point and point.firstresult),
            "skip": [],
            "budget": self.timeout,
        }
        deadline = time.monotonic() + self.timeout
        result: dict[str, Any] | None = None
        try:
            self.worker.send(deadline, message, raw=protocol.dumps(dict(kwargs)))
            for event in self.worker.events(deadline):
                if event.get("event") == "result":
                    result = event
                elif event.get("event") == "error":
                    return {"ok": False, "error": f"worker error: {event.get('message')}"}
        except DeadlinePassed:
            self._kill()
            return {
                "ok": False,
                "failure": TIMED_OUT,
                "error": f"did not answer within {self.timeout:g}s; its worker was killed "
                "(the server would serve the non-customized values)",
            }
        except WorkerDied as exc:
            self._kill()
            return {"ok": False, "failure": KILLED, "error": str(exc)}
        if result is None:
            return {"ok": False, "failure": KILLED, "error": f"{self.loaded.name} was not called"}
        if not result.get("ok"):
            return {**result, "failure": RAISED}
        return result

    @property
    def alive(self) -> bool:
        """Whether the worker can take another call (a deadline or a death ends it)."""
        return self.worker is not None

    def _kill(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None

    @property
    def confinement(self) -> tuple[str, ...]:
        return self._confinement

    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()
            self.worker = None
        shutil.rmtree(self.workdir, ignore_errors=True)


def registered_definitions(trial: Trial) -> list[SettingDefinition]:
    """The definitions the package registers for itself (its own
    ``tailor_register_settings``, called first, as the server does); a failing or
    invalid registration raises, saying why."""
    if not trial.implements(REGISTER):
        return []
    event = trial.call(REGISTER, {})
    name = trial.loaded.name if trial.loaded else "it"
    if not event.get("ok"):
        raise TailorError(f"{name}: {REGISTER} failed: {event.get('error')}")
    value = event.get("value")
    if value is None:
        return []
    if not isinstance(value, list):
        raise TailorError(f"{name}: {REGISTER} returned {type(value).__name__}, expected a list")
    definitions = []
    for i, data in enumerate(value):
        if not isinstance(data, dict):
            raise TailorError(f"{name}: {REGISTER} [{i}] must be a dict")
        definition = SettingDefinition.from_dict(data, where=f"{REGISTER}[{i}]")
        definition.check_consistent()
        definitions.append(definition)
    return definitions


def outcome(
    trial: Trial,
    hook: str,
    event: Mapping[str, Any],
    values: TenantValues | None,
    handed: Mapping[str, Any] | None,
    tenant: str,
    environment: str | None,
) -> TrialOutcome:
    """What one call did, as the runner would count it: for the resolve hooks,
    the keys returned among the batch's settings and the values they change."""
    loaded = trial.loaded
    assert loaded is not None and loaded.manifest is not None
    ok = bool(event.get("ok"))
    value = event.get("value")
    returned: list[str] = []
    ignored: list[str] = []
    changed: list[Change] = []
    secret = values.secret if values is not None else frozenset()
    if ok and hook in RESOLVE_HOOKS and handed is not None and values is not None:
        if value is not None and not isinstance(value, dict):
            ok, value = False, None
            event = {
                **event,
                "error": f"returned {type(event.get('value')).__name__}, "
                "expected a dict of setting key -> value",
            }
        for key, new in (value or {}).items():
            if key not in handed:
                ignored.append(key)
                continue
            returned.append(key)
            old = handed[key]
            if new == old:
                continue
            invalid = None
            try:
                values.definitions[key].validate(new)
            except SettingValidationError as exc:
                invalid = f"{exc.message}; the server serves the non-customized value"
            changed.append(Change(key, old, new, key in secret, invalid))
    elif ok and hook == REGISTER and isinstance(value, list):
        returned = [
            d["key"] for d in value if isinstance(d, dict) and isinstance(d.get("key"), str)
        ]
    declared = loaded.manifest.secrets
    return TrialOutcome(
        customization=loaded.name,
        version=loaded.manifest.version,
        hook=hook,
        tenant=tenant,
        environment=environment,
        ok=ok,
        value=value if ok else None,
        error=None if ok else str(event.get("error") or "failed"),
        ms=event.get("ms"),
        wall_ms=(time.perf_counter() - trial.started) * 1000,
        read=tuple(event.get("read") or ()),
        returned=tuple(returned),
        ignored=tuple(ignored),
        changed=tuple(changed),
        confinement=trial.confinement,
        secrets={
            k: is_set(handed.get(k))
            for k in declared
            if handed is not None and values is not None and k in secret
        },
        secret_keys=secret,
    )


async def run_trial(
    path: Path,
    catalog: Catalog,
    release: str,
    source: ValuesSource,
    hook: str,
    tenant: str,
    environment: str | None = None,
    args: Mapping[str, Any] | None = None,
    budget: float = 2.0,
) -> TrialOutcome:
    """Check ``path``, load it in a confined worker, call ``hook`` once for
    ``tenant`` on the values ``source`` gives, and say what it did. Errors of
    the caller's making (unknown hook, tenant, arguments; a package that does
    not pass check) raise :class:`TailorError`; a failing hook is an outcome.
    ``budget``: seconds the call may take (the server's hook timeout)."""
    import asyncio

    point = catalog.get(hook)
    if point is None:
        known = ", ".join(sorted(p.name for p in catalog.all()))
        raise InvalidInputError("hook", f"unknown hook {hook!r}; known hooks: {known}")
    trial = Trial(path, catalog, release, budget)
    try:
        loaded = await asyncio.to_thread(trial.open)
        assert loaded.manifest is not None
        if not trial.implements(hook):
            implemented = ", ".join(h.hook for h in loaded.hooks) or "none"
            raise InvalidInputError(
                "hook", f"{loaded.name} does not implement {hook} (it implements: {implemented})"
            )
        if tenant not in loaded.manifest.tenants:
            raise InvalidInputError(
                "tenant",
                f"{loaded.name} is made for {', '.join(loaded.manifest.tenants)}, not "
                f"{tenant!r}: the server never runs it for another tenant "
                "(add the tenant to customization.toml to try it there)",
            )
        resolves = hook in RESOLVE_HOOKS
        extra = await asyncio.to_thread(registered_definitions, trial) if resolves else []
        # read for every hook: the tenant and the environment must exist
        values = await source.tenant_values(tenant, environment, extra)
        handed = handed_values(values, loaded.manifest.secrets) if resolves else None
        kwargs = hook_kwargs(point, tenant, environment, args or {}, handed)
        event = await asyncio.to_thread(trial.call, hook, kwargs)
        return outcome(trial, hook, event, values, handed, tenant, environment)
    finally:
        trial.close()
