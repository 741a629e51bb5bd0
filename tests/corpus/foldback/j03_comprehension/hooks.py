import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    keys = ["notifications.email.enabled", "notifications.sms.enabled"]
    return {key: False for key in keys if values.get(key)}
