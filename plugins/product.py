"""Loading the host product's declaration (its product plugin) into a
:class:`core.model.product.Product`, reporting every problem at once.

Where the product comes from, in this order:

* ``TAILOR_PRODUCT=DIR``: a product directory (format below);
* ``TAILOR_PRODUCT=NAME``: the installed product of that entry-point name;
* the one package installed in the entry-point group ``tailor.product`` (its value
  names a package whose directory is a product directory).

The product directory (``docs/product.md``)::

    DIR/product.toml        name = "...", version = "4.2" (the release the running
                            code implements), releases = ["4.0", "4.1", "4.2"]
                            (released, oldest first)
    DIR/releases/<V>.toml   one catalog per release, in the manifest format
                            ``tailor release export`` writes (settings, the
                            product's extension points, supersedes) and the
                            Tailor hook API it runs on (tailor_hook_api = "2";
                            default: the running Tailor's); the loaded manifest
                            gets that API's tailor_* hooks (tailor_* entries the
                            file lists must be the API's, and are replaced by them)
    DIR/planned/<V>.toml    optional planned releases, imported as planned
    DIR/hookspecs.py        optional: the product's extension points as pluggy
                            hookspecs with lifecycle (``plugins.lifecycle``)
    DIR/demo.toml           optional: demo tenants and the generated fleet's
                            profile (``core.model.demo_data``)

Problems (a missing file, an unknown field, an invalid version, a release manifest
that contradicts the history or the hookspecs) are collected and raised together as
one :class:`core.model.errors.ProductError`, each naming the file and the field.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import tomllib
import traceback
from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from packaging.version import Version

from core.model.demo_data import DemoData, demo_from_dict
from core.model.errors import InvalidInputError, ProductError
from core.model.extension_points import ExtensionPoint
from core.model.manifest import PLANNED, RELEASED, ReleaseManifest
from core.model.manifest_io import MAX_BYTES, check_schema
from core.model.product import Product, with_tailor_points
from plugins.catalog import (
    extension_point,
    foreign_tailor_hooks,
    known_hook_api,
    spec_functions,
    tailor_extension_points,
)
from plugins.hookspecs import HOOK_API

PRODUCT_ENV = "TAILOR_PRODUCT"
PRODUCT_GROUP = "tailor.product"
PRODUCT_FILE = "product.toml"
HOOKSPECS_FILE = "hookspecs.py"
DEMO_FILE = "demo.toml"
PRODUCT_FIELDS = frozenset({"name", "version", "releases", "description"})
#: extension points whose name starts so are Tailor's own, never the product's
TAILOR_PREFIX = "tailor_"


def load_product(value: str | None = None) -> Product:
    """The running product: ``value`` (or ``TAILOR_PRODUCT``) is a directory or an
    installed product's name; unset, the one installed product plugin."""
    raw = (os.environ.get(PRODUCT_ENV, "") if value is None else value).strip()
    installed = sorted(entry_points(group=PRODUCT_GROUP), key=lambda e: e.name)
    if raw:
        path = Path(raw)
        if path.is_dir():
            return load_directory(path)
        named = [ep for ep in installed if ep.name == raw]
        if named:
            return load_entry_point(named[0])
        names = ", ".join(ep.name for ep in installed) or "none"
        raise ProductError(
            [
                f"{PRODUCT_ENV}={raw!r}: not a product directory, and no installed product "
                f"(entry-point group {PRODUCT_GROUP!r}) has that name; installed: {names}"
            ]
        )
    if len(installed) == 1:
        return load_entry_point(installed[0])
    if not installed:
        raise ProductError(
            [
                f"no host product: set {PRODUCT_ENV} to a product directory (see docs/product.md) "
                f"or install a package in the entry-point group {PRODUCT_GROUP!r}"
            ]
        )
    raise ProductError(
        [
            f"several products are installed ({', '.join(ep.name for ep in installed)}): "
            f"set {PRODUCT_ENV} to the name of the one to serve"
        ]
    )


def load_entry_point(ep: EntryPoint) -> Product:
    """A product package registered under ``tailor.product``."""
    where = f"entry point {ep.name} ({ep.value})"
    try:
        module = ep.load()
    except Exception as exc:
        raise ProductError([f"{where}: cannot import: {type(exc).__name__}: {exc}"]) from None
    locations = list(getattr(module, "__path__", []) or [])
    if not locations and getattr(module, "__file__", None):
        locations = [str(Path(module.__file__).parent)]
    if not locations:
        raise ProductError([f"{where}: {ep.value} is not a package with a product directory"])
    package = module.__name__ if hasattr(module, "__path__") else None
    return load_directory(
        Path(locations[0]), ep.name, package=package, origin=where, reference=ep.name
    )


def load_directory(
    path: Path,
    product_id: str | None = None,
    *,
    package: str | None = None,
    origin: str | None = None,
    reference: str | None = None,
) -> Product:
    """Read and check a product directory; raise :class:`ProductError` listing
    every problem. ``package``: import ``hookspecs.py`` as ``<package>.hookspecs``
    (an installed product) instead of from its file."""
    product = _Reader(path, product_id or path.resolve().name, package, origin).read()
    return replace(product, reference=reference or str(path.resolve()))


class _Reader:
    def __init__(
        self, root: Path, product_id: str, package: str | None, origin: str | None
    ) -> None:
        self.root = root
        self.id = product_id
        self.package = package
        self.origin = origin or str(root)
        self.problems: list[str] = []

    def problem(self, file: Path | str, field: str, message: str) -> None:
        self.problems.append(f"{file}: {field}: {message}")

    def read(self) -> Product:
        if not self.root.is_dir():
            raise ProductError([f"{self.root}: not a directory"])
        head = self._product_toml()
        released = self._released(head.get("releases", ()))
        planned = self._planned(released)
        self._history(released)
        modules = self._hookspecs(head.get("version"), released)
        demo = self._demo()
        if self.problems:
            raise ProductError(self.problems)
        return Product(
            id=self.id,
            name=head["name"],
            version=head["version"],
            # Tailor's own hooks: those of the hook API each release names, added
            # here (after the history checks, which are in product versions) so
            # every use of the product sees complete manifests
            releases=tuple(
                with_tailor_points(m, tailor_extension_points) for m in released.values()
            ),
            planned=tuple(with_tailor_points(m, tailor_extension_points) for m in planned),
            hookspec_modules=tuple(modules),
            origin=self.origin,
            demo=demo,
        )

    def _demo(self) -> DemoData:
        file = self.root / DEMO_FILE
        if not file.exists():
            return DemoData()
        data = self._toml(file)
        if data is None:
            return DemoData()
        try:
            return demo_from_dict(data)
        except InvalidInputError as exc:
            self.problem(file, exc.field, exc.message.split(": ", 1)[-1])
            return DemoData()

    # -- product.toml ----------------------------------------------------------------
    def _product_toml(self) -> dict[str, Any]:
        file = self.root / PRODUCT_FILE
        data = self._toml(file)
        if data is None:
            return {}
        out: dict[str, Any] = {}
        unknown = set(data) - PRODUCT_FIELDS
        if unknown:
            self.problem(
                file,
                ", ".join(sorted(unknown)),
                f"unknown field(s) (known: {', '.join(sorted(PRODUCT_FIELDS))})",
            )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problem(file, "name", 'required: the product\'s name, e.g. name = "Acme ERP"')
        else:
            out["name"] = name.strip()
        releases = data.get("releases")
        versions: list[str] = []
        if not isinstance(releases, list) or not releases:
            self.problem(
                file,
                "releases",
                'required: the released versions, oldest first, e.g. ["4.0", "4.1"]',
            )
        else:
            previous: Version | None = None
            for i, item in enumerate(releases):
                parsed = self._version(file, f"releases[{i}]", item)
                if parsed is None:
                    continue
                if previous is not None and parsed <= previous:
                    self.problem(
                        file,
                        f"releases[{i}]",
                        f"{item!r} is not after {versions[-1]!r}: list releases oldest first, "
                        "each once",
                    )
                    continue
                previous = parsed
                versions.append(item)
            out["releases"] = versions
        version = data.get("version")
        if version is None:
            self.problem(file, "version", "required: the release the running code implements")
        elif self._version(file, "version", version) is not None:
            if versions and version not in versions:
                self.problem(
                    file,
                    "version",
                    f"{version!r} is not in releases ({', '.join(versions)}): the running "
                    "code's release must be a released one",
                )
            out["version"] = version
        return out

    def _version(self, file: Path, field: str, value: Any) -> Version | None:
        if not isinstance(value, str):
            self.problem(file, field, f'{value!r} must be a version string such as "4.2"')
            return None
        try:
            return Version(value)
        except ValueError:  # InvalidVersion, or a segment beyond the int-string limit
            self.problem(file, field, f"{value!r} is not a PEP 440 version (e.g. '4.2', '5.0rc1')")
            return None

    def _toml(self, file: Path) -> dict[str, Any] | None:
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            self.problem(file, "-", "missing file")
            return None
        except OSError as exc:
            self.problem(file, "-", f"cannot read: {exc.strerror or exc}")
            return None
        if len(raw) > MAX_BYTES:
            self.problem(file, "-", f"larger than {MAX_BYTES} bytes")
            return None
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.problem(file, "-", "not UTF-8 text")
        except tomllib.TOMLDecodeError as exc:
            self.problem(file, "-", f"not valid TOML: {exc}")
        except RecursionError:
            self.problem(file, "-", "not valid TOML: nested too deeply")
        return None

    # -- release manifests ----------------------------------------------------------
    def _manifest(self, file: Path, version: str | None, status: str) -> ReleaseManifest | None:
        data = self._toml(file)
        if data is None:
            return None
        data = dict(data)
        try:
            check_schema(data)
        except InvalidInputError as exc:
            self.problem(file, exc.field, exc.message.split(": ", 1)[-1])
            return None
        declared_status = data.setdefault("status", status)
        if declared_status != status:
            self.problem(
                file,
                "status",
                f"{declared_status!r}: files under {file.parent.name}/ are {status!r}",
            )
            return None
        api = data.setdefault("tailor_hook_api", HOOK_API)
        try:
            known_hook_api(api)
        except InvalidInputError as exc:
            self.problem(file, exc.field, exc.message.split(": ", 1)[-1])
            return None
        points = data.get("extension_points", [])
        if isinstance(points, list):
            # Tailor's own hooks come from the hook API the release names (added
            # when it is registered), never from the file; the product's carry its id
            listed = [str(e["name"]) for e in points if _is_tailor_entry(e)]
            for message in foreign_tailor_hooks(listed, api):
                self.problem(file, "extension_points", message)
            data["extension_points"] = [
                {**e, "source": self.id} if isinstance(e, dict) else e
                for e in points
                if not _is_tailor_entry(e)
            ]
        try:
            manifest = ReleaseManifest.from_dict(data)
        except InvalidInputError as exc:
            self.problem(file, exc.field, exc.message.split(": ", 1)[-1])
            return None
        if version is not None and manifest.version != version:
            self.problem(
                file, "version", f"{manifest.version!r}, but the file is for release {version!r}"
            )
            return None
        return manifest

    def _released(self, versions: Sequence[str]) -> dict[str, ReleaseManifest]:
        folder = self.root / "releases"
        out: dict[str, ReleaseManifest] = {}
        for version in versions:
            manifest = self._manifest(folder / f"{version}.toml", version, RELEASED)
            if manifest is not None:
                out[version] = manifest
        if folder.is_dir():
            for file in sorted(folder.glob("*.toml")):
                if file.stem not in versions:
                    self.problem(
                        file,
                        "-",
                        f"release {file.stem!r} is not listed in {PRODUCT_FILE} releases "
                        "(list it, or move the file to planned/)",
                    )
        return out

    def _planned(self, released: dict[str, ReleaseManifest]) -> list[ReleaseManifest]:
        folder = self.root / "planned"
        if not folder.is_dir():
            return []
        last = max((Version(v) for v in released), default=None)
        out = []
        for file in sorted(folder.glob("*.toml")):
            manifest = self._manifest(file, None, PLANNED)
            if manifest is None:
                continue
            if manifest.version != file.stem:
                self.problem(file, "version", f"{manifest.version!r} does not match the file name")
            elif manifest.version in released:
                self.problem(file, "version", f"{manifest.version} is already released")
            elif last is not None and manifest.parsed <= last:
                self.problem(
                    file, "version", f"{manifest.version} is not after the last release {last}"
                )
            else:
                out.append(manifest)
        return sorted(out, key=lambda m: m.parsed)

    def _history(self, released: dict[str, ReleaseManifest]) -> None:
        """Each setting and extension point must have one lifecycle across the
        releases: listed from ``added`` until ``removed`` (or a rename), never
        coming back. A key whose definition changes (a retype) is removed in one
        release and added again in it: two lifecycles, (key, added) each."""
        ordered = list(released.values())
        for kind, entries in (
            ("settings", lambda m: {(d.key, d.added): d for d in m.settings}),
            ("extension_points", lambda m: {(p.name, p.added): p for p in m.extension_points}),
        ):
            per_release = [entries(m) for m in ordered]
            for ident in sorted({i for found in per_release for i in found}, key=str):
                self._one_history(kind, ident, ordered, per_release)

    def _one_history(
        self,
        kind: str,
        ident: tuple[str, str | None],
        ordered: list[ReleaseManifest],
        per_release: list[dict[Any, Any]],
    ) -> None:
        name, added = ident
        present = [i for i, found in enumerate(per_release) if ident in found]
        first = present[0]

        def file(i: int) -> Path:
            return self.root / "releases" / f"{ordered[i].version}.toml"

        if added is not None:
            for i in range(first):
                if ordered[i].parsed >= Version(added):
                    self.problem(
                        file(i),
                        f"{kind}[{name!r}]",
                        f"missing: it is added in {added} (releases/{ordered[first].version}"
                        f".toml), so release {ordered[i].version} must list it",
                    )
                    break
        for i in present:
            if i != first and i - 1 not in present:
                self.problem(
                    file(i),
                    f"{kind}[{name!r}]",
                    f"comes back after release {ordered[i - 1].version} dropped it",
                )
            if i + 1 == len(ordered) or i + 1 in present:
                continue
            gone = ordered[i + 1]
            removed = getattr(per_release[i][ident], "removed", None)
            renamed = kind == "settings" and name in gone.renames
            if (removed is None or Version(removed) > gone.parsed) and not renamed:
                self.problem(
                    file(i + 1),
                    f"{kind}[{name!r}]",
                    f"missing: release {ordered[i].version} lists it (added {added}), and "
                    f"neither sets 'removed' by {gone.version} nor does {gone.version} "
                    "rename it",
                )

    # -- hookspecs.py --------------------------------------------------------------
    def _hookspecs(
        self, version: str | None, released: dict[str, ReleaseManifest]
    ) -> list[ModuleType]:
        file = self.root / HOOKSPECS_FILE
        current = released.get(version) if isinstance(version, str) else None
        declared = {p.name: p for p in current.extension_points} if current else {}
        if not file.is_file():
            for name in declared:
                self.problem(
                    self.root / "releases" / f"{version}.toml",
                    f"extension_points[{name!r}]",
                    f"declared for the running release, but there is no {HOOKSPECS_FILE} "
                    "defining its hookspec",
                )
            return []
        try:
            module = self._import_hookspecs(file)
        except Exception as exc:
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
            at = f" (line {frames[-1].lineno})" if frames else ""
            self.problem(file, "import", f"{type(exc).__name__}: {exc}{at}")
            return []
        points: dict[str, ExtensionPoint] = {}
        for function in spec_functions(module):
            try:
                point = extension_point(function, self.id)
            except Exception as exc:
                self.problem(file, function.__name__, f"unreadable hookspec: {exc}")
                continue
            if point.name.startswith(TAILOR_PREFIX):
                self.problem(
                    file, point.name, f"the prefix {TAILOR_PREFIX!r} is reserved for Tailor's hooks"
                )
            elif point.added is None:
                self.problem(
                    file, point.name, "no lifecycle: add @lifecycle(added=...) under @hookspec"
                )
            else:
                points[point.name] = point
        if current is None:
            return [module]
        where = self.root / "releases" / f"{version}.toml"
        v = current.parsed
        for name, point in points.items():
            if not point.defined_in(v):
                if name in declared:
                    self.problem(
                        file, name, f"its lifecycle excludes the running release {version}"
                    )
                continue
            listed = declared.get(name)
            if listed is None:
                self.problem(
                    where,
                    f"extension_points[{name!r}]",
                    f"missing: {HOOKSPECS_FILE} defines it for release {version}",
                )
                continue
            for attr in ("params", "added", "deprecated", "removed", "replacement", "stability"):
                if getattr(listed, attr) != getattr(point, attr):
                    self.problem(
                        where,
                        f"extension_points[{name!r}].{attr}",
                        f"{_shown(getattr(listed, attr))} contradicts {HOOKSPECS_FILE} "
                        f"({_shown(getattr(point, attr))})",
                    )
        for name in declared:
            if name not in points:
                self.problem(
                    where,
                    f"extension_points[{name!r}]",
                    f"not defined in {HOOKSPECS_FILE} (the running code has no such hookspec)",
                )
        return [module]

    def _import_hookspecs(self, file: Path) -> ModuleType:
        if self.package is not None:
            return importlib.import_module(f"{self.package}.hookspecs")
        ident = re.sub(r"\W", "_", self.id)
        name = f"_tailor_product_{ident}_hookspecs"
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module


def _is_tailor_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and str(entry.get("name", "")).startswith(TAILOR_PREFIX)


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(value) + ")"
    return repr(value)
