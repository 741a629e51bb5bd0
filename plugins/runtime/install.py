"""Finding and checking customizations without importing them here.

The server process never imports consultant code: :class:`Inspector` hands each
package directory to a worker process (``plugins.runtime.worker``), which
imports it under the worker's confinement and answers what
:func:`plugins.loading.inspect_customization` found: the manifest, the hooks and
their parameters, the setting keys, every problem. A package whose import kills
or hangs its worker (``os._exit``, a segfault, an endless loop) is refused with
that reason, the worker is replaced, and the next package is checked.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.model.customizations import CustomizationManifest, HookUse
from plugins.catalog import Catalog
from plugins.loading import Loaded, Source, claim_names
from plugins.manifest import MANIFEST_FILE, Problem
from plugins.runtime.process import DeadlinePassed, WorkerDied, WorkerProcess, private_workdir


def spec_descriptions(catalog: Catalog) -> list[list[Any]]:
    """How a worker finds the catalog's hookspec modules: (source, module name, file)."""
    return [
        [spec.source, spec.module.__name__, getattr(spec.module, "__file__", None)]
        for spec in catalog.modules
    ]


def spec_roots(specs: list[list[Any]]) -> list[str]:
    """The directories a worker must read to import the hookspec modules: for
    ``products.acme_erp.hookspecs`` in ``/x/products/acme_erp/hookspecs.py``,
    ``/x/products`` (its packages' ``__init__`` files are read too)."""
    roots = []
    for _src, name, file in specs:
        if not file:
            continue
        depth = len(str(name).split("."))  # a.b.c: c.py lies in .../a/b
        path = Path(file).parent
        roots.append(str(path.parents[depth - 3] if depth >= 3 else path))
    return roots


class Inspector:
    """Checks customization directories in a worker process (blocking)."""

    def __init__(
        self, catalog: Catalog, release: str, timeout: float = 5.0, memory_mb: int = 1024
    ) -> None:
        self.specs = spec_descriptions(catalog)
        self.categories = frozenset(catalog.setting_categories or ())
        self.release = release
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.workdir = private_workdir()
        self._worker: WorkerProcess | None = None
        #: what confines the checking worker (once one has started)
        self.confinement: list[str] = []
        #: what the checking worker may read: the packages checked, the hookspecs
        self.roots: list[str] = spec_roots(self.specs)

    def _get_worker(self) -> WorkerProcess:
        if self._worker is None or not self._worker.alive:
            self._worker = WorkerProcess.spawn(self.memory_mb, self.workdir, self.roots)
            self.confinement = self._worker.confinement
        return self._worker

    def inspect(self, source: Source) -> Loaded:
        loaded = Loaded(source)
        # the worker runs in a directory of its own: a relative path means nothing there
        path = str(source.path.resolve())
        if path not in self.roots:
            self.roots.append(path)
            if self._worker is not None:
                self._worker.kill()  # started without read access to this package
        try:
            worker = self._get_worker()
        except WorkerDied as exc:
            loaded.problems.append(Problem(str(source.path), "import", str(exc)))
            return loaded
        deadline = time.monotonic() + self.timeout
        message = {
            "op": "inspect",
            "path": path,
            "origin": source.origin,
            "release": self.release,
            "specs": self.specs,
        }
        try:
            worker.send(deadline, message)
            answer = worker.receive(deadline)
        except DeadlinePassed:
            reason = (
                f"importing it did not finish within {self.timeout:g}s (it hangs or loops "
                "at import time); the check was stopped"
            )
            loaded.problems.append(Problem(str(source.path / MANIFEST_FILE), "import", reason))
            return loaded
        except WorkerDied as exc:
            reason = f"importing it ended the process checking it: {exc}"
            loaded.problems.append(Problem(str(source.path / MANIFEST_FILE), "import", reason))
            return loaded
        if answer.get("event") != "done":
            loaded.problems.append(
                Problem(str(source.path), "import", str(answer.get("message", answer)))
            )
            return loaded
        loaded = _loaded_from(source, answer)
        loaded.categories = self.categories
        return loaded

    def inspect_all(self, sources: Sequence[Source]) -> list[Loaded]:
        """Every source, each in the worker; the second claim on a name is refused."""
        self.roots.extend(str(s.path.resolve()) for s in sources)
        return claim_names([self.inspect(source) for source in sources])

    def close(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker = None
        import shutil

        shutil.rmtree(self.workdir, ignore_errors=True)


def _loaded_from(source: Source, answer: dict[str, Any]) -> Loaded:
    manifest = answer.get("manifest")
    return Loaded(
        source=source,
        manifest=(
            CustomizationManifest(
                **{
                    **manifest,
                    "tenants": tuple(manifest["tenants"]),
                    "secrets": tuple(manifest.get("secrets") or ()),
                }
            )
            if manifest
            else None
        ),
        hooks=tuple(
            HookUse(**{**h, "params": tuple(h["params"]), "features": tuple(h["features"])})
            for h in answer["hooks"]
        ),
        setting_keys=tuple(answer["setting_keys"]),
        problems=[Problem(*p) for p in answer["problems"]],
        warnings=list(answer["warnings"]),
        hooks_module=answer.get("hooks_module") or "hooks",
    )


def check_path(path: Path, catalog: Catalog, release: str, timeout: float = 5.0) -> Loaded:
    """Check one directory in a throwaway worker (``tailor customization check``)."""
    inspector = Inspector(catalog, release, timeout)
    try:
        return inspector.inspect(Source(Path(path), "check"))
    finally:
        inspector.close()
