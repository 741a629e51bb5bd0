"""The changelog between two release manifests: the product's hooks and settings
added, removed, renamed, deprecated and changed (type, default, constraints,
parameters), and one line for a change of Tailor hook API.

Tailor's own ``tailor_*`` hooks are not the product's changes: they follow the hook
API each release names (``tailor_hook_api``). Two releases on the same API show
none of them; a change of API is one ``hook_api`` line whose details say what the
API change means for Tailor's hooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.model.definitions import SettingDefinition
from core.model.extension_points import ExtensionPoint
from core.model.manifest import ReleaseManifest

HOOK = "hook"
SETTING = "setting"
#: the one line for a change of Tailor hook API (name: ``tailor_hook_api``)
HOOK_API = "hook_api"


@dataclass(frozen=True)
class Change:
    kind: str  # "hook", "setting" or "hook_api"
    name: str
    #: added, removed, renamed, deprecated, changed
    change: str
    details: tuple[str, ...] = ()
    #: true when existing overrides or implementations may stop working
    breaking: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "change": self.change,
            "details": list(self.details),
            "breaking": self.breaking,
        }


@dataclass(frozen=True)
class ReleaseDiff:
    from_version: str
    to_version: str
    changes: tuple[Change, ...]
    supersedes_added: tuple[str, ...]
    supersedes_removed: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_version,
            "to": self.to_version,
            "changes": [c.to_dict() for c in self.changes],
            "supersedes_added": list(self.supersedes_added),
            "supersedes_removed": list(self.supersedes_removed),
        }


def diff(a: ReleaseManifest, b: ReleaseManifest) -> ReleaseDiff:
    """What changed from ``a`` to ``b`` (either order works: a downgrade reads as
    the reverse changelog)."""
    changes = [*_hooks(a, b), *_settings(a, b)]
    order = {"removed": 0, "renamed": 1, "changed": 2, "deprecated": 3, "added": 4}
    kinds = {HOOK_API: 0, HOOK: 1, SETTING: 2}
    changes.sort(key=lambda c: (kinds.get(c.kind, 9), order.get(c.change, 9), c.name))
    return ReleaseDiff(
        a.version,
        b.version,
        tuple(changes),
        tuple(sorted(set(b.supersedes) - set(a.supersedes))),
        tuple(sorted(set(a.supersedes) - set(b.supersedes))),
    )


def _hooks(a: ReleaseManifest, b: ReleaseManifest) -> list[Change]:
    if a.tailor_hook_api is not None and b.tailor_hook_api is not None:
        # Tailor's hooks follow the hook API: one line when it changes, else none
        product_only = True
        out = _hook_api(a, b)
    else:  # a manifest stored before releases named their API: hook by hook
        product_only = False
        out = []
    old = {p.name: p for p in a.extension_points if not (product_only and p.is_tailor)}
    new = {p.name: p for p in b.extension_points if not (product_only and p.is_tailor)}
    for name in sorted(old.keys() - new.keys()):
        repl = old[name].replacement
        out.append(Change(HOOK, name, "removed", (f"use {repl}",) if repl else (), breaking=True))
    for name in sorted(new.keys() - old.keys()):
        p = new[name]
        details = [f"{name}({', '.join(p.params)})"]
        if p.stability != "stable":
            details.append(p.stability)
        out.append(Change(HOOK, name, "added", tuple(details)))
    for name in sorted(old.keys() & new.keys()):
        out.extend(_hook_changes(old[name], new[name], a, b))
    return out


def _hook_changes(
    o: ExtensionPoint, n: ExtensionPoint, a: ReleaseManifest, b: ReleaseManifest
) -> list[Change]:
    out = []
    details: list[str] = []
    breaking = False
    removed = [p for p in o.params if p not in n.params]
    added = [p for p in n.params if p not in o.params]
    if removed:
        details.append(f"parameters removed: {', '.join(removed)}")
        breaking = True
    if added:
        details.append(f"parameters added: {', '.join(added)}")
    if o.stability != n.stability:
        details.append(f"stability: {o.stability} -> {n.stability}")
    if o.firstresult != n.firstresult:
        details.append(f"firstresult: {o.firstresult} -> {n.firstresult}")
        breaking = True
    if details:
        out.append(Change(HOOK, n.name, "changed", tuple(details), breaking))
    if n.deprecated_in(b.lifecycle_version(n)) and not o.deprecated_in(a.lifecycle_version(o)):
        out.append(Change(HOOK, n.name, "deprecated", _replacement(n.replacement)))
    return out


def _hook_api(a: ReleaseManifest, b: ReleaseManifest) -> list[Change]:
    """One ``hook_api`` change when ``b`` runs on another Tailor hook API than
    ``a``: its details are what that means for Tailor's hooks; breaking when one
    is removed or loses a parameter."""
    if a.tailor_hook_api == b.tailor_hook_api:
        return []
    old = {p.name: p for p in a.extension_points if p.is_tailor}
    new = {p.name: p for p in b.extension_points if p.is_tailor}
    details = [f"Tailor hook API {a.tailor_hook_api} -> {b.tailor_hook_api}"]
    breaking = False
    for name in sorted(old.keys() - new.keys()):
        repl = old[name].replacement
        details.append(f"{name} removed" + (f" (use {repl})" if repl else ""))
        breaking = True
    for name in sorted(new.keys() - old.keys()):
        details.append(f"{name} added")
    for name in sorted(old.keys() & new.keys()):
        for change in _hook_changes(old[name], new[name], a, b):
            details.append(f"{name} {change.change}" + "".join(f"; {d}" for d in change.details))
            breaking = breaking or change.breaking
    return [Change(HOOK_API, "tailor_hook_api", "changed", tuple(details), breaking)]


def _settings(a: ReleaseManifest, b: ReleaseManifest) -> list[Change]:
    old = {d.key: d for d in a.settings}
    new = {d.key: d for d in b.settings}
    renames = {k: v for k, v in b.renamed if k in old and v in new and v not in old}
    out = []
    for key in sorted(old.keys() - new.keys()):
        if key in renames:
            target = new[renames[key]]
            details = [f"to {target.key}", *_definition_changes(old[key], target)]
            out.append(Change(SETTING, key, "renamed", tuple(details), breaking=True))
            continue
        out.append(
            Change(SETTING, key, "removed", _replacement(old[key].replacement), breaking=True)
        )
    for key in sorted(new.keys() - old.keys()):
        if key in renames.values():
            continue
        d = new[key]
        out.append(Change(SETTING, key, "added", (f"{d.type.value}, default {d.default!r}",)))
    for key in sorted(old.keys() & new.keys()):
        o, n = old[key], new[key]
        details = _definition_changes(o, n)
        if details:
            out.append(Change(SETTING, key, "changed", tuple(details), _narrower(o, n)))
        if n.deprecated_in(b.parsed) and not o.deprecated_in(a.parsed):
            out.append(Change(SETTING, key, "deprecated", _replacement(n.replacement)))
    return out


def _definition_changes(o: SettingDefinition, n: SettingDefinition) -> list[str]:
    out = []
    if o.type != n.type:
        out.append(f"type: {o.type.value} -> {n.type.value}")
    if o.default != n.default or type(o.default) is not type(n.default):
        if not (o.secret or n.secret):
            out.append(f"default: {o.default!r} -> {n.default!r}")
    for name in ("min", "max", "pattern"):
        if getattr(o, name) != getattr(n, name):
            out.append(f"{name}: {getattr(o, name)!r} -> {getattr(n, name)!r}")
    if o.choices != n.choices:
        gone = [c for c in o.choices or () if c not in (n.choices or ())]
        new = [c for c in n.choices or () if c not in (o.choices or ())]
        if gone:
            out.append(f"choices removed: {', '.join(gone)}")
        if new:
            out.append(f"choices added: {', '.join(new)}")
    if o.secret != n.secret:
        out.append(f"secret: {o.secret} -> {n.secret}")
    return out


def _narrower(o: SettingDefinition, n: SettingDefinition) -> bool:
    """True when some value valid under ``o`` may be invalid under ``n``."""
    if o.type != n.type:
        return True
    if n.min is not None and (o.min is None or n.min > o.min):
        return True
    if n.max is not None and (o.max is None or n.max < o.max):
        return True
    if n.choices is not None and set(o.choices or ()) - set(n.choices):
        return True
    return n.pattern is not None and n.pattern != o.pattern


def _replacement(replacement: str | None) -> tuple[str, ...]:
    return (f"use {replacement}",) if replacement else ()
