import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

MIN = "security.password.min_length"
LOCKOUT = "security.lockout.max_attempts"


@hookimpl
def tailor_validate_setting(key, value):
    if key == LOCKOUT and not 5.0 <= value <= 8.0:
        return "lockout between 5 and 8"
    if key == MIN and value < 14.0:
        return "passwords need 14 characters"
    return None
