"""A planned release that renames (manifest schema 2): Acme ERP 3.1, built from
the planned 3.0 (with Tailor's hooks, as exported) plus

- settings renamed: ``billing.invoice.due_days`` -> ``billing.invoice.payment_days``,
  ``billing.late_fee.rate`` -> ``billing.late_fee.percent``,
  ``ui.table.page_size`` -> ``ui.table.rows_per_page``;
- a product hook renamed: ``acme_invoice_footer`` -> ``acme_invoice_trailer``,
  its parameter ``invoice`` renamed ``document``;
- a retyped setting: ``ui.table.rows_per_page`` is a float, from int (``conversion = "float"``);
- a removed setting: ``shipping.legacy_rates.enabled`` (nothing to rename it to).

The release 3.0 beside it keeps every test's expectations of 3.0 unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.model.manifest import ReleaseManifest
from core.model.manifest_io import dumps
from tests.sample import V30_PLANNED

VERSION = "3.1"
SETTING_RENAMES = {
    "billing.invoice.due_days": "billing.invoice.payment_days",
    "billing.late_fee.rate": "billing.late_fee.percent",
    "ui.table.page_size": "ui.table.rows_per_page",
}
HOOK_RENAMES = {"acme_invoice_footer": "acme_invoice_trailer"}
PARAM_RENAMES = {"acme_invoice_trailer": {"invoice": "document"}}
REMOVED = "shipping.legacy_rates.enabled"
RETYPED = "ui.table.rows_per_page"


def manifest_data() -> dict[str, Any]:
    data = V30_PLANNED.to_dict()
    data["version"] = VERSION
    data["status"] = "planned"
    data["notes"] = "Acme ERP 3.1 (planned, test fixture): renames"
    data["supersedes"] = []
    data.pop("migrations", None)
    settings = []
    for s in data["settings"]:
        s = dict(s)
        if s["key"] == REMOVED or s["key"] in SETTING_RENAMES.values():
            continue
        if s["key"] in SETTING_RENAMES:
            s["key"] = SETTING_RENAMES[s["key"]]
            s["added"] = VERSION
        if s["key"] == RETYPED:  # int -> float, converted
            s["type"] = "float"
            s["default"] = float(s["default"])
            s["previous_type"] = "int"
            s["conversion"] = "float"
        settings.append(s)
    data["settings"] = settings
    points = []
    for p in data["extension_points"]:
        p = dict(p)
        if p["name"] in HOOK_RENAMES:
            p["name"] = HOOK_RENAMES[p["name"]]
            p["params"] = [PARAM_RENAMES[p["name"]].get(x, x) for x in p["params"]]
            p["added"] = VERSION
        points.append(p)
    data["extension_points"] = points
    data["renamed"] = {**data.get("renamed", {}), **SETTING_RENAMES}
    data["renamed_hooks"] = dict(HOOK_RENAMES)
    data["renamed_params"] = {k: dict(v) for k, v in PARAM_RENAMES.items()}
    return data


def manifest() -> ReleaseManifest:
    return ReleaseManifest.from_dict(manifest_data())


def write(directory: Path) -> Path:
    """The 3.1 manifest as a TOML file (schema 2) in ``directory``."""
    path = directory / "3.1.toml"
    path.write_text(dumps(manifest()), encoding="utf-8")
    return path
