import pluggy

_marker = pluggy.HookimplMarker("tailor")


def hook(name=None, **options):
    """Apply the tailor marker, optionally under another hook name."""
    if name:
        options["specname"] = name
    return _marker(**options)


@hook("tailor_setting_changed")
def audit_change(tenant, key, new):
    return None


@hook()
def tailor_resolve_settings(values):
    return {"ui.theme.mode": "dark"} if values.get("ui.navigation.compact") else {}
