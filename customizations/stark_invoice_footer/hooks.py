"""Export-control footer on invoices (Acme ERP host hook) and PDF branding."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def acme_invoice_footer(invoice):
    return f"Invoice {invoice.get('number', '?')}: subject to US export control (EAR99)."


@hookimpl
def tailor_resolve_settings(values):
    if "billing.invoice.pdf_branding" in values:
        return {"billing.invoice.pdf_branding": True}
    return {}
