import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


def _outside(number, low, high):
    return not low <= number <= high


@hookimpl
def tailor_validate_setting(key, value):
    # lockout first, then length
    if key == "security.lockout.max_attempts" and _outside(value, 4, 9):
        return "lockout must be between 4 and 9"
    if key == "security.password.min_length" and value < 10:
        return "too short"
    return None
