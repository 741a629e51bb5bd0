import pluggy

from . import keys

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(key, value):
    if key == keys.EXPIRY and value > 365:
        return "password expiry above a year is not allowed by policy"
    if key == keys.MIN_LENGTH and value < 12:
        return "passwords must be at least 12 characters"
    return None
