"""Literal keys, a renamed hook, a renamed parameter (comments must survive)."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(key, value):
    # payment terms: at most 45 days
    if key == 'billing.invoice.due_days' and value > 45:  # single quotes kept
        return "at most 45 days of payment terms"
    limits = {
        "billing.late_fee.rate": 2.5,  # percent
    }
    if key in limits and value > limits[key]:
        return f"{key} above {limits[key]}"
    return None


@hookimpl
def acme_invoice_footer(tenant, invoice):
    # the footer names the invoice number
    number = invoice.get("number", "?")

    def shadow(invoice):  # its own invoice: not the hook's parameter
        return invoice

    return shadow(f"{tenant}: invoice {number} of {len(invoice)} fields")


def _helper():
    return acme_invoice_footer("t", {"number": 1})
