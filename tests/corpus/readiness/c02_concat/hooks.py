import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

NUMBERING = "orders.numbering."


@hookimpl
def tailor_resolve_settings(tenant, values):
    prefix = values.get(NUMBERING + "prefix", "ORD")
    return {NUMBERING + "format": prefix + "-{year}-{seq:05d}"}
