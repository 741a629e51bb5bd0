"""Globex letterhead. Uses the per-setting hook that 1.5 deprecated."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_setting(key, value):
    if key == "billing.invoice.pdf_branding":
        return True
    if key == "billing.invoice.logo_url" and not value:
        return "https://static.globex.example/letterhead.png"
    return None
