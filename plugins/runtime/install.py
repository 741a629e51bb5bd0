"""Finding and checking customizations without importing them here.

The server process never imports consultant code, and never lets it decide who
it is. The server reads each package's ``customization.toml`` itself
(:func:`plugins.loading.read_manifest`: pure TOML): name, version, tenants and
secrets come from there and nothing else. :class:`Inspector` then hands the
package to a FRESH worker process (never two packages in one process, so one
package's import-time code cannot touch another's check) that may read that
package only (plus Python, the installed packages and the hookspecs); the
worker imports it and answers the hooks, setting keys, problems and warnings
it found. Its answer is checked like any worker message; whatever it says
about a manifest is ignored. A package whose import kills or hangs its worker
(``os._exit``, a segfault, an endless loop) is refused with that reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core.model.customizations import HookUse
from plugins.catalog import Catalog
from plugins.loading import Loaded, Source, claim_names, read_manifest
from plugins.manifest import MANIFEST_FILE, ParsedManifest, Problem, product_problem
from plugins.runtime import protocol
from plugins.runtime.process import DeadlinePassed, WorkerDied, WorkerProcess, private_workdir


def spec_descriptions(catalog: Catalog) -> list[protocol.SpecRef]:
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
    """Checks customization directories, each in its own worker process (blocking)."""

    def __init__(
        self,
        catalog: Catalog,
        release: str,
        timeout: float = 5.0,
        memory_mb: int = 1024,
        *,
        analyze: bool = True,
    ) -> None:
        #: read each package's source too (its hooks' file:line, its keys); False
        #: when the caller reads it itself (``tailor customization check``)
        self.analyze = analyze
        self.specs = spec_descriptions(catalog)
        self.categories = frozenset(catalog.setting_categories or ())
        self.release = release
        #: the served product's id: a customization naming another is refused
        self.product = catalog.product
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.workdir = private_workdir()
        #: what confines the checking workers (once one has started)
        self.confinement: list[str] = []
        #: what every checking worker may read besides its one package
        self.roots: list[str] = spec_roots(self.specs)

    def inspect(self, source: Source, parsed: ParsedManifest | None = None) -> Loaded:
        """Check ``source`` in a fresh worker. ``parsed``: its manifest as the server
        already parsed it (a publish, from the upload): not parsed again."""
        # the worker runs in a directory of its own: a relative path means nothing there
        path = source.path.resolve()
        loaded = Loaded(source)
        if not path.is_dir():
            loaded.problems.append(Problem(str(path), "-", "not a directory"))
            return loaded
        # identity first, from the file, by the server: before any code runs
        manifest, problems, module = read_manifest(path, self.release, parsed)
        loaded.manifest, loaded.hooks_module = manifest, module
        other = (
            product_problem(manifest, self.product, str(path / MANIFEST_FILE)) if manifest else None
        )
        if other is not None:  # another product's: no worker, no import
            loaded.problems.append(other)
            return loaded
        loaded.problems.extend(problems)
        loaded.categories = self.categories
        where = str(path / MANIFEST_FILE)
        try:
            worker = WorkerProcess.spawn(
                self.memory_mb, self.workdir, [*self.roots, str(path)], self.timeout + 5
            )
        except WorkerDied as exc:
            loaded.problems.append(Problem(str(path), "import", str(exc)))
            return loaded
        self.confinement = worker.confinement
        deadline = time.monotonic() + self.timeout
        message: protocol.InspectOp = {
            "op": "inspect",
            "path": str(path),
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
            loaded.problems.append(Problem(where, "import", reason))
            return loaded
        except WorkerDied as exc:
            reason = f"importing it ended the process checking it: {exc}"
            loaded.problems.append(Problem(where, "import", reason))
            return loaded
        finally:
            worker.kill()  # one package per process, always
        if answer.get("event") != "done":
            loaded.problems.append(Problem(str(path), "import", str(answer.get("message", answer))))
            return loaded
        try:
            _add_findings(loaded, answer)
        except (KeyError, TypeError, ValueError) as exc:
            loaded.problems.append(
                Problem(where, "import", f"its checking worker answered nonsense ({exc!r})")
            )
            return loaded
        if self.analyze:
            loaded.analyze()  # the server's own reading of the source, once
        return loaded

    def inspect_all(self, sources: Sequence[Source]) -> list[Loaded]:
        """Every source, each in its own worker (a few at once); the second claim
        on a name is refused."""
        if len(sources) <= 1:
            return claim_names([self.inspect(source) for source in sources])
        with ThreadPoolExecutor(max_workers=min(4, len(sources))) as checking:
            return claim_names(list(checking.map(self.inspect, sources)))

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.workdir, ignore_errors=True)


def _strings(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field} is not a list of strings")
    return list(value)


def _add_findings(loaded: Loaded, answer: dict[str, Any]) -> None:
    """What the worker found in the code (its hooks, setting keys, problems,
    warnings), added to what the server read itself. Its ``manifest`` and
    ``hooks_module`` are ignored: the server's own reading of the files stands."""
    hooks = []
    for h in answer["hooks"]:
        if not isinstance(h, dict):
            raise ValueError("a hook is not an object")
        hooks.append(
            HookUse(
                **{
                    **h,
                    "params": tuple(_strings(h["params"], "params")),
                    "features": tuple(_strings(h["features"], "features")),
                    "signature": tuple(_strings(h.get("signature", []), "signature")),
                    "constants": tuple(
                        (str(slot), value, str(role))
                        for slot, value, role in h.get("constants", [])
                    ),
                }
            )
        )
    problems = []
    for p in answer["problems"]:
        problem = Problem(*_strings(p, "a problem"))
        if problem not in loaded.problems:  # the manifest's: the server has them
            problems.append(problem)
    loaded.hooks = tuple(hooks)
    loaded.setting_keys = tuple(_strings(answer["setting_keys"], "setting_keys"))
    loaded.problems.extend(problems)
    loaded.warnings.extend(_strings(answer["warnings"], "warnings"))


def check_path(
    path: Path,
    catalog: Catalog,
    release: str,
    timeout: float = 5.0,
    parsed: ParsedManifest | None = None,
) -> Loaded:
    """Check one directory in a throwaway worker (``tailor customization check``,
    a publish); ``parsed``: its manifest, already parsed by the server."""
    inspector = Inspector(catalog, release, timeout)
    try:
        return inspector.inspect(Source(Path(path), "check"), parsed)
    finally:
        inspector.close()
