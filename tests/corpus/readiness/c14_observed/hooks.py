import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    return {
        key: value.rstrip("/") for key, value in values.items() if key.endswith("_url") and value
    }
