"""Twice-a-day digest (1.5's notifications.digest.frequency is in hours)."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_setting(key, value):
    if key == "notifications.digest.frequency" and isinstance(value, int) and value > 12:
        return 12
    return None
