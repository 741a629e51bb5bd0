import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    out = {}
    if values.get("notifications.email.enabled"):
        out["notifications.email.enabled"] = False
    if values.get("notifications.sms.enabled"):
        out["notifications.sms.enabled"] = False
    return out
