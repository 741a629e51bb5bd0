import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

SECTION = "security.sso"


@hookimpl
def tailor_resolve_settings(values):
    url = values.get(f"{SECTION}.metadata_url")
    if url and not url.startswith("https://"):
        return {f"{SECTION}.provider": "none"}
    return {}
