"""Wayne order numbering (1.0 era: per-setting hook, legacy settings)."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_setting(environment, key, value):
    if key == "orders.numbering.prefix":
        return "WE-TEST-" if environment == "sandbox" else "WE-"
    if key == "shipping.legacy_rates.enabled":
        return False
    return None
