"""The host product whose settings Tailor serves, as one value.

Tailor knows nothing of any one product. A product is declared outside Tailor's
code (a directory named by ``TAILOR_PRODUCT``, or a package in the entry-point group
``tailor.product``; see :mod:`plugins.product` and ``docs/product.md``), loaded once
at start-up into a :class:`Product` and handed to the app factory and the CLI.

A :class:`Product` is plain data: its name, the release the running code
implements, the catalog manifest of every released version (settings, the
product's own extension points, supersedes, renames), the planned releases, and
the product's hookspec modules (which :mod:`plugins.catalog` reads; ``core`` never
inspects them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType

from core.model.definitions import SettingDefinition
from core.model.demo_data import DemoData
from core.model.errors import NotFoundError
from core.model.extension_points import TAILOR_SOURCE, ExtensionPoint
from core.model.manifest import RELEASED, ReleaseManifest

#: Tailor's own extension points in a hook API ("1", "2", ...); the plugin catalog
#: supplies it (``plugins.catalog.tailor_extension_points``): ``core`` does not
#: import pluggy
TailorPoints = Callable[[str], Sequence[ExtensionPoint]]


@dataclass(frozen=True)
class Product:
    """One host product, as declared by its product plugin."""

    #: identifier: the directory's or the entry point's name; the ``source`` of the
    #: product's extension points in manifests
    id: str
    name: str
    #: the release the running code implements
    version: str
    #: the catalog of each released version, oldest first: the product's own
    #: extension points plus the tailor_* hooks of the hook API it names (the
    #: product plugin loader adds them)
    releases: tuple[ReleaseManifest, ...]
    #: releases announced but not running anywhere yet, oldest first
    planned: tuple[ReleaseManifest, ...] = ()
    #: the product's hookspec modules (pluggy ``@hookspec`` functions with lifecycle)
    hookspec_modules: tuple[ModuleType, ...] = ()
    #: where it was declared (a directory, or "entry point <name>")
    origin: str = ""
    #: the ``TAILOR_PRODUCT`` value that finds it again (a directory or a name)
    reference: str = ""
    #: demo tenants and the generated fleet's profile (``demo.toml``; optional)
    demo: DemoData = field(default_factory=DemoData)
    _by_version: dict[str, ReleaseManifest] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._by_version.update({m.version: m for m in self.releases})

    @property
    def release_history(self) -> tuple[str, ...]:
        return tuple(m.version for m in self.releases)

    def declared(self, version: str) -> ReleaseManifest:
        """The product's declared catalog of a released version."""
        manifest = self._by_version.get(version)
        if manifest is None:
            raise NotFoundError(
                "release",
                version,
                f"{self.name} releases: {', '.join(self.release_history)}",
            )
        return manifest

    def definitions(self, version: str) -> list[SettingDefinition]:
        """The setting definitions valid in a released ``version``, sorted by key."""
        return sorted(self.declared(version).settings, key=lambda d: d.key)

    def supersedes(self, version: str) -> tuple[str, ...]:
        return self.declared(version).supersedes

    @property
    def setting_categories(self) -> frozenset[str]:
        """First segments of every setting key the product has ever had."""
        return frozenset(
            d.key.split(".", 1)[0] for m in (*self.releases, *self.planned) for d in m.settings
        )

    def manifest(self, version: str, tailor_points: TailorPoints | None = None) -> ReleaseManifest:
        """The full manifest of a released version: the declared catalog plus
        Tailor's own extension points of the hook API it names (``tailor_points``
        gives them; the product's numbering plays no part in them)."""
        declared = self.declared(version)
        return replace(
            with_tailor_points(declared, tailor_points),
            status=RELEASED,
            notes=declared.notes or f"{self.name} {version}",
        )

    def planned_manifest(
        self, manifest: ReleaseManifest, tailor_points: TailorPoints | None = None
    ) -> ReleaseManifest:
        """A planned release as Tailor registers it: its catalog plus Tailor's own
        hooks of the hook API it names."""
        return with_tailor_points(manifest, tailor_points)


def with_tailor_points(
    manifest: ReleaseManifest, tailor_points: TailorPoints | None
) -> ReleaseManifest:
    """``manifest`` with Tailor's own extension points replaced by those of its
    hook API (``tailor_points(manifest.tailor_hook_api)``); unchanged when either
    is missing."""
    if tailor_points is None or manifest.tailor_hook_api is None:
        return manifest
    own = [p for p in tailor_points(manifest.tailor_hook_api) if _is_tailor(p)]
    return replace(
        manifest,
        extension_points=(*own, *(p for p in manifest.extension_points if not _is_tailor(p))),
    )


def _is_tailor(point: ExtensionPoint) -> bool:
    return point.source == TAILOR_SOURCE
