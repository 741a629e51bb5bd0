import pluggy

from .keys import PAGE_SIZE, THEME

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    if values.get(THEME) == "dark":
        return {PAGE_SIZE: 50}
    return {}
