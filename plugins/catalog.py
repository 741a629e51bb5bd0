"""The extension-point catalog: Tailor's hookspecs plus the host product's (its
product plugin's hookspec modules), read back as
:class:`core.model.extension_points.ExtensionPoint` for any product version."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from core.model.extension_points import ExtensionPoint
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
    ) -> None:
        self.modules = tuple(modules)
        #: the product release the running code implements (None: no product)
        self.release = release
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
        )

    def all(self) -> list[ExtensionPoint]:
        return list(self._points.values())

    def get(self, name: str) -> ExtensionPoint | None:
        return self._points.get(name)

    def for_version(self, version: str) -> list[ExtensionPoint]:
        """The extension points defined in ``version`` (added <= version < removed)."""
        v = Version(version)
        return [p for p in self._points.values() if p.defined_in(v)]


def tailor_extension_points(version: str) -> list[ExtensionPoint]:
    """Tailor's own extension points valid in ``version``: pass this to
    :func:`core.store.bootstrap.sync_product_releases` (the product's come from its
    release manifests)."""
    return Catalog([SpecModule("tailor", hookspecs)]).for_version(version)
