import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

KEYS = ("billing.invoice.due_days", "billing.dunning.max_reminders")


@hookimpl
def tailor_resolve_settings(tenant, environment, values):
    return {KEYS[0]: 45} if environment == "production" else {}
