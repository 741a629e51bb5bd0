import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

BASE = "billing"
INVOICE = BASE + ".invoice"
LOGO_KEY = f"{INVOICE}.logo_url"
PREFIX_KEY = ".".join(["orders", "numbering", "prefix"])


@hookimpl
def tailor_resolve_settings(values):
    out = {}
    if values.get(LOGO_KEY):
        out[PREFIX_KEY] = "INV"
    return out
