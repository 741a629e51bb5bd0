"""Traps. The old key security.sso.metadata_url is mentioned in prose only."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")
other = pluggy.HookimplMarker("otherapp")

#: kept for the migration notes, never used
LEGACY_PREFIX = "orders.numbering.prefix"
LOGO = "logo.png"


def tailor_resolve_setting(key, value):
    """A helper that happens to bear an old hook's name; not a hook."""
    return value


@other
def tailor_setting_changed(tenant, key, new):
    return None


@hookimpl
def tailor_register_settings():
    return [{"key": "hr.payroll.hazard_bonus_rate", "type": "float", "default": 0.25}]


@hookimpl
def tailor_resolve_settings(values):
    out = {}
    for key, value in values.items():
        if key.startswith("security.") and value is None:
            out[key] = ""
    out["ui.theme.mode"] = "dark"
    return out
