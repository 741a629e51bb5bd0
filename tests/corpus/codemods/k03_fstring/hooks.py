import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

PART = "due_days"


@hookimpl
def tailor_resolve_settings(values):
    return {f"billing.invoice.{PART}": 14}
