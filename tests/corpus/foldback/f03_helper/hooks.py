import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


def _late_fee(settings):
    rate = settings.get("billing.late_fee.rate", 0)
    days = settings.get("billing.invoice.due_days", 30)
    if days > 45:
        rate = rate * 2
    return rate


@hookimpl
def tailor_resolve_settings(values):
    rate = _late_fee(values)
    out = {"billing.late_fee.rate": round(rate, 2)}
    if rate > 0:
        out["billing.late_fee.enabled"] = True
    return out
