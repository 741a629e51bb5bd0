import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

CAP = 25
MAX_PERCENT = "sales.discount.max_percent"


@hookimpl
def tailor_resolve_settings(values):
    current = values[MAX_PERCENT]
    approval = values.get("sales.discount.approval_required", False)
    capped = min(current, CAP) if approval else current
    return {MAX_PERCENT: capped}
