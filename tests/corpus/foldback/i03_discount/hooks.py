import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    base = values.get("shipping.rate.base", 10.0)
    return {"shipping.rate.base": round(base * (1 - 0.05), 2)}
