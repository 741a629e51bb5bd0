"""Tailor's extension points across the product's releases, as the plugin runtime
(issue 3) declares them: the per-setting ``tailor_resolve_setting`` was added in 1.0,
deprecated in 1.5 for the batch ``tailor_resolve_settings``, and is gone in 3.0."""

from __future__ import annotations

from collections.abc import Sequence

from packaging.version import Version

from core.model.extension_points import EXPERIMENTAL, ExtensionPoint

HISTORY: tuple[ExtensionPoint, ...] = (
    ExtensionPoint("tailor_register_settings", (), added="1.0"),
    ExtensionPoint("tailor_resolve_settings", ("tenant", "environment", "values"), added="1.5"),
    ExtensionPoint(
        "tailor_validate_setting", ("tenant", "environment", "key", "value"), added="1.0"
    ),
    ExtensionPoint(
        "tailor_setting_changed",
        ("tenant", "environment", "key", "old", "new", "actor"),
        added="1.0",
    ),
    ExtensionPoint(
        "tailor_resolve_setting",
        ("tenant", "environment", "key", "value"),
        added="1.0",
        deprecated="1.5",
        removed="3.0",
        replacement="tailor_resolve_settings",
    ),
    ExtensionPoint("acme_invoice_footer", ("tenant", "invoice"), added="1.0", source="acme_erp"),
    ExtensionPoint("acme_price_adjustments", ("tenant", "order"), added="1.5", source="acme_erp"),
    ExtensionPoint(
        "acme_order_approval_route",
        ("tenant", "order", "threshold"),
        added="2.0",
        stability=EXPERIMENTAL,
        source="acme_erp",
    ),
)


def points_for(version: str) -> Sequence[ExtensionPoint]:
    v = Version(version)
    return [p for p in HISTORY if p.defined_in(v)]
