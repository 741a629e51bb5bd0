"""Register the running product's releases (history, current and planned) in the
database."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.model.auth import Principal
from core.model.extension_points import ExtensionPoint
from core.model.manifest import PLANNED, ReleaseManifest
from core.model.product import Product
from core.store.services import Services

#: gives Tailor's own extension points valid in a version (the plugin catalog
#: supplies it; ``core`` does not import pluggy)
ExtensionPointSource = Callable[[str], Sequence[ExtensionPoint]]

BOOTSTRAP = Principal.system("bootstrap")


def _none(_version: str) -> Sequence[ExtensionPoint]:
    return ()


def product_manifest(
    product: Product, version: str | None = None, extension_points: ExtensionPointSource = _none
) -> ReleaseManifest:
    """The manifest of one of the product's released versions (default: the running
    one): its declared catalog plus Tailor's own hooks in that version."""
    return product.manifest(version or product.version, extension_points)


async def sync_product_releases(
    services: Services, product: Product, extension_points: ExtensionPointSource = _none
) -> list[str]:
    """Register every release of the product's history that is missing (a planned
    one the running code has reached is promoted). Returns the versions added.
    Idempotent."""
    existing = {r.version: r.status for r in await services.releases.list_all(BOOTSTRAP)}
    added = []
    for version in product.release_history:
        if existing.get(version) == PLANNED:
            # the running code has reached a release that was imported as planned
            await services.releases.promote(version, BOOTSTRAP)
        if version not in existing:
            await services.releases.register(
                product_manifest(product, version, extension_points), BOOTSTRAP, exist_ok=True
            )
            added.append(version)
    return added


async def register_planned_releases(
    services: Services, product: Product, extension_points: ExtensionPointSource = _none
) -> list[str]:
    """Register the product's planned releases (``planned/``) that are missing,
    with Tailor's own hooks (``extension_points``) where the file lists none.
    Idempotent; returns the versions added."""
    existing = {r.version for r in await services.releases.list_all(BOOTSTRAP)}
    added = []
    for manifest in product.planned:
        if manifest.version not in existing:
            await services.releases.register(
                product.planned_manifest(manifest, extension_points), BOOTSTRAP, exist_ok=True
            )
            added.append(manifest.version)
    return added
