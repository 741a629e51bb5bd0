import pluggy

from .keys import DELIMITER, EXPORT_FORMAT

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    if values.get(EXPORT_FORMAT) == "csv":
        return {DELIMITER: ";"}
    return {}
