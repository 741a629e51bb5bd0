import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    limit = values.get("sales.discount.max_percent", 0)
    if values.get("sales.discount.approval_required"):
        limit = max(limit, 15)
    return {"sales.discount.max_percent": limit}
