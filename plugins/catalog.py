"""The extension-point catalog: Tailor's hookspecs plus the host product's (its
product plugin's hookspec modules), read back as
:class:`core.model.extension_points.ExtensionPoint`: the product's for any product
version, Tailor's own for any Tailor hook API (``plugins.hookspecs``)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from core.model.errors import InvalidInputError
from core.model.extension_points import ExtensionPoint
from core.model.manifest import ReleaseManifest, parse_hook_api
from plugins import hookspecs
from plugins.lifecycle import lifecycle_of

if TYPE_CHECKING:
    # a type only: at run time core.model.product pulls in core.store.releases and SQLAlchemy,
    # which the worker process (that imports this module) must not load
    from core.model.product import Product

#: extra hookspec modules (beyond the product plugin's), e.g. an add-on's
HOOKSPECS_GROUP = "tailor.hookspecs"
log = logging.getLogger("tailor.plugins")


@dataclass(frozen=True)
class SpecModule:
    """A hookspec module and who declares it ("tailor" or the entry point's name)."""

    source: str
    module: ModuleType


def host_spec_modules() -> list[SpecModule]:
    """Hookspec modules installed through the entry-point group ``tailor.hookspecs``.
    One that fails to load is logged and skipped."""
    found = []
    for ep in sorted(entry_points(group=HOOKSPECS_GROUP), key=lambda e: e.name):
        try:
            module = ep.load()
        except Exception as exc:  # a broken host module must not stop Tailor
            log.error("hookspec entry point %s (%s) failed to load: %s", ep.name, ep.value, exc)
            continue
        if isinstance(module, ModuleType):
            found.append(SpecModule(ep.name, module))
    return found


def spec_functions(module: ModuleType) -> list[Callable[..., Any]]:
    """The hookspec functions of ``module`` (those ``@hookspec`` marked)."""
    marker = f"{hookspecs.PROJECT}_spec"
    return [
        obj
        for _name, obj in sorted(vars(module).items())
        if inspect.isfunction(obj) and hasattr(obj, marker)
    ]


def extension_point(function: Callable[..., Any], source: str) -> ExtensionPoint:
    """Read a hookspec function's signature, docstring and lifecycle."""
    meta = lifecycle_of(function)
    opts = getattr(function, f"{hookspecs.PROJECT}_spec", {}) or {}
    doc = inspect.getdoc(function) or ""
    return ExtensionPoint(
        name=function.__name__,
        params=tuple(inspect.signature(function).parameters),
        description=doc.split("\n", 1)[0],
        added=meta.added if meta else None,
        deprecated=meta.deprecated if meta else None,
        removed=meta.removed if meta else None,
        replacement=meta.replacement if meta else None,
        stability=meta.stability if meta else "stable",
        firstresult=bool(opts.get("firstresult", False)),
        source=source,
    )


class Catalog:
    """Every extension point the running code declares, with lifecycle."""

    def __init__(
        self,
        modules: Sequence[SpecModule],
        release: str | None = None,
        setting_categories: frozenset[str] | None = None,
        product: str | None = None,
    ) -> None:
        self.modules = tuple(modules)
        #: the product release the running code implements (None: no product)
        self.release = release
        #: the served product's id (None: no product); a customization naming
        #: another product is refused (``plugins.loading``)
        self.product = product
        #: first segments of the product's setting keys (None: any dotted key)
        self.setting_categories = setting_categories
        points = [
            extension_point(f, m.source) for m in self.modules for f in spec_functions(m.module)
        ]
        self._points = {p.name: p for p in points}

    @classmethod
    def installed(cls, extra: Iterable[SpecModule] = ()) -> Catalog:
        """Tailor's hookspecs, those of the entry-point group ``tailor.hookspecs``
        and ``extra``: no product (see :meth:`for_product`)."""
        return cls([SpecModule("tailor", hookspecs), *host_spec_modules(), *extra])

    @classmethod
    def for_product(cls, product: Product, extra: Iterable[SpecModule] = ()) -> Catalog:
        """Tailor's hookspecs plus the product plugin's, for its running release."""
        return cls(
            [
                SpecModule("tailor", hookspecs),
                *(SpecModule(product.id, m) for m in product.hookspec_modules),
                *host_spec_modules(),
                *extra,
            ],
            release=product.version,
            setting_categories=product.setting_categories,
            product=product.id,
        )

    def all(self) -> list[ExtensionPoint]:
        return list(self._points.values())

    def get(self, name: str) -> ExtensionPoint | None:
        return self._points.get(name)

    def for_version(self, version: str, hook_api: str | None = None) -> list[ExtensionPoint]:
        """The extension points defined in product ``version`` (added <= version <
        removed); Tailor's own are those of ``hook_api`` (default: the running
        Tailor's), whatever the product version."""
        v = Version(version)
        api = Version(hook_api or hookspecs.HOOK_API)
        return [p for p in self._points.values() if p.defined_in(api if p.is_tailor else v)]


@functools.cache
def _tailor_catalog() -> Catalog:
    """Tailor's own hooks (static: read once)."""
    return Catalog([SpecModule("tailor", hookspecs)])


def hook_apis() -> tuple[str, ...]:
    """Every Tailor hook API known to this Tailor, oldest first: "1" up to the
    running one, or beyond it when a hook's lifecycle announces a later one (a
    removal planned for API 3 makes API 3 known)."""
    named = [int(hookspecs.HOOK_API)]
    for p in _tailor_catalog().all():
        named.extend(int(v) for v in (p.added, p.deprecated, p.removed) if v is not None)
    return tuple(str(n) for n in range(1, max(named) + 1))


def known_hook_api(api: str, field_name: str = "tailor_hook_api") -> str:
    """``api`` if this Tailor knows it, else an input error naming the known ones."""
    parse_hook_api(api, field_name)
    known = hook_apis()
    if api not in known:
        raise InvalidInputError(
            field_name,
            f"{api!r} is not a Tailor hook API this Tailor knows (known: {', '.join(known)}; "
            f"it runs {hookspecs.HOOK_API})",
        )
    return api


def tailor_extension_points(api: str) -> list[ExtensionPoint]:
    """Tailor's own extension points in hook API ``api`` ("1", "2", ...): pass this
    to :func:`core.store.bootstrap.sync_product_releases` (the product's come from
    its release manifests). An unknown API is an input error."""
    v = Version(known_hook_api(api))
    return [p for p in _tailor_catalog().all() if p.defined_in(v)]


def foreign_tailor_hooks(names: Iterable[str], api: str) -> list[str]:
    """Problems for ``tailor_*`` names a manifest lists that hook API ``api`` lacks:
    Tailor's hooks come from the API a release names, never from its file."""
    have = {p.name for p in tailor_extension_points(api)}
    return [
        f"{name} is not a hook of Tailor hook API {api} (its hooks: {', '.join(sorted(have))}): "
        "Tailor's hooks come from tailor_hook_api; name the API that has it, or drop the entry"
        for name in names
        if name not in have
    ]


def _tailor_named(name: str) -> bool:
    return name.startswith(hookspecs.PROJECT + "_")


def with_hook_api(manifest: ReleaseManifest) -> ReleaseManifest:
    """An imported manifest as Tailor registers it: it names a hook API (default:
    the running Tailor's, :data:`plugins.hookspecs.HOOK_API`) and its ``tailor_*``
    extension points are that API's. A ``tailor_*`` entry the API lacks is an
    input error (an exported manifest lists the API's own: accepted)."""
    from core.model.product import with_tailor_points

    api = known_hook_api(manifest.tailor_hook_api or hookspecs.HOOK_API)
    listed = [p.name for p in manifest.extension_points if _tailor_named(p.name)]
    problems = foreign_tailor_hooks(listed, api)
    problems += [
        f"{p.name} has source {p.source!r} (the default) but is not one of Tailor's "
        "tailor_* hooks: set its source to the product's id"
        for p in manifest.extension_points
        if p.is_tailor and not _tailor_named(p.name)
    ]
    if problems:
        raise InvalidInputError("extension_points", "; ".join(problems))
    named = dataclasses.replace(manifest, tailor_hook_api=api)
    result = with_tailor_points(named, tailor_extension_points)
    result.check()
    return result
