"""The worker process: imports one tenant's customizations and calls their hooks
in pluggy's order, one implementation at a time, reporting each as it goes.

Run as ``python -I -m plugins.runtime.worker MEMORY_MB`` by
:mod:`plugins.runtime.process`; never imported by the server. Messages are in
:mod:`plugins.runtime.protocol`; the confinement in :mod:`plugins.runtime.sandbox`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import threading
import time
import types
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from pathlib import Path
from typing import Any

import pluggy

from core.model.hooks import RESOLVE_SETTING, RESOLVE_SETTINGS
from plugins.runtime import protocol, sandbox


class TrackedValues(Mapping[str, Any]):
    """The ``values`` a resolve hook receives: its own copy, read-only,
    remembering which keys the code really used and whether it scanned them.

    A named key is a use: ``values[k]``, ``values.get(k)``, ``k in values``.
    Going over all of them (iterating, ``keys()``, ``items()``, ``values()``,
    ``len``) is a scan, recorded as one: a comprehension looking for blank
    values depends on no key in particular, and must not make every key "read"
    (readiness would block on each removed key, usage would retire none)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.read: set[str] = set()
        self.scanned = False

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        self.read.add(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._data:
            self.read.add(key)
            return self._data[key]
        return default

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and key in self._data:
            self.read.add(key)
            return True
        return False

    def __iter__(self) -> Iterator[str]:
        self.scanned = True
        return iter(self._data)

    def __len__(self) -> int:
        self.scanned = True
        return len(self._data)

    def keys(self) -> KeysView[str]:
        self.scanned = True
        return self._data.keys()

    def items(self) -> ItemsView[str, Any]:
        self.scanned = True
        return self._data.items()

    def values(self) -> ValuesView[Any]:
        self.scanned = True
        return self._data.values()

    def __repr__(self) -> str:
        return f"TrackedValues({len(self._data)} settings)"


@dataclasses.dataclass
class Tracked:
    """One call of one implementation: its value, the keys of ``values`` it
    used by name, and whether it scanned them."""

    value: Any = None
    read: set[str] = dataclasses.field(default_factory=set)
    scanned: bool = False


def call_tracked(
    hook: str, function: Any, argnames: Iterable[str], kwargs: dict[str, Any], tracked: Tracked
) -> Any:
    """Call one hook implementation as the runtime does, recording in
    ``tracked`` what it used of ``values`` (filled in even when it raises).
    ``tailor_resolve_setting`` is called once per key: being handed every key
    is a scan, not a use of each."""
    names = tuple(argnames)
    if hook == RESOLVE_SETTING:
        found = {}
        values = kwargs.get("values") or {}
        tracked.scanned = True
        for key, value in values.items():
            kw = {**kwargs, "key": key, "value": value}
            result = function(**{a: kw.get(a) for a in names})
            if result is not None and result != value:
                found[key] = result
        tracked.value = found
        return found
    if hook == RESOLVE_SETTINGS and isinstance(kwargs.get("values"), dict):
        values = TrackedValues(kwargs["values"])
        kwargs = {**kwargs, "values": values}
        tracked.read = values.read
        try:
            tracked.value = function(**{a: kwargs.get(a) for a in names})
        finally:
            tracked.scanned = values.scanned
        return tracked.value
    tracked.value = function(**{a: kwargs.get(a) for a in names})
    return tracked.value


def _spec_module(source: str, name: str, file: str | None) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        if not file:
            raise
    spec = importlib.util.spec_from_file_location(f"_tailor_hookspecs_{source}", file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Worker:
    def __init__(self, confinement: sandbox.Confinement, proto_in: int, proto_out: int) -> None:
        self.confinement = confinement
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.pm: pluggy.PluginManager | None = None
        self.failed: dict[str, str] = {}
        self._specs: dict[str, Any] = {}

    def send(self, message: protocol.Event) -> None:
        protocol.write_message(self.proto_out, message)

    def catalog(self, specs: list[protocol.SpecRef]) -> Any:
        from plugins.catalog import Catalog, SpecModule

        key = protocol.dumps(specs).decode()
        if key not in self._specs:
            modules = [SpecModule(src, _spec_module(src, name, file)) for src, name, file in specs]
            self._specs[key] = Catalog(modules)
        return self._specs[key]

    # -- ops ----------------------------------------------------------------------
    def inspect(self, message: protocol.InspectOp) -> None:
        from plugins.loading import Source, inspect_customization

        catalog = self.catalog(message["specs"])
        # the code's hooks as imported; the server reads the source itself
        loaded = inspect_customization(
            Source(Path(message["path"]), message["origin"]),
            catalog,
            message["release"],
            analyze=False,
        )
        self.send(
            {
                "event": "done",
                "manifest": dataclasses.asdict(loaded.manifest) if loaded.manifest else None,
                "hooks": [dataclasses.asdict(h) for h in loaded.hooks],
                "setting_keys": list(loaded.setting_keys),
                "problems": [[p.file, p.field, p.message] for p in loaded.problems],
                "warnings": list(loaded.warnings),
                "hooks_module": loaded.hooks_module,
            }
        )

    def setup(self, message: protocol.SetupOp) -> None:
        """A fresh plugin manager with the tenant's customizations registered in
        the order given (pluggy calls the last registered first)."""
        from plugins.loading import import_package, plugin_object

        catalog = self.catalog(message["specs"])
        pm = pluggy.PluginManager("tailor")
        for spec in catalog.modules:
            pm.add_hookspecs(spec.module)
        self.failed = {}
        for item in message["customizations"]:
            try:
                module = import_package(Path(item["path"]), item["module"])
                pm.register(plugin_object(module), name=item["name"])
            except BaseException as exc:  # consultant code: anything may happen
                self.failed[item["name"]] = f"could not be loaded: {type(exc).__name__}: {exc}"[
                    : protocol.MAX_ERROR
                ]
        self.pm = pm
        self.send({"event": "done", "failed": self.failed})

    def call(self, message: protocol.CallOp, raw: bytes) -> None:
        hook = message["hook"]
        skip = set(message.get("skip", ()))
        #: per customization, the secret settings it did not declare: absent
        #: from the ``values`` it receives
        withhold: Mapping[str, list[str]] = message.get("withhold") or {}
        budget = float(message.get("budget", 2.0))
        if self.pm is None:
            self.send({"event": "error", "message": "call before setup"})
            return
        caller = getattr(self.pm.hook, hook, None)
        impls = list(reversed(caller.get_hookimpls())) if caller is not None else []
        for impl in impls:
            name = impl.plugin_name
            if name in skip:
                continue
            self.send({"event": "start", "name": name})
            sandbox.limit_cpu(budget + 1)
            kwargs = protocol.loads(raw)
            if isinstance(kwargs.get("values"), dict):
                for key in withhold.get(name, ()):
                    kwargs["values"].pop(key, None)
            started = time.perf_counter()
            tracked = Tracked()
            try:
                value = call_tracked(hook, impl.function, impl.argnames, kwargs, tracked)
            except BaseException as exc:  # SystemExit, KeyboardInterrupt, anything
                ms = (time.perf_counter() - started) * 1000
                self._result(name, False, f"{type(exc).__name__}: {exc}", ms, tracked)
                continue
            ms = (time.perf_counter() - started) * 1000
            if not self._result(name, True, value, ms, tracked):
                continue
            if message.get("firstresult") and value is not None:
                break
        # a customization that left a thread running keeps code going after its
        # call: the server retires this worker rather than hand it more work (it
        # counts the threads itself where it can; this is the fallback)
        self.send({"event": "done", "threads": threading.active_count()})

    def _result(self, name: str, ok: bool, value: Any, ms: float, tracked: Tracked) -> bool:
        message: protocol.ResultEvent = {
            "event": "result",
            "name": name,
            "ok": ok,
            "ms": ms,
            "read": sorted(tracked.read),
            "scanned": tracked.scanned,
        }
        if ok:
            message["value"] = value
        else:
            message["error"] = str(value)[: protocol.MAX_ERROR]
        try:
            data = protocol.frame(message)
            if len(data) > protocol.MAX_ANSWER:
                raise ValueError(
                    f"{len(data)} bytes, more than the {protocol.MAX_ANSWER} a result may take"
                )
        except (TypeError, ValueError, OverflowError) as exc:
            message.pop("value", None)
            message["ok"] = False
            message["error"] = (
                f"returned a value that cannot leave its worker (only JSON values can): {exc}"
            )[: protocol.MAX_ERROR]
            data = protocol.frame(message)
            ok = False
        protocol.write_all(self.proto_out, data)
        return ok

    def serve(self) -> None:
        while True:
            try:
                message = protocol.read_message(self.proto_in)
            except protocol.ProtocolError:
                return
            try:
                self.handle(message)
            except protocol.ProtocolError:
                return
            except BaseException as exc:  # the worker's own failure: say it, go on
                self.send({"event": "error", "message": f"{type(exc).__name__}: {exc}"})

    def handle(self, message: protocol.Op) -> None:
        op = message.get("op")
        if message["op"] == "ping":
            self.send({"event": "done"})
        elif message["op"] == "inspect":
            self.inspect(message)
        elif message["op"] == "setup":
            self.setup(message)
        elif message["op"] == "call":
            (size,) = protocol.HEADER.unpack(protocol.read_exactly(self.proto_in, 4))
            raw = protocol.read_exactly(self.proto_in, size)
            self.call(message, raw)
        else:
            self.send({"event": "error", "message": f"unknown op {op!r}"})


def main() -> None:
    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    proto_in, proto_out = sandbox.take_protocol_fds()
    # what every customization needs, imported before the confinement starts
    import plugins.catalog
    import plugins.hookspecs
    import plugins.introspection
    import plugins.loading  # noqa: F401

    # started blank: the server names what this worker may read once it knows
    # whom the worker serves (a spare waits here)
    protocol.write_message(proto_out, {"event": "started"})
    try:
        message = protocol.read_message(proto_in)
    except protocol.ProtocolError:
        return
    if message.get("op") != "confine":
        return
    roots = [str(r) for r in message.get("roots") or []]
    confinement, applied = sandbox.confine(memory_mb, roots)
    worker = Worker(confinement, proto_in, proto_out)
    worker.send({"event": "ready", "confinement": applied})
    try:
        worker.serve()
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    main()
