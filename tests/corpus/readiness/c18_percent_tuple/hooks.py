import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

EXPORT_KEYS = ("reporting.csv.delimiter", "reporting.export.format")


@hookimpl
def tailor_resolve_settings(values):
    out = {}
    for key in EXPORT_KEYS:
        if values.get(key) is None:
            out[key] = ","
    if values.get("%s.%s" % ("tax.rounding", "per_line")):  # noqa: UP031
        out["tax.prices.include_tax"] = False
    return out
