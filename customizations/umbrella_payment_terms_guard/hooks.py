"""Treasury rules for Umbrella (copied from another project and adapted)."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(key, value):
    limit = 90
    if key == "billing.invoice.due_days" and value > limit:
        return f"Umbrella treasury allows at most {limit} days of payment terms"
    if key == "billing.late_fee.rate" and value > 3.5:
        return "late fees above 3.5% are not allowed by group treasury"
    return None
