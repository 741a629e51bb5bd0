import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_validate_setting(key, value):
    if key == "security.password.min_length" and value > 12:
        return "at most 12 characters"
    if key == "security.lockout.max_attempts" and not 3 <= value <= 10:
        return "between 3 and 10 attempts"
    return None
