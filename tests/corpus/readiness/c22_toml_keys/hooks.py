import tomllib
from pathlib import Path

import pluggy

hookimpl = pluggy.HookimplMarker("tailor")

RULES = tomllib.loads(Path(__file__).with_name("rules.toml").read_text(encoding="utf-8"))["keys"]


@hookimpl
def tailor_resolve_settings(values):
    if values.get(RULES["rounding"]):
        return {RULES["mode"]: "line"}
    return {}
