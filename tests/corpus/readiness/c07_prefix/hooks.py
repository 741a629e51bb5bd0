import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(tenant, key, value):
    if key.startswith("security.sso.") and not value:
        return "single sign-on settings may not be blank for this tenant"
    return None
