import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings():
    return {"ui.theme.dark_mode": True}
