import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(tenant, values):
    out = {}
    for key, value in sorted(values.items()):
        if key.startswith("notifications.") and value is None:
            out[key] = False
        elif key.endswith(".enabled") and tenant.startswith("test-"):
            out[key] = False
    return out
