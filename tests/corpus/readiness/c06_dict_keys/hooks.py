import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

BRANDING = {
    "billing.invoice.logo_url": "https://cdn.example/acme.png",
    "ui.branding.primary_color": "#003366",
}


@hookimpl
def tailor_resolve_settings():
    return dict(BRANDING)
