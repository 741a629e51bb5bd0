import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

FLAGS = ("notifications.sms.enabled", "notifications.email.enabled")


@hookimpl
def tailor_resolve_settings(values):
    result = {}
    for flag in FLAGS:
        if not values.get(flag):
            result[flag] = True
    return result
