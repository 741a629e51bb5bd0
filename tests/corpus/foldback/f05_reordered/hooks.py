import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    due = values.get("billing.invoice.due_days", 14)
    late = values.get("billing.late_fee.rate", 0)
    if due > 30:
        late = late * 3
    changes = {"billing.late_fee.rate": round(late, 1)}
    if late > 0:
        changes["billing.late_fee.enabled"] = True
    return changes
