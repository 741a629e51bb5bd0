"""A product's demo data, as its product plugin declares it (``DIR/demo.toml``,
optional): the demo tenants with their setting overrides (``tailor demo seed``,
``tailor serve --demo``) and the profile of a generated fleet (hooks, parameters,
``requires`` ranges, capabilities and setting keys that generated customizations
draw from; ``tailor demo seed --tenants N``).

Plain data; :func:`demo_from_dict` builds it and names the field that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.model.errors import InvalidInputError


@dataclass(frozen=True)
class DemoOverride:
    key: str
    value: object
    environment: str = ""  # "" = tenant-wide


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    release: str
    environments: tuple[str, ...]
    overrides: tuple[DemoOverride, ...]
    #: environments protected once the demo data is written (change requests)
    protected: tuple[str, ...] = ()


@dataclass(frozen=True)
class FleetProfile:
    """What generated customizations are made of. ``None`` in ``tested_up_to`` and
    ``capabilities`` means "none" (written ``""`` in TOML)."""

    #: (hook, parameters an implementation takes) as current code uses them ...
    hook_uses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: ... and as outdated code does
    outdated_hook_uses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    requires: tuple[str, ...] = (">=0",)
    outdated_requires: tuple[str, ...] = ()
    tested_up_to: tuple[str | None, ...] = (None,)
    capabilities: tuple[str | None, ...] = (None,)
    setting_refs: tuple[str, ...] = ()
    outdated_setting_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoData:
    tenants: tuple[DemoTenant, ...] = ()
    fleet: FleetProfile = field(default_factory=FleetProfile)


def _strings(data: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"{where}.{name}", "must be a list of strings")
    return tuple(value)


def _table(data: Any, where: str, known: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInputError(where, "must be a table")
    unknown = set(data) - known
    if unknown:
        raise InvalidInputError(where, f"unknown field(s): {', '.join(sorted(unknown))}")
    return data


def _uses(data: Mapping[str, Any], name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for i, use in enumerate(data.get(name, [])):
        use = _table(use, f"fleet.{name}[{i}]", {"hook", "params"})
        if not isinstance(use.get("hook"), str):
            raise InvalidInputError(f"fleet.{name}[{i}].hook", "required: a hook name")
        out.append((use["hook"], _strings(use, "params", f"fleet.{name}[{i}]")))
    return tuple(out)


def demo_from_dict(data: Mapping[str, Any]) -> DemoData:
    """Build the demo data from ``demo.toml``'s content."""
    data = _table(data, "demo", {"tenants", "fleet"})
    tenants = []
    for i, raw in enumerate(data.get("tenants", [])):
        where = f"tenants[{i}]"
        raw = _table(
            raw, where, {"slug", "name", "release", "environments", "overrides", "protected"}
        )
        for name in ("slug", "name", "release"):
            if not isinstance(raw.get(name), str):
                raise InvalidInputError(f"{where}.{name}", "required: a string")
        overrides = []
        for j, o in enumerate(raw.get("overrides", [])):
            o = _table(o, f"{where}.overrides[{j}]", {"key", "value", "environment"})
            if not isinstance(o.get("key"), str) or "value" not in o:
                raise InvalidInputError(f"{where}.overrides[{j}]", "needs a key and a value")
            overrides.append(DemoOverride(o["key"], o["value"], str(o.get("environment", ""))))
        tenants.append(
            DemoTenant(
                raw["slug"],
                raw["name"],
                raw["release"],
                _strings(raw, "environments", where),
                tuple(overrides),
                _strings(raw, "protected", where),
            )
        )
    fleet = _table(
        data.get("fleet", {}),
        "fleet",
        {
            "hook_uses",
            "outdated_hook_uses",
            "requires",
            "outdated_requires",
            "tested_up_to",
            "capabilities",
            "setting_refs",
            "outdated_setting_refs",
        },
    )
    profile = FleetProfile(
        hook_uses=_uses(fleet, "hook_uses"),
        outdated_hook_uses=_uses(fleet, "outdated_hook_uses"),
        requires=_strings(fleet, "requires", "fleet") or (">=0",),
        outdated_requires=_strings(fleet, "outdated_requires", "fleet"),
        tested_up_to=_none_for_empty(_strings(fleet, "tested_up_to", "fleet")) or (None,),
        capabilities=_none_for_empty(_strings(fleet, "capabilities", "fleet")) or (None,),
        setting_refs=_strings(fleet, "setting_refs", "fleet"),
        outdated_setting_refs=_strings(fleet, "outdated_setting_refs", "fleet"),
    )
    return DemoData(tuple(tenants), profile)


def _none_for_empty(values: Sequence[str]) -> tuple[str | None, ...]:
    return tuple(v or None for v in values)
