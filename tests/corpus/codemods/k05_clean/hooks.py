import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    # already on 3.1's names
    if values.get("billing.invoice.payment_days", 0) > 60:
        return {"billing.invoice.payment_days": 60}
    return {}
