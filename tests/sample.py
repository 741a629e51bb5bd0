"""The sample product (Acme ERP), loaded as any product plugin is: from its
directory (``products/acme_erp``), through :mod:`plugins.product`."""

from __future__ import annotations

from pathlib import Path

from core.model.extension_points import ExtensionPoint
from core.model.manifest import ReleaseManifest
from plugins.catalog import Catalog, tailor_extension_points
from plugins.product import load_directory

ROOT = Path(__file__).resolve().parents[1]
ACME_DIR = ROOT / "products" / "acme_erp"
ACME = load_directory(ACME_DIR, "acme_erp", package="products.acme_erp")
ACME_CATALOG = Catalog.for_product(ACME)
#: Acme's planned 3.0 (``products/acme_erp/planned/3.0.toml``) as Tailor registers
#: it: with the tailor_* hooks of the hook API it names (3)
V30_PLANNED = ACME.planned_manifest(ACME.planned[-1], tailor_extension_points)


def acme_manifest(version: str) -> ReleaseManifest:
    """A released Acme version's full manifest (with Tailor's hooks)."""
    return ACME.manifest(version, tailor_extension_points)


def acme_points(version: str) -> list[ExtensionPoint]:
    """Every extension point (Tailor's and Acme's) valid in ``version``: Tailor's
    are those of the hook API the release names."""
    declared = {m.version: m for m in (*ACME.releases, *ACME.planned)}[version]
    return ACME_CATALOG.for_version(version, declared.tailor_hook_api)
