"""Approval routing, all in the package's __init__."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def acme_order_approval_route(order, threshold):
    return "cfo" if order["total"] > threshold * 10 else None
