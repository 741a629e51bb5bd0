"""Brand Northwind's invoices (written for 1.0, before the product had branding)."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

LOGO = "https://cdn.northwind.example/brand/logo.png"


@hookimpl
def tailor_resolve_settings(tenant, environment, values):
    branded = {}
    if "billing.invoice.pdf_branding" in values:
        branded["billing.invoice.pdf_branding"] = True
    if "billing.invoice.logo_url" in values and not values["billing.invoice.logo_url"]:
        branded["billing.invoice.logo_url"] = LOGO
    if environment == "sandbox" and "ui.branding.primary_color" in values:
        branded["ui.branding.primary_color"] = "#7A1F1F"
    return branded
