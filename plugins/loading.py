"""Finding and loading customizations, refusing (never crashing on) broken ones.

Sources: the repository's ``customizations/`` directory, the directories listed in
``TAILOR_CUSTOMIZATIONS_PATH`` (``os.pathsep`` separated; each either one
customization or a directory of them), and the entry-point group
``tailor.customizations`` (whose value names the customization's module; its
``customization.toml`` sits next to it).

:func:`inspect_customization` checks one package directory and reports every
problem at once: manifest fields, import errors (with a traceback summary),
unknown hooks, parameters a hookspec lacks, a ``requires`` that excludes the
running release. It imports the code (that is how hooks are found) but registers
nothing.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
import types
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy
from packaging.version import Version

from core.model.customizations import CustomizationManifest, HookUse, Registration
from plugins.catalog import Catalog
from plugins.hookspecs import HOOK_API, PROJECT
from plugins.introspection import (
    IMPL_MARKER,
    PRIVATE_PACKAGE,
    hook_classes,
    hook_functions,
    hook_name,
    hook_use,
    merge_hooks,
    parameters,
)
from plugins.manifest import (
    DEFAULT_MODULE,
    MANIFEST_FILE,
    ParsedManifest,
    Problem,
    parse_manifest,
    product_problem,
    specifier,
)

if TYPE_CHECKING:
    from plugins.archive import PackageTree
    from plugins.evidence import PackageEvidence

CUSTOMIZATIONS_GROUP = "tailor.customizations"
PATH_ENV = "TAILOR_CUSTOMIZATIONS_PATH"


@dataclass(frozen=True)
class Source:
    """Where a customization package directory was found."""

    path: Path
    origin: str  # "customizations/", "TAILOR_CUSTOMIZATIONS_PATH", "entry point <name>"


@dataclass
class Loaded:
    """One customization as the runtime sees it: loaded, or refused with reasons."""

    source: Source
    manifest: CustomizationManifest | None = None
    module: types.ModuleType | None = None
    hooks: tuple[HookUse, ...] = ()
    setting_keys: tuple[str, ...] = ()
    problems: list[Problem] = field(default_factory=list)
    #: deprecation warnings raised while registering (e.g. a deprecated hook)
    warnings: list[str] = field(default_factory=list)
    #: the module inside the package holding the hooks ("hooks", "__init__", ...)
    hooks_module: str = "hooks"
    #: the product's setting categories (what a dotted string must start with to
    #: count as a setting key; empty: any)
    categories: frozenset[str] = frozenset()
    #: the package's static evidence (the one key finder's answer), analyzed once
    evidence: PackageEvidence | None = None

    @property
    def name(self) -> str:
        return self.manifest.name if self.manifest else self.source.path.name

    @property
    def package(self) -> str:
        """The package's identity in the registry: its directory name."""
        return self.source.path.name

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    def analyze(self) -> PackageEvidence:
        """The package's static evidence, read (never imported) once: the hooks
        the import found get their file:line and structure from it, and the
        setting keys are its keys."""
        if self.evidence is None:
            from plugins.evidence import analyze_package

            self.evidence = analyze_package(self.source.path, categories=self.categories)
            self.hooks = tuple(merge_hooks(self.hooks, self.evidence))
            self.setting_keys = self.evidence.keys
        return self.evidence

    def registration(
        self, tree: PackageTree | None = None, zipped: bytes | None = None
    ) -> Registration:
        """What publishing this package stores: its manifest, what the checks found,
        and the package itself (its canonical zip and tree hash). ``tree`` and
        ``zipped``: the package as the publish already read and zipped it (an
        upload), never read or built twice; None: read from its folder, zipped here."""
        if self.manifest is None or self.refused:
            raise ValueError(f"{self.name} was refused; it has no registration")
        from plugins import archive

        evidence = self.analyze()
        if tree is None:
            tree = archive.tree_from_directory(self.source.path)
        return Registration(
            sha256=tree.sha256,
            archive=archive.build_zip(tree) if zipped is None else zipped,
            hooks_module=self.hooks_module,
            manifest=self.manifest,
            hooks=self.hooks,
            setting_keys=self.setting_keys,
            package=self.package,
            # static evidence: read (never imported) from every module, with file:line
            references=evidence.references,
        )


def default_directory() -> Path:
    """The repository's sample ``customizations/`` directory (located, not imported:
    the server process runs no customization code)."""
    spec = importlib.util.find_spec("customizations")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the sample 'customizations' package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _package_dirs(root: Path) -> list[Path]:
    if (root / MANIFEST_FILE).is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST_FILE).is_file())


def discover(
    directories: Iterable[Path] | None = None, env: str | None = None, use_entry_points: bool = True
) -> list[Source]:
    """Every customization directory from the three sources, in that order."""
    found: list[Source] = []
    dirs = [default_directory()] if directories is None else list(directories)
    for d in dirs:
        found.extend(Source(p, f"{d}") for p in _package_dirs(d))
    raw = os.environ.get(PATH_ENV, "") if env is None else env
    for entry in filter(None, raw.split(os.pathsep)):
        found.extend(Source(p, PATH_ENV) for p in _package_dirs(Path(entry)))
    if use_entry_points:
        for ep in sorted(entry_points(group=CUSTOMIZATIONS_GROUP), key=lambda e: e.name):
            spec = importlib.util.find_spec(ep.module.split(".")[0])
            locations = list(spec.submodule_search_locations or []) if spec else []
            if spec and spec.origin and not locations:
                locations = [str(Path(spec.origin).parent)]
            for loc in locations:
                found.extend(Source(p, f"entry point {ep.name}") for p in _package_dirs(Path(loc)))
    return found


def _module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    ident = re.sub(r"\W", "_", path.name)
    return f"{PRIVATE_PACKAGE}{ident}_{digest}"


def _traceback_summary(exc: BaseException, package: Path) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if str(package.resolve()) in str(Path(f.filename).resolve())]
    where = ""
    if inside:
        last = inside[-1]
        where = f" (at {Path(last.filename).name}:{last.lineno}: {(last.line or '').strip()})"
    return f"{type(exc).__name__}: {exc}{where}"


def import_package(path: Path, module: str) -> types.ModuleType:
    """Import ``path/<module>.py`` as part of the package ``path`` under a private
    name, fresh every time (a re-check sees edited code)."""
    name = _module_name(path)
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]
    init = path / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(path)]
        )
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    else:
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        sys.modules[name] = package
    if module == "__init__":
        return package
    return importlib.import_module(f"{name}.{module}")


def check_hooks(module: types.ModuleType, catalog: Catalog, file: str) -> list[Problem]:
    """Unknown hooks and parameters a hookspec lacks, every one of them."""
    problems = []
    for attr, function in hook_functions(module):
        hook = hook_name(attr, function)
        point = catalog.get(hook)
        if point is None:
            known = ", ".join(sorted(p.name for p in catalog.all()))
            problems.append(
                Problem(
                    file,
                    hook,
                    f"unknown hook {hook!r}: no extension point of that name (known: {known})",
                )
            )
            continue
        if point.is_tailor and not point.defined_in(Version(HOOK_API)):
            problems.append(
                Problem(
                    file,
                    hook,
                    f"{hook!r} is not in Tailor hook API {HOOK_API}, the one this Tailor runs "
                    f"(it is in API {point.added}"
                    + (f" to {int(point.removed) - 1}" if point.removed else "")
                    + "): nothing would call it"
                    + (f"; implement {point.replacement}" if point.replacement else ""),
                )
            )
            continue
        for param in parameters(function):
            if param not in point.params:
                problems.append(
                    Problem(
                        file,
                        f"{hook}({param})",
                        f"hook {hook!r} has no parameter "
                        f"{param!r}; its parameters are ({', '.join(point.params)})",
                    )
                )
    return problems


def unsupported_forms(module: types.ModuleType, file: str) -> list[Problem]:
    """What the out-of-process runtime does not run, refused here with a reason
    rather than at call time: hook wrappers, one hook implemented twice, classes
    that cannot be instantiated without arguments."""
    problems = []
    seen: dict[str, str] = {}
    for attr, function in hook_functions(module):
        opts = getattr(function, IMPL_MARKER, None) or {}
        hook = hook_name(attr, function)
        where = getattr(function, "__qualname__", attr)
        if opts.get("wrapper") or opts.get("hookwrapper"):
            problems.append(
                Problem(
                    file,
                    f"{hook}({where})",
                    "hook wrappers (wrapper=True / hookwrapper=True) are not supported: each "
                    "customization runs in an isolated worker and cannot wrap the others' "
                    "calls; return values from a plain @hookimpl instead",
                )
            )
        elif inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
            problems.append(
                Problem(
                    file,
                    f"{hook}({where})",
                    "async hook implementations are not supported: hooks are called "
                    "synchronously in a worker process; use a plain def",
                )
            )
        elif inspect.isgeneratorfunction(function):
            problems.append(
                Problem(
                    file,
                    f"{hook}({where})",
                    "a hook implementation that yields returns a generator, not a value; "
                    "return the value (a list, a dict, ...) instead",
                )
            )
        if hook in seen:
            problems.append(
                Problem(
                    file,
                    f"{hook}({where})",
                    f"{hook} is implemented twice ({seen[hook]} and {where}); keep one",
                )
            )
        seen.setdefault(hook, where)
    for cls in hook_classes(module):
        try:
            cls()
        except Exception as exc:  # consultant code
            problems.append(
                Problem(
                    file,
                    cls.__name__,
                    f"class {cls.__name__} has @hookimpl methods but cannot be created "
                    f"without arguments ({type(exc).__name__}: {exc})",
                )
            )
    return problems


def plugin_object(module: types.ModuleType) -> object:
    """What pluggy registers for one customization: the module itself, or, when
    it defines classes with ``@hookimpl`` methods, a namespace holding the
    module's hook functions and the bound methods of one instance per class."""
    classes = hook_classes(module)
    if not classes:
        return module
    namespace = types.SimpleNamespace()
    for attr, obj in vars(module).items():
        if callable(obj) and not isinstance(obj, type) and getattr(obj, IMPL_MARKER, None):
            setattr(namespace, attr, obj)
    for cls in classes:
        instance = cls()
        for attr, member in vars(cls).items():
            function = getattr(member, "__func__", member)
            if callable(function) and getattr(function, IMPL_MARKER, None) is not None:
                setattr(namespace, attr, getattr(instance, attr))
    return namespace


def validate_with_pluggy(
    module: types.ModuleType, name: str, catalog: Catalog, file: str
) -> tuple[list[Problem], list[str]]:
    """Register into a scratch plugin manager, as the runtime will: pluggy's own
    validation (PluginValidationError, check_pending) and deprecation warnings."""
    pm = new_plugin_manager(catalog)
    problems: list[Problem] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pm.register(plugin_object(module), name=name)
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            problems.append(Problem(file, "hooks", str(exc)))
    return problems, [str(w.message) for w in caught]


def new_plugin_manager(catalog: Catalog) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    for spec in catalog.modules:
        pm.add_hookspecs(spec.module)
    return pm


def read_manifest(
    path: Path, release: str, parsed: ParsedManifest | None = None
) -> tuple[CustomizationManifest | None, list[Problem], str]:
    """What a customization's files say without running any of its code: the
    manifest, its problems (``requires`` checked against ``release``) and the
    module holding the hooks. Pure file reads: the server calls this itself,
    so a package's identity never depends on what its import-time code does.
    ``parsed``: the manifest as the caller already parsed it (a publish parses
    the upload's before it writes anything), taken as it is, not parsed again."""
    manifest_file = path / MANIFEST_FILE
    problems: list[Problem] = []
    if parsed is None:
        parsed, problems = parse_manifest(manifest_file)
    # a broken manifest does not stop the code checks: every problem at once
    module_name = parsed.module if parsed is not None else DEFAULT_MODULE
    manifest = parsed.manifest if parsed is not None else None
    if manifest is not None and not specifier(manifest.requires).contains(
        Version(release), prereleases=True
    ):
        problems.append(
            Problem(
                str(manifest_file),
                "requires",
                f"{manifest.requires!r} excludes the running release {release}",
            )
        )
    if (
        module_name == DEFAULT_MODULE
        and not (path / f"{DEFAULT_MODULE}.py").is_file()
        and (path / "__init__.py").is_file()
    ):
        module_name = "__init__"  # a package with its hooks in __init__.py
    return manifest, problems, module_name


def inspect_customization(
    source: Source | Path,
    catalog: Catalog,
    release: str | None = None,
    product: str | None = None,
    *,
    analyze: bool = True,
) -> Loaded:
    """Check one customization directory; everything wrong lands in ``problems``.
    ``analyze``: also read its static evidence (hooks' locations, setting keys);
    a checking worker leaves that to the server, which trusts only its own.
    ``release``: the product release to check ``requires`` against (None: the
    catalog's, the running product's). ``product``: the served product's id (None:
    the catalog's); a customization naming another is refused before its code is
    imported."""
    release = release or catalog.release
    product = product or catalog.product
    if release is None:
        raise ValueError("no product release to check against: pass release=")
    if isinstance(source, Path):
        source = Source(source, str(source.parent))
    loaded = Loaded(source)
    path = source.path
    manifest_file = path / MANIFEST_FILE
    if not path.is_dir():
        loaded.problems.append(Problem(str(path), "-", "not a directory"))
        return loaded
    manifest, problems, module_name = read_manifest(path, release)
    loaded.manifest = manifest
    other = product_problem(manifest, product, str(manifest_file)) if manifest else None
    if other is not None:  # another product's: its code is not imported here
        loaded.problems.append(other)
        return loaded
    loaded.problems.extend(problems)
    loaded.hooks_module = module_name
    module_file = path / f"{module_name}.py"
    if not module_file.is_file():
        loaded.problems.append(
            Problem(str(manifest_file), "module", f"{module_file.name} not found in {path}")
        )
        return loaded
    try:
        module = import_package(path, module_name)
    except (Exception, SystemExit) as exc:  # consultant code: anything may happen
        loaded.problems.append(Problem(str(module_file), "import", _traceback_summary(exc, path)))
        return loaded
    file = str(module_file)
    hook_problems = check_hooks(module, catalog, file)
    if not hook_functions(module):
        hook_problems.append(
            Problem(
                file,
                "hooks",
                "no @hookimpl function or class method found: nothing to run",
            )
        )
    hook_problems.extend(unsupported_forms(module, file))
    loaded.problems.extend(hook_problems)
    if not hook_problems:
        more, warned = validate_with_pluggy(module, loaded.name, catalog, file)
        loaded.problems.extend(more)
        loaded.warnings.extend(warned)
    loaded.module = module
    loaded.hooks = tuple(sorted((hook_use(a, f) for a, f in hook_functions(module)), key=_hook))
    loaded.categories = frozenset(catalog.setting_categories or ())
    if analyze:  # in a worker, no: the server analyzes the package itself, once
        loaded.analyze()
    return loaded


def _hook(use: HookUse) -> str:
    return use.hook


def load_all(
    sources: Sequence[Source], catalog: Catalog, release: str | None = None
) -> list[Loaded]:
    """Inspect every source (in this process: for a worker, or a test)."""
    return claim_names([inspect_customization(s, catalog, release) for s in sources])


def claim_names(inspected: Sequence[Loaded]) -> list[Loaded]:
    """The second customization claiming a name (or the same directory listed
    twice) is refused; the first keeps it."""
    result: list[Loaded] = []
    by_name: dict[str, Loaded] = {}
    for loaded in inspected:
        source = loaded.source
        first = by_name.get(loaded.name) if loaded.manifest else None
        if first is not None:
            where = str(source.path / MANIFEST_FILE)
            if first.source.path.resolve() == source.path.resolve():
                msg = (
                    f"registered twice: {source.path} is listed by {first.source.origin} and "
                    f"{source.origin}; the first is used"
                )
            else:
                msg = f"name collision: {loaded.name!r} is already loaded from {first.source.path}"
            loaded.problems.insert(0, Problem(where, "name", msg))
        elif loaded.manifest is not None and not loaded.refused:
            by_name[loaded.name] = loaded
        result.append(loaded)
    return result
