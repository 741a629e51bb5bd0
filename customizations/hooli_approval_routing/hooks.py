"""Approval routing on the experimental Acme ERP extension point."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

CHANGES = []


@hookimpl
def acme_order_approval_route(order, threshold):
    if order.get("total", 0) > 10 * threshold:
        return ["cfo", "ceo"]
    return ["finance-manager"]


@hookimpl
def tailor_setting_changed(key, old, new, actor):
    if key == "orders.approval.threshold":
        CHANGES.append((actor, old, new))
