import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(key, value):
    if key == "billing.invoice.due_days":
        if value < 7 or value > 90:
            return "due days must be between 7 and 90"
    return None
