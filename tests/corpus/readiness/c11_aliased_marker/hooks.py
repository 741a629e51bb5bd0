from pluggy import HookimplMarker as Marker

impl = Marker("tailor")


@impl(tryfirst=True)
def tailor_resolve_setting(key, value):
    return value


@impl(specname="tailor_resolve_settings")
def compute(values):
    return {"ui.table.page_size": 50}
