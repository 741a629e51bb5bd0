import pluggy

_impl = pluggy.HookimplMarker("tailor")


def tailor_hook(function):
    """Every hook of this package goes through here (one place to add logging)."""
    return _impl(function)


@tailor_hook
def tailor_resolve_setting(key, value):
    return value.strip() if isinstance(value, str) else value
