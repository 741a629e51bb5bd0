"""Acme ERP's own extension points (the sample product's ``hookspecs.py``).

A product plugin declares its extension points as pluggy hookspecs with lifecycle;
Tailor records them in release manifests next to its own hooks, so readiness sees
them too. Acme's backend calls them through Tailor (GraphQL ``invokeExtension``
with a ``host`` token), which runs each tenant's enabled customizations.
"""

from __future__ import annotations

from typing import Any

import pluggy

from core.model.extension_points import EXPERIMENTAL
from plugins.lifecycle import lifecycle

hookspec = pluggy.HookspecMarker("tailor")


@hookspec
@lifecycle(added="1.0")
def acme_invoice_footer(tenant: str, invoice: dict[str, Any]) -> str | None:
    """Extra text printed at the foot of an invoice PDF.

    Parameters:
        tenant: the tenant's slug.
        invoice: the invoice (number, date, total, currency, customer).

    Returns:
        The footer text, or None for the product's footer.

    Example::

        @hookimpl
        def acme_invoice_footer(invoice):
            return f"Thank you for order {invoice['number']}"

    Lifecycle:
        added 1.0, stable. Called once per batch (once per rendered invoice).
    """


@hookspec
@lifecycle(added="1.5")
def acme_price_adjustments(tenant: str, order: dict[str, Any]) -> list[dict[str, Any]]:
    """Price adjustments (discounts, surcharges) for an order.

    Parameters:
        tenant: the tenant's slug.
        order: the order with its lines.

    Returns:
        A list of ``{"line": index, "amount": delta, "reason": text}``.

    Example::

        @hookimpl
        def acme_price_adjustments(order):
            return [{"line": 0, "amount": -5.0, "reason": "loyalty"}]

    Lifecycle:
        added 1.5, stable. Called once per batch (once per priced order).
    """


@hookspec
@lifecycle(added="2.0", stability=EXPERIMENTAL)
def acme_order_approval_route(tenant: str, order: dict[str, Any], threshold: float) -> list[str]:
    """Who must approve an order above the approval threshold.

    Parameters:
        tenant: the tenant's slug.
        order: the order to approve.
        threshold: the tenant's orders.approval.threshold.

    Returns:
        User names, in approval order.

    Example::

        @hookimpl
        def acme_order_approval_route(order, threshold):
            return ["cfo"] if order["total"] > 10 * threshold else ["manager"]

    Lifecycle:
        added 2.0, experimental: its shape may change in any release. Called once
        per batch (once per order submitted for approval).
    """
