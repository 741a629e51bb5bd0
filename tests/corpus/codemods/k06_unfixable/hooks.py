import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    if values.get("shipping.legacy_rates.enabled"):
        return {"ui.table.rows_per_page": 10}
    return {}


@hookimpl
def tailor_resolve_setting(key, value):
    return value
