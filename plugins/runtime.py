"""The plugin runtime: one pluggy ``PluginManager`` per running Tailor (built by
the app factory or the CLI, never at import time), behind a typed facade that
implements :class:`core.hooks.HookRunner`.

* One plugin per customization, registered under the customization's name.
* Per tenant, ``PluginManager.subset_hook_caller`` leaves out every customization
  not enabled for that tenant, so tenant A's code never runs for tenant B. Callers
  are cached per (tenant, hook) and dropped whenever the registry reports a
  publish or an enablement change (and when the enabled map, re-read at most every
  ``enabled_ttl`` seconds, differs: another process changed it).
* Attribution: instead of one ``caller(**kwargs)`` (where the first exception
  aborts the whole call and hides who raised), the runtime walks the subset
  caller's hook implementations and calls each one itself, so every result and
  every failure is attributed to its customization, and one raising
  customization does not stop the others.
* Fault isolation: an exception, a result of the wrong shape or a call running
  past the time budget (``hook_timeout``) becomes a :class:`HookFailure` for that
  tenant's request; the caller falls back to the non-customized value.
* The services' batch budget: ``core.hooks.GuardedHooks`` gives each batch call
  a time budget of its own and cancels the batch when it runs out. The runtime
  notes whose hook call was running when it was cancelled, and
  :meth:`PluginRuntime.on_hook_failure` (wired by ``plugins.wiring.attach``)
  charges that batch failure to that customization: a failure and its
  ``last_error``, written at once, and the request's error names it. A batch
  failure during which no customization code ran (the runtime's own work, e.g.
  reading the enabled map) is not charged to any customization: it is logged.
* Health: calls and failures are counted in memory and written in ONE statement
  (``RegistryService.record_health``) at the end of a resolution, validation or
  change notification (``tailor_register_settings`` counts ride along with the
  next one), when a failure happened or ``health_flush_seconds`` have passed: at
  most one health statement per batch, whatever the number of customizations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pluggy

from core.auth import Principal
from core.customizations import Registration
from core.definitions import SettingDefinition
from core.errors import InvalidInputError, TailorError
from core.hooks import (
    ALL_CUSTOMIZATIONS,
    CustomizedValue,
    DefinitionsOutcome,
    HookFailure,
    ResolveOutcome,
    ValidationOutcome,
)
from core.models import utcnow
from core.registry import HealthDelta, RegistryService
from plugins.catalog import Catalog
from plugins.loading import (
    PATH_ENV,
    Loaded,
    Source,
    default_directory,
    discover,
    inspect_customization,
    load_all,
)
from plugins.manifest import MANIFEST_FILE, Problem, parse_manifest

log = logging.getLogger("tailor.plugins")

REGISTER = "tailor_register_settings"
RESOLVE = "tailor_resolve_settings"
RESOLVE_ONE = "tailor_resolve_setting"
VALIDATE = "tailor_validate_setting"
CHANGED = "tailor_setting_changed"


@dataclass(frozen=True)
class RuntimeOptions:
    #: directories to load customizations from (None: the repository's samples)
    directories: Sequence[Path] | None = None
    #: TAILOR_CUSTOMIZATIONS_PATH (None: read the environment)
    path_env: str | None = None
    use_entry_points: bool = True
    #: the product release the running code implements (None: the catalog's)
    release: str | None = None
    #: seconds one customization's hook call may take (None: no budget, called inline)
    hook_timeout: float | None = 2.0
    #: seconds between health-counter writes when nothing fails (0: every batch)
    health_flush_seconds: float = 5.0
    #: seconds the enabled map is trusted before it is re-read (other processes)
    enabled_ttl: float = 5.0
    #: GraphQL publishCustomization only accepts paths under the load directories
    restrict_publish_paths: bool = True


class HookTimeout(Exception):
    pass


#: seconds an interrupted call waits for the batch failure that explains it
INTERRUPTED_TTL = 60.0


@dataclass
class _Counter:
    calls: int = 0
    failures: int = 0
    last_error: str | None = None


class PluginRuntime:
    """Loads customizations and calls the hooks of one tenant's enabled ones."""

    def __init__(self, catalog: Catalog, options: RuntimeOptions | None = None) -> None:
        self.catalog = catalog
        self.options = options or RuntimeOptions()
        if self.options.release is None:
            self.options = replace(self.options, release=catalog.release)
        self.pm = pluggy.PluginManager("tailor")
        for spec in catalog.modules:
            self.pm.add_hookspecs(spec.module)
        self._loaded: dict[str, Loaded] = {}
        self._refused: list[Loaded] = []
        self._registry: RegistryService | None = None
        self._enabled: dict[str, frozenset[str]] | None = None
        self._enabled_at = 0.0
        self._callers: dict[tuple[str, str], Any] = {}
        self._counters: dict[str, _Counter] = {}
        self._flushed_at = time.monotonic()
        self._executor: ThreadPoolExecutor | None = None
        #: (tenant, batch hook) -> [(customization, hook, monotonic time)]: calls
        #: cancelled mid-flight, waiting for the batch failure that explains them
        self._interrupted: dict[tuple[str, str], list[tuple[str, str, float]]] = {}

    # -- building ---------------------------------------------------------------
    @classmethod
    def load(
        cls, options: RuntimeOptions | None = None, catalog: Catalog | None = None
    ) -> PluginRuntime:
        """Discover and load every customization; broken ones are refused, never raised."""
        options = options or RuntimeOptions()
        runtime = cls(catalog or Catalog.installed(), options)
        sources = discover(options.directories, options.path_env, options.use_entry_points)
        for loaded in load_all(sources, runtime.catalog, options.release):
            runtime._install(loaded)
        return runtime

    def bind(self, registry: RegistryService) -> None:
        """Read enablement from ``registry`` and follow its changes."""
        self._registry = registry
        registry.subscribe(self.invalidate)

    def _install(self, loaded: Loaded) -> None:
        if loaded.refused or loaded.module is None:
            self._refused.append(loaded)
            for p in loaded.problems:
                log.info("customization refused: %s", p)
            return
        name = loaded.name
        old = self._loaded.get(name)
        if old is not None and self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            try:
                self.pm.register(loaded.module, name=name)
            except (ValueError, pluggy.PluginValidationError) as exc:
                loaded.problems.append(_problem(loaded, "hooks", str(exc)))
                self._refused.append(loaded)
                return
        self._loaded[name] = loaded
        self.invalidate()

    def invalidate(self) -> None:
        """Drop the per-tenant callers and the enabled map (registrations changed)."""
        self._callers.clear()
        self._enabled = None

    # -- what is installed --------------------------------------------------------
    def installed(self) -> list[Loaded]:
        return sorted(self._loaded.values(), key=lambda item: item.name)

    def refused(self) -> list[Loaded]:
        return list(self._refused)

    def check(self, path: Path) -> Loaded:
        return inspect_customization(Source(path, "check"), self.catalog, self.options.release)

    def publish_roots(self) -> list[Path]:
        """The directories this runtime loads customizations from."""
        roots = (
            [default_directory()]
            if self.options.directories is None
            else list(self.options.directories)
        )
        raw = self.options.path_env
        if raw is None:
            raw = os.environ.get(PATH_ENV, "")
        roots.extend(Path(p) for p in raw.split(os.pathsep) if p)
        return [r.resolve() for r in roots]

    async def publish(
        self, principal: Principal, path: Path, *, from_api: bool = False
    ) -> Registration:
        """Check ``path``, store its registration and (re)load its code here.

        The manifest is read and the caller's right to publish for its tenants is
        checked BEFORE any of the customization's code is imported."""
        if self._registry is None:
            raise RuntimeError("bind() the runtime to a registry before publishing")
        path = Path(path)
        if from_api and self.options.restrict_publish_paths:
            resolved = path.resolve()
            if not any(resolved.is_relative_to(root) for root in self.publish_roots()):
                raise InvalidInputError(
                    "path",
                    f"{path} is outside the customization directories this server loads "
                    "from (customizations/ and TAILOR_CUSTOMIZATIONS_PATH)",
                )
        parsed, problems = parse_manifest(path / MANIFEST_FILE)
        if parsed is None:
            raise InvalidInputError("path", "; ".join(str(p) for p in problems))
        principal.can_publish_customization(parsed.manifest.tenants)
        loaded = self.check(path)
        if loaded.refused:
            raise InvalidInputError("path", "; ".join(str(p) for p in loaded.problems))
        registration = await self._registry.publish(principal, loaded.registration())
        self._install(loaded)
        return registration

    # -- calling ------------------------------------------------------------------
    async def _enabled_for(self, tenant: str) -> frozenset[str]:
        now = time.monotonic()
        if self._registry is None:
            return frozenset()
        if self._enabled is None or now - self._enabled_at > self.options.enabled_ttl:
            fresh = await self._registry.enabled_map()
            if fresh != self._enabled:
                self._callers.clear()
            self._enabled, self._enabled_at = fresh, now
        return self._enabled.get(tenant, frozenset())

    async def _impls(self, tenant: str, hook: str) -> list[Any]:
        """The tenant's hook implementations, through a cached subset caller."""
        enabled = await self._enabled_for(tenant)
        if not enabled:
            return []
        caller = self._callers.get((tenant, hook))
        if caller is None:
            others = [
                plugin
                for name, plugin in self.pm.list_name_plugin()
                if name not in enabled and plugin is not None
            ]
            caller = self.pm.subset_hook_caller(hook, others)
            self._callers[(tenant, hook)] = caller
        return sorted(caller.get_hookimpls(), key=lambda impl: impl.plugin_name)

    async def _call(
        self,
        tenant: str,
        batch: str,
        hook: str,
        impl: Any,
        kwargs: Mapping[str, Any],
        run: Callable[..., Any] | None = None,
    ) -> Any:
        """Call one implementation of ``hook``. ``batch`` is the runner method's
        hook (what the services' guard reports when the batch as a whole fails)."""
        try:
            return await self._call_impl(impl, kwargs, run)
        except asyncio.CancelledError:
            self._prune_interrupted()
            entry = (impl.plugin_name, hook, time.monotonic())
            self._interrupted.setdefault((tenant, batch), []).append(entry)
            raise

    async def _call_impl(
        self, impl: Any, kwargs: Mapping[str, Any], run: Callable[..., Any] | None
    ) -> Any:
        function = run or impl.function
        args = {} if run is not None else {name: kwargs[name] for name in impl.argnames}
        timeout = self.options.hook_timeout
        if timeout is None:
            return function(**args)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="tailor-hook")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, lambda: function(**args))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise HookTimeout(
                f"did not return within the {timeout:g}s time budget (the call was abandoned)"
            ) from None

    async def _each(
        self, tenant: str, hook: str, kwargs: Mapping[str, Any]
    ) -> list[tuple[str, Any, HookFailure | None]]:
        """Call every enabled implementation of ``hook`` for ``tenant``:
        (customization, result, failure) each."""
        out: list[tuple[str, Any, HookFailure | None]] = []
        for impl in await self._impls(tenant, hook):
            name = impl.plugin_name
            try:
                result = await self._call(tenant, hook, hook, impl, kwargs)
            except Exception as exc:
                failure = self._fail(tenant, name, hook, exc)
                out.append((name, None, failure))
                continue
            self._count(name)
            out.append((name, result, None))
        return out

    def _count(self, name: str, failure: str | None = None) -> None:
        counter = self._counters.setdefault(name, _Counter())
        counter.calls += 1
        if failure is not None:
            counter.failures += 1
            counter.last_error = failure

    def _fail(self, tenant: str, name: str, hook: str, exc: BaseException | str) -> HookFailure:
        if isinstance(exc, BaseException):
            message = str(exc) if isinstance(exc, HookTimeout) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, HookTimeout | TailorError):
                log.warning(
                    "customization %s failed in %s for %s", name, hook, tenant, exc_info=exc
                )
        else:
            message = exc
        self._count(name, f"{hook} for tenant {tenant!r}: {message}")
        return HookFailure(name, hook, message)

    def _invalid(self, tenant: str, name: str, hook: str, message: str) -> HookFailure:
        # the call was counted as a success already: turn it into a failure
        counter = self._counters.setdefault(name, _Counter())
        counter.calls -= 1
        return self._fail(tenant, name, hook, message)

    async def _maybe_flush(self) -> None:
        failed = any(c.failures for c in self._counters.values())
        due = time.monotonic() - self._flushed_at >= self.options.health_flush_seconds
        if self._counters and (failed or due):
            await self.flush_health()

    async def flush_health(self) -> None:
        """Write the pending health counters (one statement)."""
        if self._registry is None or not self._counters:
            return
        counters, self._counters = self._counters, {}
        self._flushed_at = time.monotonic()
        now = utcnow()
        await self._registry.record_health(
            [
                HealthDelta(
                    name,
                    c.calls,
                    c.failures,
                    c.last_error,
                    now if c.last_error is not None else None,
                )
                for name, c in sorted(counters.items())
            ]
        )

    async def on_hook_failure(self, tenant: str, failure: HookFailure) -> HookFailure | None:
        """The services' hook-failure listener (``core.hooks.FailureListener``).

        Failures naming a customization came from this runtime and are counted
        already. A failure of the whole batch (``"*"``: the services' time budget
        ran out) is charged to the customization whose hook call it interrupted,
        written at once, and returned so the request's error names it."""
        if failure.customization != ALL_CUSTOMIZATIONS:
            return None
        interrupted = self._take_interrupted(tenant, failure.hook)
        if interrupted is None:
            log.warning(
                "hook batch %s for tenant %r failed while no customization code was "
                "running (not charged to any customization): %s",
                failure.hook,
                tenant,
                failure.message,
            )
            return None
        name, hook = interrupted
        message = f"{failure.message}; {name}'s {hook} was running (the call was abandoned)"
        attributed = self._fail(tenant, name, hook, message)
        await self.flush_health()
        return attributed

    def _prune_interrupted(self) -> float:
        horizon = time.monotonic() - INTERRUPTED_TTL
        for key in [k for k, calls in self._interrupted.items() if calls[-1][2] < horizon]:
            del self._interrupted[key]
        return horizon

    def _take_interrupted(self, tenant: str, batch: str) -> tuple[str, str] | None:
        """The oldest call of ``tenant``'s ``batch`` cancelled mid-flight (others
        expire: a cancellation no batch failure explains, e.g. a shutdown)."""
        horizon = self._prune_interrupted()
        calls = self._interrupted.get((tenant, batch))
        while calls:
            name, hook, at = calls.pop(0)
            if not calls:
                del self._interrupted[(tenant, batch)]
            if at >= horizon:
                return name, hook
        return None

    # -- core.hooks.HookRunner --------------------------------------------------------
    async def register_settings(self, tenant: str) -> DefinitionsOutcome:
        definitions: list[tuple[str, SettingDefinition]] = []
        failures: list[HookFailure] = []
        for name, result, failure in await self._each(tenant, REGISTER, {}):
            if failure is not None:
                failures.append(failure)
                continue
            if result is None:
                continue
            if not isinstance(result, list | tuple):
                failures.append(
                    self._invalid(
                        tenant,
                        name,
                        REGISTER,
                        f"returned {type(result).__name__}, expected a list of definitions",
                    )
                )
                continue
            for i, data in enumerate(result):
                try:
                    if not isinstance(data, Mapping):
                        raise InvalidInputError(f"[{i}]", "must be a dict")
                    definition = SettingDefinition.from_dict(data, where=f"[{i}]")
                    definition.check_consistent()
                except TailorError as exc:
                    failures.append(
                        self._invalid(tenant, name, REGISTER, f"invalid definition {exc.message}")
                    )
                    break
                definitions.append((name, definition))
        return DefinitionsOutcome(tuple(definitions), tuple(failures))

    async def resolve_settings(
        self, tenant: str, environment: str | None, values: Mapping[str, Any]
    ) -> ResolveOutcome:
        customized: dict[str, CustomizedValue] = {}
        failures: list[HookFailure] = []
        # the deprecated per-setting hook first: the batch hook wins
        for impl in await self._impls(tenant, RESOLVE_ONE):
            name = impl.plugin_name

            def each_key(impl: Any = impl) -> dict[str, Any]:
                found = {}
                for key, value in values.items():
                    kw = {"tenant": tenant, "environment": environment, "key": key, "value": value}
                    result = impl.function(**{a: kw[a] for a in impl.argnames})
                    if result is not None and result != value:
                        found[key] = result
                return found

            try:
                found = await self._call(tenant, RESOLVE, RESOLVE_ONE, impl, {}, run=each_key)
            except Exception as exc:
                failures.append(self._fail(tenant, name, RESOLVE_ONE, exc))
                continue
            self._count(name)
            for key, value in found.items():
                customized[key] = CustomizedValue(key, value, name)
        kwargs = {"tenant": tenant, "environment": environment, "values": _ReadOnly(values)}
        for name, result, failure in await self._each(tenant, RESOLVE, kwargs):
            if failure is not None:
                failures.append(failure)
                continue
            if result is None:
                continue
            if not isinstance(result, Mapping):
                failures.append(
                    self._invalid(
                        tenant,
                        name,
                        RESOLVE,
                        f"returned {type(result).__name__}, "
                        "expected a dict of setting key -> value",
                    )
                )
                continue
            for key, value in result.items():
                if key in values:
                    customized[key] = CustomizedValue(key, value, name)
        await self._maybe_flush()
        return ResolveOutcome(tuple(customized.values()), tuple(failures))

    async def validate_setting(
        self, tenant: str, environment: str | None, key: str, value: Any
    ) -> ValidationOutcome:
        errors: list[tuple[str, str]] = []
        failures: list[HookFailure] = []
        kwargs = {"tenant": tenant, "environment": environment, "key": key, "value": value}
        for name, result, failure in await self._each(tenant, VALIDATE, kwargs):
            if failure is not None:
                failures.append(failure)
            elif isinstance(result, str):
                errors.append((name, result))
            elif isinstance(result, list | tuple):
                errors.extend((name, str(m)) for m in result if m)
            elif result is not None:
                failures.append(
                    self._invalid(
                        tenant,
                        name,
                        VALIDATE,
                        f"returned {type(result).__name__}, "
                        "expected None, a message or a list of messages",
                    )
                )
        await self._maybe_flush()
        return ValidationOutcome(tuple(errors), tuple(failures))

    async def setting_changed(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        old: Any,
        new: Any,
        actor: str,
    ) -> Sequence[HookFailure]:
        kwargs = {
            "tenant": tenant,
            "environment": environment,
            "key": key,
            "old": old,
            "new": new,
            "actor": actor,
        }
        failures = [f for _n, _r, f in await self._each(tenant, CHANGED, kwargs) if f is not None]
        await self._maybe_flush()
        return failures

    # -- the host product's extension points ------------------------------------
    async def call_extension(
        self, tenant: str, hook: str, kwargs: Mapping[str, Any]
    ) -> tuple[list[tuple[str, Any]], list[HookFailure]]:
        """Call a host-product extension point (e.g. ``acme_invoice_footer``) for
        ``tenant``'s enabled customizations, with the same isolation: returns
        (customization, result) pairs and the failures."""
        point = self.catalog.get(hook)
        if point is None:
            raise InvalidInputError("hook", f"unknown extension point {hook!r}")
        missing = set(point.params) - set(kwargs)
        unknown = set(kwargs) - set(point.params)
        if missing or unknown:
            raise InvalidInputError(
                "hook", f"{hook} takes ({', '.join(point.params)}); got ({', '.join(kwargs)})"
            )
        results, failures = [], []
        for name, result, failure in await self._each(tenant, hook, kwargs):
            if failure is not None:
                failures.append(failure)
            else:
                results.append((name, result))
        await self._maybe_flush()
        return results, failures

    async def close(self) -> None:
        await self.flush_health()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class _ReadOnly(Mapping[str, Any]):
    """The batch's values, read-only for customizations."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _problem(loaded: Loaded, field: str, message: str) -> Problem:
    return Problem(str(loaded.source.path / MANIFEST_FILE), field, message)
