"""Stark payroll: hazard pay rate (a Stark-only setting) and weekly overtime."""

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_register_settings():
    return [
        {
            "key": "hr.payroll.hazard_bonus_rate",
            "type": "float",
            "default": 0.25,
            "min": 0,
            "max": 1,
            "description": "Hazard pay on top of base pay for lab staff (Stark only).",
        }
    ]


@hookimpl
def tailor_resolve_settings(values):
    if values.get("hr.payroll.frequency") == "weekly":
        return {"hr.payroll.overtime_multiplier": 2.0}
    return {}
