import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings():
    return {"ui.table.page_size": 50}
