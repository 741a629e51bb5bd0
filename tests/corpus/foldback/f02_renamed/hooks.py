import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    fee = values.get("billing.late_fee.rate", 0.0)
    term = values.get("billing.invoice.due_days", 21)
    if term > 60:
        fee = fee * 2.0
    result = {"billing.late_fee.rate": round(fee, 3)}
    if fee > 0.5:
        result["billing.late_fee.enabled"] = 1
    return result
