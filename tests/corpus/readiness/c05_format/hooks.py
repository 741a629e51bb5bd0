import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

TEMPLATE = "tax.rounding.{}"


@hookimpl
def tailor_resolve_settings(values):
    per_line = values.get(TEMPLATE.format("per_line"))
    mode = values.get("{}.{}".format("tax.rounding", "mode"))
    if per_line and mode == "half_up":
        return {"tax.prices.include_tax": True}
    return {}
