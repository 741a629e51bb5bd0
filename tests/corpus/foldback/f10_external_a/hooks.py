import pluggy
from acme_lib.fees import late_fee_settings

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    return late_fee_settings(values)
