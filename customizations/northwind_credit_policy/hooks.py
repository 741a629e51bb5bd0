"""Northwind's credit policy: at most 60 days of payment terms."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(key, value):
    max_due_days = 60
    if key == "billing.invoice.due_days" and value > max_due_days:
        return f"Northwind's credit policy allows at most {max_due_days} days of payment terms"
    if key == "billing.late_fee.rate" and value > 2.0:
        return "late fees above 2.0% need the CFO's approval"
    return None
