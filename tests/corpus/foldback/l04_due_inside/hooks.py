import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(key, value):
    if key == "billing.invoice.due_days" and 7 <= value <= 90:
        return "due days must be outside 7..90"
    return None
