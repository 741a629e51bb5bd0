import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

DUE = "billing.invoice.due_days"


@hookimpl
def tailor_validate_setting(key, value):
    if key == DUE and not (10 <= value <= 60):
        return "between 10 and 60 days"
    return None
