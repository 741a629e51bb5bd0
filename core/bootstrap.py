"""Register the running product's releases (history and current) in the database."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core import product
from core.auth import Principal
from core.extension_points import ExtensionPoint
from core.releases import PLANNED, RELEASED, ReleaseManifest
from core.services import Services

#: gives the extension points valid in a version (the plugin runtime supplies it;
#: ``core`` does not import pluggy)
ExtensionPointSource = Callable[[str], Sequence[ExtensionPoint]]


def _none(_version: str) -> Sequence[ExtensionPoint]:
    return ()


def product_manifest(
    version: str = product.PRODUCT_VERSION, extension_points: ExtensionPointSource = _none
) -> ReleaseManifest:
    """The manifest of one of the product's own releases, from the running code."""
    return ReleaseManifest(
        version=version,
        status=RELEASED,
        settings=tuple(product.product_definitions(version)),
        extension_points=tuple(extension_points(version)),
        supersedes=tuple(product.SUPERSEDES.get(version, ())),
        notes=f"{product.PRODUCT_NAME} {version}",
    )


async def sync_product_releases(
    services: Services, extension_points: ExtensionPointSource = _none
) -> list[str]:
    """Register every release of the product's history that is missing.
    Returns the versions added. Idempotent."""
    existing = {r.version: r.status for r in await services.releases.list(Principal.system())}
    added = []
    for version in product.RELEASE_HISTORY:
        if existing.get(version) == PLANNED:
            # the running code has reached a release that was imported as planned
            await services.releases.promote(version, Principal.system("bootstrap"))
        if version not in existing:
            await services.releases.register(
                product_manifest(version, extension_points),
                Principal.system("bootstrap"),
                exist_ok=True,
            )
            added.append(version)
    return added
