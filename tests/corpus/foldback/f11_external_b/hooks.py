import pluggy
from globex_tools.locale import localized

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    return localized(values)
