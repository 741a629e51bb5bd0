"""The plugin runtime: implements :class:`core.model.hooks.HookRunner` by calling each
tenant's enabled customizations in worker processes.

One call of a runner method is one batch: the tenant's customizations
implementing the hook are called in pluggy's order (``tryfirst``/``trylast``,
then registration order: customizations are registered in reverse name order,
so among equals pluggy calls them in name order) inside one worker process; each
implementation's result or failure is attributed to its customization.
``firstresult`` hookspecs stop at the first non-None result; for the settings
hooks, when two customizations return a value for the same key, the one pluggy
calls first wins. Deadlines and the circuit breaker: :mod:`plugins.runtime.guard`;
processes: :mod:`plugins.runtime.pool`; what is recorded:
:mod:`plugins.runtime.observe`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.model.auth import Principal
from core.model.customizations import Pin, Registration
from core.model.definitions import SettingDefinition
from core.model.errors import ArchiveError, InvalidInputError, TailorError
from core.model.hooks import (
    REGISTER_SETTINGS,
    RESOLVE_SETTING,
    RESOLVE_SETTINGS,
    SETTING_CHANGED,
    VALIDATE_SETTING,
    CustomizationRegistry,
    CustomizedValue,
    DefinitionsOutcome,
    HookFailure,
    ObservationSink,
    ResolveOutcome,
    ValidationOutcome,
)
from core.model.samples import PolicySource, SampleSink
from plugins import archive, manifest
from plugins.catalog import Catalog
from plugins.loading import Loaded, Source, discover
from plugins.manifest import MANIFEST_FILE, ParsedManifest, Problem
from plugins.runtime import guard, protocol
from plugins.runtime.install import Inspector, check_path, spec_descriptions, spec_roots
from plugins.runtime.observe import Observer
from plugins.runtime.pool import NoWorker, WorkerPool
from plugins.runtime.process import DeadlinePassed, ProtocolBroken, WorkerDied, WorkerProcess
from plugins.runtime.record import Recorder

log = logging.getLogger("tailor.plugins")


def default_worker_count() -> int:
    return max(2, 2 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class RuntimeOptions:
    #: directories :meth:`PluginRuntime.load` reads customization packages from, to
    #: publish them (None: the repository's samples); the runtime runs only what
    #: the database pins
    directories: Sequence[Path] | None = None
    #: TAILOR_CUSTOMIZATIONS_PATH (None: read the environment)
    path_env: str | None = None
    use_entry_points: bool = True
    #: the product release the running code implements (None: the catalog's)
    release: str | None = None
    #: seconds a request's hook calls may take in all, waiting for a worker included
    hook_timeout: float = 2.0
    #: seconds between health/observation writes when nothing fails (0: every batch)
    health_flush_seconds: float = 5.0
    #: seconds the enabled map is trusted before it is re-read (other processes)
    enabled_ttl: float = 5.0
    #: where published versions are materialized (None: ``TAILOR_CACHE_DIR`` or
    #: ``.tailor-cache/customizations`` in the working directory)
    cache_dir: Path | None = None
    #: worker processes in all (None: twice the cores, at least 2)
    workers: int | None = None
    #: worker processes one tenant may hold at once
    workers_per_tenant: int = 2
    #: blank workers started ahead
    spare_workers: int = 2
    #: address-space limit of a worker process, MiB
    worker_memory_mb: int = 1024
    #: seconds importing one customization may take when it is checked
    import_timeout: float = 5.0
    #: consecutive failures (per customization and tenant) that open the breaker
    breaker_threshold: int = 5
    #: seconds an open breaker skips the customization
    breaker_cooldown: float = 30.0
    #: seconds after which recorded inputs are sampled afresh (the store keeps
    #: the newest K per customization, hook and tenant: plugins.runtime.record)
    sample_rotate_seconds: float = 3600.0


@dataclass
class _Impl:
    """One implementation's outcome in a batch."""

    name: str
    ok: bool
    value: Any = None
    error: str | None = None
    ms: float | None = None
    read: tuple[str, ...] = ()
    #: it went over all of ``values`` (a scan: no dependency on any one key)
    scanned: bool = False


@dataclass(frozen=True)
class Inspection:
    """The customization packages found on disk and checked
    (:meth:`PluginRuntime.inspect`): sources to publish, never run from there."""

    loaded: tuple[Loaded, ...]
    #: what confined the checking worker (None: nothing was checked)
    confinement: tuple[str, ...] | None


class PluginRuntime:
    """Calls one tenant's enabled customizations: the versions the database pins,
    materialized from the database into a local content-addressed cache and run
    in worker processes. Packages found on disk are only sources to publish."""

    def __init__(self, catalog: Catalog, options: RuntimeOptions | None = None) -> None:
        self.catalog = catalog
        self.options = options or RuntimeOptions()
        if self.options.release is None:
            self.options = replace(self.options, release=catalog.release)
        self._specs = spec_descriptions(catalog)
        #: packages found on disk and checked: what publish and demo seed read
        self._sources: dict[str, Loaded] = {}
        self._refused: list[Loaded] = []
        self._registry: CustomizationRegistry | None = None
        self._pins: dict[str, tuple[Pin, ...]] | None = None
        self._pins_at = 0.0
        self._definitions: dict[tuple[str, tuple[Any, ...]], DefinitionsOutcome] = {}
        self.cache_root = (
            self.options.cache_dir
            if self.options.cache_dir is not None
            else archive.cache_root_default()
        )
        #: versions materialized in this server's cache, by tree hash
        self._cached: dict[str, Loaded] = {}
        #: pinned versions this server cannot run, and why (until the pins change)
        self._unavailable: dict[tuple[str, str], Loaded] = {}
        self._materializing: dict[str, asyncio.Lock] = {}
        self.observer = Observer(self.options.health_flush_seconds)
        #: the hook inputs of the tenants that record them (issue 24)
        self.recorder = Recorder(self.options.sample_rotate_seconds)
        self.breaker = guard.CircuitBreaker(
            self.options.breaker_threshold, self.options.breaker_cooldown
        )
        self.pool = WorkerPool(
            self.options.workers or default_worker_count(),
            self.options.workers_per_tenant,
            self.options.spare_workers,
            self.options.worker_memory_mb,
        )
        #: what every worker may read besides Python and its tenant's customizations
        self._spec_roots = spec_roots(self._specs)

    @property
    def confinement(self) -> list[str]:
        """What confines the worker processes (known once one has started)."""
        return list(self.pool.confinement)

    def probe_confinement(self) -> list[str]:
        """Start one blank worker to learn what confines workers here (blocking;
        ``tailor serve`` says it at start-up), and stop it."""
        worker = WorkerProcess.spawn(self.pool.memory_mb, self.pool.workdir, ())
        try:
            self.pool.confinement = list(worker.confinement)
        finally:
            worker.kill()
        return self.confinement

    # -- building ---------------------------------------------------------------
    @classmethod
    def load(
        cls, options: RuntimeOptions | None = None, catalog: Catalog | None = None
    ) -> PluginRuntime:
        """Discover and check every customization, each in a worker process;
        broken ones are refused, never raised."""
        options = options or RuntimeOptions()
        catalog = catalog or Catalog.installed()
        return cls.from_inspection(cls.inspect(options, catalog), options, catalog)

    @staticmethod
    def inspect(options: RuntimeOptions, catalog: Catalog) -> Inspection:
        """What :meth:`load` finds on disk: every customization discovered, checked
        in a worker process (plain values: one inspection may build several runtimes
        while the packages on disk stay as they are)."""
        sources = discover(options.directories, options.path_env, options.use_entry_points)
        if not sources:
            return Inspection((), None)
        release = catalog.release if options.release is None else options.release
        inspector = Inspector(
            catalog, release or "", options.import_timeout, options.worker_memory_mb
        )
        try:
            loaded = tuple(inspector.inspect_all(sources))
            return Inspection(loaded, tuple(inspector.confinement))
        finally:
            inspector.close()

    @classmethod
    def from_inspection(
        cls, inspection: Inspection, options: RuntimeOptions, catalog: Catalog
    ) -> PluginRuntime:
        """A new runtime (no worker started yet) installing what ``inspection``
        found; each gets its own copy of the inspection's records."""
        runtime = cls(catalog, options)
        for found in inspection.loaded:
            loaded = replace(found, problems=list(found.problems), warnings=list(found.warnings))
            runtime._add_source(loaded)
        if inspection.confinement is not None:
            runtime.pool.confinement = list(inspection.confinement)
        return runtime

    def bind(
        self, registry: CustomizationRegistry, observations: ObservationSink | None = None
    ) -> None:
        """Read enablement from ``registry``, follow its changes, record health there
        and observations in ``observations``."""
        self._registry = registry
        self.observer.registry = registry
        self.observer.store = observations
        registry.subscribe(self.invalidate)

    def record_to(self, policies: PolicySource, sink: SampleSink) -> None:
        """Record the hook inputs of the tenants ``policies`` names into ``sink``
        (their changes in this process heard at once; :meth:`flush_samples`
        re-reads them for the other processes')."""
        self.recorder.bind(policies, sink)

    def _add_source(self, loaded: Loaded) -> None:
        if loaded.refused or loaded.manifest is None:
            self._refused.append(loaded)
            for p in loaded.problems:
                log.info("customization refused: %s", p)
            return
        self._sources[loaded.name] = loaded

    def invalidate(self) -> None:
        """Registrations changed: drop the pins, cached definitions, and the idle
        workers (they hold code that may be stale)."""
        self._pins = None
        self._definitions.clear()
        self._unavailable.clear()
        self.pool.evict_tenant()

    def refresh_enabled(self) -> None:
        """Re-read the pins at the next call (a tenant's data version moved: an
        enablement may have committed on another worker before its NOTIFY came)."""
        self._pins_at = -math.inf

    async def cacheable(self, tenant: str) -> bool:
        """Whether ``tenant``'s settings answers may be cached: every enabled
        customization declares (by default) that its results are pure."""
        return all(c.manifest is None or c.manifest.pure for c in await self._enabled_for(tenant))

    # -- what is here -------------------------------------------------------------
    def installed(self) -> list[Loaded]:
        """The published versions materialized in this server's cache (one per
        customization: the last one materialized)."""
        by_name = {c.name: c for c in self._cached.values()}
        return sorted(by_name.values(), key=lambda item: item.name)

    def sources(self) -> list[Loaded]:
        """The packages found on disk and checked: what publish and demo seed read."""
        return sorted(self._sources.values(), key=lambda item: item.name)

    def refused(self) -> list[Loaded]:
        """Packages found on disk that were refused, with every reason."""
        return list(self._refused)

    def check(self, path: Path, parsed: ParsedManifest | None = None) -> Loaded:
        """Check one directory in a throwaway worker (imports nothing here);
        ``parsed``: its manifest, already parsed here (a publish)."""
        return check_path(
            path, self.catalog, self.options.release or "", self.options.import_timeout, parsed
        )

    async def publish(self, principal: Principal, path: Path) -> Registration:
        """Publish the package folder at ``path`` (the operator's CLI, demo seed): as
        :meth:`publish_archive` with the folder's canonical zip, stored as built."""
        tree = await asyncio.to_thread(archive.tree_from_directory, Path(path))
        return await self._publish(principal, archive.build_zip(tree), canonical=True)

    async def publish_archive(self, principal: Principal, data: bytes) -> Registration:
        """Publish an uploaded package (a zip): validated, its manifest parsed here
        (its name, version and tenants are the manifest's, whatever its code says),
        the caller's right to publish for its tenants checked BEFORE any of its code
        runs, then checked in a fresh confined worker and stored in the database
        under the sha256 of its canonical tree. Every problem is reported at once
        and nothing is stored."""
        return await self._publish(principal, data, canonical=False)

    async def _publish(self, principal: Principal, data: bytes, *, canonical: bool) -> Registration:
        """:meth:`publish_archive`, which parses the manifest once (the check takes
        this reading) and builds the canonical zip at most once (``canonical``:
        ``data`` already is it, built here from a folder)."""
        if self._registry is None:
            raise RuntimeError("bind() the runtime to a registry before publishing")
        tree = await asyncio.to_thread(archive.read_zip, data, archive.max_upload_bytes())
        text = tree.get(MANIFEST_FILE)
        parsed, problems = manifest.parse_manifest_text(
            (text or b"").decode("utf-8", errors="replace"), MANIFEST_FILE
        )
        if parsed is None:
            raise InvalidInputError("archive", "; ".join(str(p) for p in problems))
        principal.require_publish_customization(parsed.manifest.tenants)
        path = await asyncio.to_thread(archive.materialize, tree, self.cache_root)
        # the server's reading of the manifest, never the worker's
        loaded = await asyncio.to_thread(self.check, path, parsed)
        if loaded.refused:
            raise InvalidInputError(
                "archive", "; ".join(_relative(str(p), path) for p in loaded.problems)
            )
        zipped = data if canonical else archive.build_zip(tree)
        registration = replace(loaded.registration(tree, zipped), package="")
        return await self._registry.publish(principal, registration)

    # -- calling ------------------------------------------------------------------
    async def _enabled_for(self, tenant: str) -> list[Loaded]:
        """The versions the tenant's enabled customizations are pinned to, in
        registration order (pluggy calls the last registered first: reverse name
        order); one this server cannot run comes back refused, with the reason."""
        if self._registry is None:
            return []
        now = time.monotonic()
        pins = self._pins
        if pins is None or now - self._pins_at > self.options.enabled_ttl:
            pins = await self._registry.pinned_map()
            if self._pins is not None and pins != self._pins:
                self._definitions.clear()
                self._unavailable.clear()
            self._pins, self._pins_at = pins, now
        mine = sorted(pins.get(tenant, ()), key=lambda p: p.name, reverse=True)
        missing = [
            p.sha256
            for p in mine
            if p.sha256 is not None
            and p.sha256 not in self._cached
            and (p.name, p.version) not in self._unavailable
        ]
        # the packages this server has not materialized yet: one statement
        fetched = await self._registry.artifacts(missing) if missing else {}
        return [await self._materialize(pin, fetched) for pin in mine]

    async def materialize_pinned(self) -> int:
        """Materialize every version the database pins, for every tenant, ahead of
        the first call (a node's warm-up): how many versions are in the cache."""
        if self._registry is None:
            return 0
        pins = await self._registry.pinned_map()
        unique = {p.sha256: p for tenant in pins.values() for p in tenant if p.sha256}
        missing = [sha for sha in unique if sha not in self._cached]
        # a few at a time: the packages are read into memory to be unpacked
        for start in range(0, len(missing), 50):
            chunk = missing[start : start + 50]
            fetched = await self._registry.artifacts(chunk)
            for sha in chunk:
                await self._materialize(unique[sha], fetched)
        return sum(1 for sha in unique if sha in self._cached)

    async def materialized(self, pins: Sequence[Pin]) -> list[Loaded]:
        """``pins``' versions as package directories in this server's cache (a
        rehearsal's versions: pinned or candidates), each refused with the reason
        when it cannot run here; the missing packages are read in one statement."""
        missing = list(
            {p.sha256 for p in pins if p.sha256 is not None and p.sha256 not in self._cached}
        )
        fetched = await self._registry.artifacts(missing) if missing and self._registry else {}
        return [await self._materialize(pin, fetched) for pin in pins]

    async def _materialize(self, pin: Pin, fetched: Mapping[str, bytes]) -> Loaded:
        """``pin``'s version as a package directory in this server's cache, from its
        stored package (``fetched``), its hash verified the first time."""
        if pin.sha256 is not None:
            found = self._cached.get(pin.sha256)
            if found is not None:
                return found
        key = (pin.name, pin.version)
        if key in self._unavailable:
            return self._unavailable[key]
        if pin.sha256 is None:
            return self._cannot_run(
                pin,
                "it was registered without its code (before versions were stored): "
                "publish it again",
            )
        lock = self._materializing.setdefault(pin.sha256, asyncio.Lock())
        async with lock:
            found = self._cached.get(pin.sha256)
            if found is not None:
                return found
            data = fetched.get(pin.sha256)
            if data is None:
                return self._cannot_run(pin, "its package is missing from the database")
            try:
                tree = await asyncio.to_thread(archive.read_zip, data, len(data))
                if tree.sha256 != pin.sha256:
                    return self._cannot_run(
                        pin, "its stored package does not match its sha256: it is not run"
                    )
                path = await asyncio.to_thread(archive.materialize, tree, self.cache_root)
            except (ArchiveError, OSError) as exc:
                return self._cannot_run(pin, f"its package cannot be materialized here: {exc}")
            loaded = Loaded(
                Source(path, f"database {pin.name} {pin.version}"),
                manifest=pin.manifest,
                hooks=pin.hooks,
                hooks_module=pin.hooks_module,
            )
            self._cached[pin.sha256] = loaded
            return loaded

    def _cannot_run(self, pin: Pin, why: str) -> Loaded:
        log.error("customization %s %s cannot run here: %s", pin.name, pin.version, why)
        loaded = Loaded(
            Source(Path(pin.name), "database"),
            manifest=pin.manifest,
            hooks=pin.hooks,
            problems=[Problem(MANIFEST_FILE, "code", f"{pin.name} {pin.version}: {why}")],
        )
        self._unavailable[(pin.name, pin.version)] = loaded
        return loaded

    def _setup_message(self, tenant: str, enabled: Sequence[Loaded]) -> protocol.SetupOp:
        return {
            "op": "setup",
            "tenant": tenant,
            "specs": self._specs,
            "customizations": [
                {"name": c.name, "path": str(c.source.path), "module": c.hooks_module}
                for c in enabled
            ],
        }

    async def _batch(
        self,
        tenant: str,
        hook: str,
        kwargs: Mapping[str, Any],
        *,
        firstresult: bool = False,
        secret: Collection[str] = frozenset(),
        secret_key: str | None = None,
    ) -> tuple[list[_Impl], list[HookFailure]]:
        """Call ``hook`` for ``tenant``'s enabled customizations implementing it:
        results in pluggy's call order, and the failures (each attributed).
        ``secret``: the keys of ``kwargs["values"]`` that are secret settings
        (each reaches only the customizations declaring it); ``secret_key``: the
        hook is about that secret setting (only those declaring it are called)."""
        enabled = await self._enabled_for(tenant)
        implementing = [c for c in enabled if any(h.hook == hook for h in c.hooks)]
        # pinned, but this server cannot run it: said, never silently skipped
        failures: list[HookFailure] = [
            HookFailure(c.name, hook, f"not called: {c.problems[0].message}")
            for c in implementing
            if c.refused
        ]
        implementing = [c for c in implementing if not c.refused]
        enabled = [c for c in enabled if not c.refused]
        #: implementing it but not to be called (the worker is told to skip them)
        untold: set[str] = set()
        if secret_key is not None:
            # a hook about a secret setting: only who declares it hears of it
            untold = {
                c.name
                for c in implementing
                if c.manifest is None or secret_key not in c.manifest.secrets
            }
            implementing = [c for c in implementing if c.name not in untold]
        if not implementing:
            return [], failures
        budget = self.options.hook_timeout
        deadline = guard.request_deadline(budget)
        skip: set[str] = set()
        for c in implementing:
            why = self.breaker.skipped(c.name, tenant)
            if why is not None:
                skip.add(c.name)
                failures.append(HookFailure(c.name, hook, why))
        setup = self._setup_message(tenant, enabled)
        setup_key = tuple((c.name, c.manifest.version if c.manifest else "") for c in enabled)
        # least privilege: the worker may read this tenant's customizations only
        roots = [*self._spec_roots, *(str(c.source.path) for c in enabled)]
        policy = self.recorder.policies.get(tenant) if self.recorder.policies else None
        if policy is not None and hook != REGISTER_SETTINGS and secret_key is None:
            # what they receive, secret settings removed (a hook about a secret
            # setting, and the definitions hook, which takes nothing, are not kept)
            self.recorder.offer(
                policy,
                hook,
                [c.name for c in implementing if c.name not in skip],
                kwargs,
                secret,
                lambda name: self._version_of(tenant, name),
            )
        sent, withhold = _withhold_secrets(
            kwargs, frozenset(secret), [c for c in implementing if c.name not in skip]
        )
        values = sent.get("values")
        readable = {
            c.name: (
                frozenset(k for k in values if k not in withhold.get(c.name, ()))
                if hook in (RESOLVE_SETTINGS, RESOLVE_SETTING) and isinstance(values, Mapping)
                else frozenset()
            )
            for c in implementing
        }
        # pluggy calls the last registered first (tryfirst/trylast aside)
        order = [c.name for c in reversed(implementing)]
        from plugins.runtime.protocol import dumps

        raw = dumps(sent)
        done: list[_Impl] = []
        retried = False
        while True:
            todo = [c.name for c in implementing if c.name not in skip]
            if not todo:
                break
            try:
                worker = await self.pool.acquire(tenant, deadline, roots)
            except NoWorker as exc:
                # not the customizations' doing: reported, not charged to them
                failures.extend(HookFailure(name, hook, f"not called: {exc}") for name in todo)
                break
            crashed: str | None = None
            expected = _Expected(tuple(n for n in order if n not in skip), readable, firstresult)
            call: protocol.CallOp = {
                "op": "call",
                "hook": hook,
                "firstresult": firstresult,
                "skip": sorted(skip | untold),
                "budget": budget,
                "withhold": withhold,
            }
            try:
                outcome = await asyncio.get_running_loop().run_in_executor(
                    self.pool.executor,
                    _call_worker,
                    worker,
                    setup,
                    setup_key,
                    call,
                    raw,
                    deadline,
                    expected,
                )
            finally:
                await self.pool.release(worker)
            results, running, reason, setup_failed = outcome
            for name, message in setup_failed.items():
                if name in todo and name not in skip:
                    skip.add(name)
                    failures.append(self._failed(name, tenant, hook, message, None))
            for impl in results:
                skip.add(impl.name)
                if impl.ok:
                    done.append(impl)
                else:
                    failures.append(
                        self._failed(impl.name, tenant, hook, impl.error or "failed", impl.ms)
                    )
            if reason is None:
                break
            if running is None and not results and not retried and time.monotonic() < deadline:
                # the worker was gone before any customization ran (e.g. it died
                # idle): nobody's fault, try once more in a fresh one
                retried = True
                continue
            if running is not None:
                skip.add(running)
                failures.append(self._failed(running, tenant, hook, reason, None))
                crashed = running
            if crashed is None or time.monotonic() >= deadline:
                break
            if firstresult and any(i.value is not None for i in done):
                break
            # the worker died under one customization: the others still run
        answered = {i.name for i in done} | {f.customization for f in failures}
        stopped = firstresult and any(i.value is not None for i in done)
        for c in implementing:
            if c.name not in answered and not stopped:
                failures.append(
                    HookFailure(
                        c.name,
                        hook,
                        "not called: the request's budget ran out before its turn",
                    )
                )
        for impl in done:
            self.breaker.succeeded(impl.name, tenant)
        return done, failures

    def _failed(
        self, name: str, tenant: str, hook: str, message: str, ms: float | None
    ) -> HookFailure:
        self.breaker.failed(name, tenant)
        version = self._version_of(tenant, name)
        self.observer.call(name, tenant, hook, ms=ms, error=message, version=version)
        # the request's id is added by the log's formatter (core.model.request_id)
        log.warning(
            "customization %s failed in %s: %s",
            name,
            hook,
            message,
            extra={
                "fields": {
                    "event": "customization_failed",
                    "customization": name,
                    "version": version,
                    "tenant": tenant,
                    "hook": hook,
                }
            },
        )
        return HookFailure(name, hook, message)

    def _observe(
        self,
        tenant: str,
        hook: str,
        impl: _Impl,
        changed: bool,
        returned: Sequence[str] = (),
    ) -> None:
        self.observer.call(
            impl.name,
            tenant,
            hook,
            ms=impl.ms,
            changed=changed,
            read=impl.read,
            scanned=impl.scanned,
            returned=returned,
            version=self._version_of(tenant, impl.name),
        )

    def _invalid(self, tenant: str, hook: str, impl: _Impl, message: str) -> HookFailure:
        return self._failed(impl.name, tenant, hook, message, impl.ms)

    # -- core.model.hooks.HookRunner --------------------------------------------------------
    async def register_settings(self, tenant: str) -> DefinitionsOutcome:
        """Called when registrations change, not per request: the outcome is kept
        per tenant until a publish or an enablement change."""
        enabled = await self._enabled_for(tenant)
        key = (tenant, tuple((c.name, c.manifest.version if c.manifest else "") for c in enabled))
        cached = self._definitions.get(key)
        if cached is not None:
            return cached
        definitions: list[tuple[str, SettingDefinition]] = []
        done, failures = await self._batch(tenant, REGISTER_SETTINGS, {})
        for impl in done:
            result = impl.value
            if result is None:
                self._observe(tenant, REGISTER_SETTINGS, impl, False)
                continue
            if not isinstance(result, list):
                failures.append(
                    self._invalid(
                        tenant,
                        REGISTER_SETTINGS,
                        impl,
                        f"returned {type(result).__name__}, expected a list of definitions",
                    )
                )
                continue
            keys = []
            for i, data in enumerate(result):
                try:
                    if not isinstance(data, dict):
                        raise InvalidInputError(f"[{i}]", "must be a dict")
                    definition = SettingDefinition.from_dict(data, where=f"[{i}]")
                    definition.check_consistent()
                except TailorError as exc:
                    failures.append(
                        self._invalid(
                            tenant, REGISTER_SETTINGS, impl, f"invalid definition {exc.message}"
                        )
                    )
                    break
                definitions.append((impl.name, definition))
                keys.append(definition.key)
            else:
                self._observe(tenant, REGISTER_SETTINGS, impl, bool(keys), keys)
        outcome = DefinitionsOutcome(tuple(definitions), tuple(failures))
        if not failures:
            self._definitions[key] = outcome
        await self.observer.maybe_flush()
        return outcome

    async def resolve_settings(
        self,
        tenant: str,
        environment: str | None,
        values: Mapping[str, Any],
        secret: Collection[str] = frozenset(),
    ) -> ResolveOutcome:
        customized: dict[str, CustomizedValue] = {}
        batch_wins: dict[str, CustomizedValue] = {}
        failures: list[HookFailure] = []
        kwargs = {"tenant": tenant, "environment": environment, "values": dict(values)}
        # the deprecated per-setting hook first: the batch hook wins
        for hook, target in ((RESOLVE_SETTING, customized), (RESOLVE_SETTINGS, batch_wins)):
            done, failed = await self._batch(tenant, hook, kwargs, secret=secret)
            failures.extend(failed)
            for impl in done:
                result = impl.value
                if result is None:
                    self._observe(tenant, hook, impl, False)
                    continue
                if not isinstance(result, dict):
                    failures.append(
                        self._invalid(
                            tenant,
                            hook,
                            impl,
                            f"returned {type(result).__name__}, "
                            "expected a dict of setting key -> value",
                        )
                    )
                    continue
                returned = [k for k in result if k in values]
                undeclared = [
                    k for k in returned if k in secret and k not in self._secrets_of(tenant, impl)
                ]
                if undeclared:
                    # a secret it never saw is not its to overwrite
                    failures.append(
                        self._invalid(
                            tenant,
                            hook,
                            impl,
                            f"returned secret setting(s) {', '.join(undeclared)} that its "
                            "customization.toml does not declare (secrets = [...]); ignored",
                        )
                    )
                    returned = [k for k in returned if k not in undeclared]
                changed = any(result[k] != values[k] for k in returned)
                self._observe(tenant, hook, impl, changed, returned)
                for key in returned:
                    # the customization pluggy calls first wins
                    target.setdefault(key, CustomizedValue(key, result[key], impl.name))
        customized.update(batch_wins)
        await self.observer.maybe_flush()
        return ResolveOutcome(tuple(customized.values()), tuple(failures))

    def _pin_of(self, tenant: str, name: str) -> Pin | None:
        """The version of ``name`` the tenant runs (its pin, as last read)."""
        return next((p for p in (self._pins or {}).get(tenant, ()) if p.name == name), None)

    def _version_of(self, tenant: str, name: str) -> str:
        pin = self._pin_of(tenant, name)
        return pin.version if pin is not None else ""

    def _secrets_of(self, tenant: str, impl: _Impl) -> frozenset[str]:
        """The secret settings the version ``impl`` ran declares (its manifest)."""
        pin = self._pin_of(tenant, impl.name)
        return frozenset(pin.manifest.secrets) if pin is not None else frozenset()

    async def validate_setting(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        value: Any,
        secret: bool = False,
    ) -> ValidationOutcome:
        errors: list[tuple[str, str]] = []
        kwargs = {"tenant": tenant, "environment": environment, "key": key, "value": value}
        done, failures = await self._batch(
            tenant, VALIDATE_SETTING, kwargs, secret_key=key if secret else None
        )
        for impl in done:
            result = impl.value
            if isinstance(result, str):
                errors.append((impl.name, result))
            elif isinstance(result, list):
                errors.extend((impl.name, str(m)) for m in result if m)
            elif result is not None:
                failures.append(
                    self._invalid(
                        tenant,
                        VALIDATE_SETTING,
                        impl,
                        f"returned {type(result).__name__}, "
                        "expected None, a message or a list of messages",
                    )
                )
                continue
            self._observe(tenant, VALIDATE_SETTING, impl, bool(result), ())
        await self.observer.maybe_flush()
        return ValidationOutcome(tuple(errors), tuple(failures))

    async def setting_changed(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        old: Any,
        new: Any,
        actor: str,
        secret: bool = False,
    ) -> Sequence[HookFailure]:
        kwargs = {
            "tenant": tenant,
            "environment": environment,
            "key": key,
            "old": old,
            "new": new,
            "actor": actor,
        }
        done, failures = await self._batch(
            tenant, SETTING_CHANGED, kwargs, secret_key=key if secret else None
        )
        for impl in done:
            self._observe(tenant, SETTING_CHANGED, impl, impl.value is not None)
        await self.observer.maybe_flush()
        return failures

    # -- the host product's extension points ------------------------------------
    async def call_extension(
        self, tenant: str, hook: str, kwargs: Mapping[str, Any]
    ) -> tuple[list[tuple[str, Any]], list[HookFailure]]:
        """Call a host-product extension point (e.g. ``acme_invoice_footer``) for
        ``tenant``'s enabled customizations, with the same isolation: returns
        (customization, result) pairs in pluggy's order, and the failures."""
        point = self.catalog.get(hook)
        if point is None:
            raise InvalidInputError("hook", f"unknown extension point {hook!r}")
        missing = set(point.params) - set(kwargs)
        unknown = set(kwargs) - set(point.params)
        if missing or unknown:
            raise InvalidInputError(
                "hook", f"{hook} takes ({', '.join(point.params)}); got ({', '.join(kwargs)})"
            )
        done, failures = await self._batch(tenant, hook, kwargs, firstresult=point.firstresult)
        results = []
        for impl in done:
            self._observe(tenant, hook, impl, impl.value is not None)
            results.append((impl.name, impl.value))
        await self.observer.maybe_flush()
        return results, failures

    async def flush_health(self) -> None:
        """Write the pending health counters and observations."""
        await self.observer.flush()

    async def flush_samples(self) -> None:
        """Write the recorded inputs waiting, then re-read which tenants record
        (the server's background job)."""
        await self.recorder.flush()
        await self.recorder.refresh()

    def start(self) -> None:
        """Start the spare workers ahead of the first call."""
        self.pool.start()

    async def close(self) -> None:
        await self.flush_health()
        await self.recorder.flush()
        await self.pool.close()


def _withhold_secrets(
    kwargs: Mapping[str, Any], secret: frozenset[str], called: Sequence[Loaded]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The arguments to send and, per customization, the secret keys its
    ``values`` must not hold. A secret setting reaches a customization only when
    its manifest's ``secrets`` lists the key; one that no customization called
    here declares does not leave the server at all."""
    values = kwargs.get("values")
    if not secret or not isinstance(values, Mapping):
        return dict(kwargs), {}
    present = frozenset(k for k in values if k in secret)
    if not present:
        return dict(kwargs), {}
    declared = {
        c.name: present & frozenset(c.manifest.secrets if c.manifest else ()) for c in called
    }
    crossing = frozenset().union(*declared.values())
    sent = {k: v for k, v in values.items() if k not in present or k in crossing}
    withhold = {name: sorted(crossing - mine) for name, mine in declared.items() if crossing - mine}
    return {**kwargs, "values": sent}, withhold


@dataclass(frozen=True)
class _Expected:
    """What the server asked one worker call to do. Whatever the worker writes
    is checked against this: it names nothing else."""

    #: the customizations it is to call, in pluggy's order (tryfirst aside)
    names: tuple[str, ...]
    #: per customization, the keys of the ``values`` it was sent (what it may
    #: report having read)
    readable: Mapping[str, frozenset[str]]
    firstresult: bool


class _Breach(Exception):
    """The worker wrote something out of step or malformed (``str()``: what);
    ``culprit``: whom to charge when it is not the one running."""

    def __init__(self, message: str, culprit: str | None = None) -> None:
        super().__init__(message)
        self.culprit = culprit


_START_KEYS = frozenset({"event", "name"})
_RESULT_KEYS = frozenset({"event", "name", "ok", "ms", "read", "scanned", "value", "error"})
_DONE_KEYS = frozenset({"event", "threads", "failed"})


def _only(event: Mapping[str, Any], keys: frozenset[str]) -> None:
    extra = sorted(set(event) - keys)
    if extra:
        raise _Breach(f"a {event['event']!r} event with unknown fields {extra[:3]!r}")


def _checked_result(
    event: Mapping[str, Any], running: str | None, readable: Mapping[str, frozenset[str]]
) -> _Impl:
    """A ``result`` event, checked field by field against the call it answers."""
    _only(event, _RESULT_KEYS)
    name = event.get("name")
    if running is None:
        raise _Breach(f"a result for {name!r} when no customization was running")
    if name != running:
        raise _Breach(f"a result for {name!r} while {running!r} was running")
    ok = event.get("ok")
    if not isinstance(ok, bool):
        raise _Breach("a result whose 'ok' is not true or false")
    ms = event.get("ms")
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms) or ms < 0:
        raise _Breach("a result whose 'ms' is not a duration")
    read = event.get("read", [])
    allowed = readable.get(running, frozenset())
    if (
        not isinstance(read, list)
        or len(read) > len(allowed)
        or not all(isinstance(k, str) and k in allowed for k in read)
    ):
        raise _Breach("a result reading settings it was not sent")
    scanned = event.get("scanned", False)
    if not isinstance(scanned, bool):
        raise _Breach("a result whose 'scanned' is not true or false")
    if ok:
        if "value" not in event or "error" in event:
            raise _Breach("a successful result without exactly a value")
        return _Impl(running, True, event["value"], None, float(ms), tuple(read), scanned)
    error = event.get("error")
    if not isinstance(error, str) or len(error) > protocol.MAX_ERROR or "value" in event:
        raise _Breach(f"a failed result without an error of at most {protocol.MAX_ERROR} chars")
    return _Impl(running, False, None, error, float(ms), tuple(read), scanned)


def _setup_failed(answer: Mapping[str, Any], setup: protocol.SetupOp) -> dict[str, str]:
    """The ``done`` answering a setup: which customizations failed to load, each
    one the server asked to load, each with a bounded message."""
    if answer.get("event") != "done":
        raise _Breach(f"answered a setup with {answer.get('event')!r}")
    _only(answer, _DONE_KEYS)
    failed = answer.get("failed") or {}
    names = {c["name"] for c in setup["customizations"]}
    if not isinstance(failed, dict) or not all(
        k in names and isinstance(v, str) and len(v) <= 2 * protocol.MAX_ERROR
        for k, v in failed.items()
    ):
        raise _Breach("a setup answer naming customizations it was not asked to load")
    return dict(failed)


def _call_worker(
    worker: WorkerProcess,
    setup: protocol.SetupOp,
    setup_key: tuple[Any, ...],
    call: protocol.CallOp,
    raw: bytes,
    deadline: float,
    expected: _Expected,
) -> tuple[list[_Impl], str | None, str | None, dict[str, str]]:
    """Blocking: (results, customization to charge when it ended early (the one
    running), why it ended early or None, customizations that failed to load).

    The server owns the call's state: each event must be the next step of the
    call it asked for (``start`` of a customization it asked for and that has
    not answered, then that one's ``result`` with typed fields, ..., ``done``).
    Anything else (out of step, malformed, oversized, naming another
    customization) kills the worker and is charged to the customization that
    was running: the last one started, else the first not yet called."""
    running: str | None = None
    last: str | None = None
    results: list[_Impl] = []
    answered: set[str] = set()

    def culprit(breach: _Breach | None = None) -> str | None:
        # whose code wrote it: the one running, else the last one started (the
        # worker itself writes the next start at once), else (nothing started
        # yet) the first one waiting
        if breach is not None and breach.culprit is not None:
            return breach.culprit
        if running is not None or last is not None:
            return running or last
        waiting = [n for n in expected.names if n not in worker.setup_failed]
        return waiting[0] if waiting else None

    def broken(why: str, who: str | None) -> tuple[list[_Impl], str | None, str, dict[str, str]]:
        # the one charged has no result: what it "answered" may be forged
        kept = [r for r in results if r.name != who]
        return kept, who, f"broke the worker protocol: {why}", worker.setup_failed

    try:
        if worker.pending():
            # it wrote between calls (e.g. a thread of a customization): retired
            worker.kill()
            return [], None, "its worker wrote when nobody asked; it was retired", {}
        if worker.setup_key != setup_key:
            worker.send(deadline, setup)
            worker.setup_failed = _setup_failed(worker.receive(deadline), setup)
            worker.setup_key = setup_key
        worker.send(deadline, call, raw=raw)
        allowed = [n for n in expected.names if n not in worker.setup_failed]
        for event in worker.events(deadline):
            kind = event["event"]
            if kind == "start":
                _only(event, _START_KEYS)
                name = event.get("name")
                if running is not None:
                    raise _Breach(f"started {name!r} while {running!r} was running")
                if name not in allowed:
                    raise _Breach(f"started {name!r}, which this call did not ask it to run")
                if name in answered:
                    raise _Breach(f"started {name!r} twice")
                running = name
            elif kind == "result":
                results.append(_checked_result(event, running, expected.readable))
                answered.add(results[-1].name)
                last, running = running, None
            elif kind == "done":
                _only(event, _DONE_KEYS)
                if running is not None:
                    raise _Breach(f"ended the call while {running!r} was running")
                stopped = (
                    expected.firstresult
                    and bool(results)
                    and results[-1].ok
                    and results[-1].value is not None
                )
                missing = [n for n in allowed if n not in answered]
                if missing and not stopped:
                    raise _Breach(f"ended the call before {missing[0]!r} was called", last)
                threads = worker.threads()
                if threads is None:  # no /proc: the worker's word is all there is
                    reported = event.get("threads", 1)
                    threads = reported if type(reported) is int else 2
                if threads > 1:
                    worker.kill()  # a customization left a thread running: retire it
            elif kind == "error":
                worker.kill()
                message = str(event.get("message"))[: protocol.MAX_ERROR]
                return results, running, f"worker error: {message}", {}
            else:
                raise _Breach(f"an event {kind[:40]!r} that does not exist")
    except _Breach as exc:
        worker.kill()
        return broken(str(exc), culprit(exc))
    except ProtocolBroken as exc:
        return broken(str(exc), culprit())
    except DeadlinePassed:
        budget = call.get("budget", 0)
        return results, running, guard.timeout_message(budget), worker.setup_failed
    except WorkerDied as exc:
        return results, running, str(exc), worker.setup_failed
    return results, None, None, worker.setup_failed


def _relative(message: str, root: Path) -> str:
    """A problem as the publisher sees it: paths inside the package, never the
    server's cache directory."""
    return message.replace(f"{root}{os.sep}", "").replace(str(root), ".")
