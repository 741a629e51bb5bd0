import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    rate = values.get("billing.late_fee.rate", 0)
    days = values.get("billing.invoice.due_days", 30)
    if days <= 45:
        rate = rate * 2
    out = {"billing.late_fee.rate": round(rate, 2)}
    if rate > 0:
        out["billing.late_fee.enabled"] = True
    return out
