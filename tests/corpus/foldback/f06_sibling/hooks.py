import pluggy

from .logic import compute

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    return compute(values)
