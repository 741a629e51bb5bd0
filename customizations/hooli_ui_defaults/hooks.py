"""Hooli house style. Always the same values: these should be settings."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings():
    return {"ui.theme.mode": "dark", "ui.table.page_size": 100, "ui.navigation.compact": True}
