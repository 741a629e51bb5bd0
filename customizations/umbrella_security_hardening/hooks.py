"""Security floor for high-risk clients."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

RULES = {
    "security.password.min_length": ("min", 14),
    "security.session.timeout_minutes": ("max", 15),
    "security.lockout.max_attempts": ("max", 5),
}


@hookimpl
def tailor_validate_setting(tenant, key, value):
    rule = RULES.get(key)
    if rule is None:
        return None
    kind, bound = rule
    if kind == "min" and value < bound:
        return f"{tenant}'s security policy needs {key} >= {bound}"
    if kind == "max" and value > bound:
        return f"{tenant}'s security policy needs {key} <= {bound}"
    return None
