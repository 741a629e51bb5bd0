import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


def _locale(values):
    out = {}
    for key in ("ui.locale.default", "ui.date.format"):
        value = values.get(key)
        if isinstance(value, str) and value.startswith("en_"):
            out[key] = value.replace("en_", "de_")
    return out


@hookimpl
def tailor_resolve_settings(values):
    return _locale(values)
