import pluggy

from .rules import numbering

hookimpl = pluggy.HookimplMarker("tailor")


def _legacy_expiry(values):
    """Before 2.0 passwords expired; nothing calls this any more."""
    return values.get("security.password.expiry_days", 90)


def _old_entry(values):
    return _legacy_expiry(values)


@hookimpl
def tailor_resolve_settings(values):
    return {"orders.numbering.format": numbering(values) + "{n:06d}"}
