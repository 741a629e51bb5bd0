"""Releases as values: a product version's manifest (setting catalog, extension
points, superseded capabilities) and the questions asked of a set of releases
(which manifest a version has, which release is current, which release folds a
capability back). No database here: the store (``core/store/releases.py``) loads them.
"""

from __future__ import annotations

import enum
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol, TypeVar

from packaging.version import Version

from core.model.definitions import SettingDefinition
from core.model.errors import InvalidInputError, NotFoundError, SettingValidationError
from core.model.extension_points import ExtensionPoint

#: a hook API is named by a positive integer, as a string ("1", "2", ...)
HOOK_API_PATTERN = re.compile(r"^[1-9][0-9]{0,5}$")


class ReleaseStatus(enum.StrEnum):
    """Whether the running product code has reached a release."""

    RELEASED = "released"
    PLANNED = "planned"


T = TypeVar("T")

RELEASED = ReleaseStatus.RELEASED
PLANNED = ReleaseStatus.PLANNED
STATUSES = tuple(ReleaseStatus)


def parse_version(value: str, field_name: str = "version") -> Version:
    try:
        return Version(value)
    except ValueError:  # InvalidVersion, or a segment beyond Python's int-string limit
        raise InvalidInputError(
            field_name,
            f"{reprlib.repr(value)} is not a PEP 440 version (for example '2.0' or '3.0rc1')",
        ) from None


#: the top-level fields of a manifest (``schema_version`` is the file format's)
MANIFEST_FIELDS = frozenset(
    {
        "schema_version",
        "version",
        "status",
        "notes",
        "supersedes",
        "renamed",
        "renamed_hooks",
        "renamed_params",
        "extension_points",
        "settings",
        "tailor_hook_api",
        "migrations",
    }
)
#: the fields of a manifest fragment (``tailor release import FRAGMENT --into V``)
FRAGMENT_FIELDS = frozenset({"schema_version", "notes", "supersedes", "settings", "migrations"})
MIGRATION_FIELDS = frozenset({"capability", "customization", "tenant", "overrides"})


@dataclass(frozen=True)
class Migration:
    """How one tenant leaves a customization the release supersedes: disable it,
    then set these overrides (the tenant's own values of the new settings)."""

    capability: str
    customization: str
    tenant: str
    overrides: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "customization": self.customization,
            "tenant": self.tenant,
            "overrides": dict(self.overrides),
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Migration:
        if not isinstance(data, Mapping):
            raise InvalidInputError(where, "a migration is a table")
        unknown = set(data) - MIGRATION_FIELDS
        if unknown:
            raise InvalidInputError(
                where,
                f"unknown field(s): {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(MIGRATION_FIELDS))})",
            )
        for name in ("capability", "customization", "tenant"):
            if not isinstance(data.get(name), str) or not data[name].strip():
                raise InvalidInputError(f"{where}.{name}", "must be a non-empty string")
        overrides = data.get("overrides", {})
        if not isinstance(overrides, Mapping):
            raise InvalidInputError(f"{where}.overrides", "must map setting keys to values")
        return cls(
            str(data["capability"]),
            str(data["customization"]),
            str(data["tenant"]),
            tuple(sorted(overrides.items())),
        )

    @property
    def action(self) -> str:
        """The migration in words (readiness's SUPERSEDED_BY_CORE action)."""
        steps = [f"disable {self.customization} for {self.tenant}"]
        steps += [f"set override {k} = {_shown(v)}" for k, v in self.overrides]
        return "; ".join(steps)


def _param_pairs(
    data: Mapping[str, Mapping[str, str]],
) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    return tuple(sorted((hook, tuple(sorted(pairs.items()))) for hook, pairs in data.items()))


def _shown(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def parse_hook_api(value: Any, field_name: str = "tailor_hook_api") -> str:
    """A hook API name: a positive integer as a string ("2")."""
    if not isinstance(value, str) or not HOOK_API_PATTERN.match(value):
        raise InvalidInputError(
            field_name,
            f"{reprlib.repr(value)} is not a Tailor hook API: name one as a string of digits, "
            'e.g. tailor_hook_api = "2"',
        )
    return value


def _entry(build: Callable[..., T], data: Mapping[str, Any], where: str) -> T:
    """Build one manifest entry; a wrongly typed field is an input error naming it."""
    label = data.get("key") or data.get("name")
    where = f"{where} ({label})" if isinstance(label, str) else where
    try:
        return build(data, where=where)
    except (TypeError, ValueError, re.error) as exc:
        raise InvalidInputError(where, f"malformed entry: {exc}") from None


def _check_lifecycle(
    where: str, added: str | None, deprecated: str | None, removed: str | None, version: Version
) -> None:
    """An entry listed in the manifest of ``version`` must be defined in it."""
    parsed = {}
    for name, value in (("added", added), ("deprecated", deprecated), ("removed", removed)):
        if value is not None:
            parsed[name] = parse_version(str(value), f"{where}.{name}")
    if "added" in parsed and parsed["added"] > version:
        raise InvalidInputError(f"{where}.added", f"added in {added}, after release {version}")
    if "removed" in parsed and parsed["removed"] <= version:
        raise InvalidInputError(
            f"{where}.removed", f"removed in {removed}: it cannot be listed in release {version}"
        )
    if "deprecated" in parsed and "removed" in parsed and parsed["deprecated"] > parsed["removed"]:
        raise InvalidInputError(f"{where}.deprecated", "deprecated after it is removed")


@dataclass(frozen=True)
class ReleaseManifest:
    """Everything a release promises: its settings, extension points and what it
    folds back into the product (``supersedes``)."""

    version: str
    status: str = RELEASED
    settings: tuple[SettingDefinition, ...] = ()
    extension_points: tuple[ExtensionPoint, ...] = ()
    supersedes: tuple[str, ...] = ()
    notes: str = ""
    #: settings renamed in this release: (old key, new key) pairs; the old key is
    #: gone from ``settings``, the new one is defined there
    renamed: tuple[tuple[str, str], ...] = ()
    #: the Tailor hook API this release runs on ("1", "2", ...): Tailor's own
    #: ``tailor_*`` extension points, and their lifecycle numbers, are that API's,
    #: independent of the product's version numbers. None: a manifest stored before
    #: releases named their API (its tailor_* lifecycle reads in product versions)
    tailor_hook_api: str | None = None
    #: per tenant, how to leave a customization this release supersedes
    migrations: tuple[Migration, ...] = ()
    #: hooks renamed in this release (schema 2): (old name, new name) pairs, for
    #: product extension points and ``tailor_*`` hooks alike; the old name is gone
    #: from ``extension_points``, the new one is there and takes the old one's
    #: parameters (through ``renamed_params``): a hook whose shape changes is a
    #: ``replacement``, not a rename
    renamed_hooks: tuple[tuple[str, str], ...] = ()
    #: hook parameters renamed in this release (schema 2): (hook, ((old, new), ...)),
    #: the hook named as this release names it
    renamed_params: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def lifecycle_version(self, point: ExtensionPoint) -> Version:
        """The version ``point``'s lifecycle is compared with in this release: the
        hook API for Tailor's own hooks, the product version for the product's."""
        if point.is_tailor and self.tailor_hook_api is not None:
            return Version(self.tailor_hook_api)
        return self.parsed

    def check(self) -> None:
        """Raise :class:`InvalidInputError` for any inconsistency."""
        version = parse_version(self.version)
        if self.status not in STATUSES:
            raise InvalidInputError("status", f"{self.status!r} is not one of {STATUSES}")
        if self.tailor_hook_api is not None:
            parse_hook_api(self.tailor_hook_api)
        names: set[str] = set()
        for point in self.extension_points:
            where = f"extension_points[{point.name!r}]"
            if point.name in names:
                raise InvalidInputError(where, "the hook is listed twice in this manifest")
            names.add(point.name)
            _check_lifecycle(
                where, point.added, point.deprecated, point.removed, self.lifecycle_version(point)
            )
            if len(set(point.params)) != len(point.params):
                raise InvalidInputError(f"{where}.params", "a parameter is listed twice")
        seen: set[str] = set()
        for definition in self.settings:
            where = f"settings[{definition.key!r}]"
            if definition.key in seen:
                raise InvalidInputError(where, "the key is defined twice in this manifest")
            seen.add(definition.key)
            definition.check_consistent()
            _check_lifecycle(
                where, definition.added, definition.deprecated, definition.removed, version
            )
        for point in self.extension_points:
            if point.deprecated_in(self.lifecycle_version(point)) and point.replacement:
                if point.replacement not in names:
                    raise InvalidInputError(
                        f"extension_points[{point.name!r}].replacement",
                        f"{point.replacement!r} is not an extension point of this manifest",
                    )
        for definition in self.settings:
            if definition.deprecated_in(version) and definition.replacement:
                if definition.replacement not in seen:
                    raise InvalidInputError(
                        f"settings[{definition.key!r}].replacement",
                        f"{definition.replacement!r} is not a setting of this manifest",
                    )
        for old, new in self.renamed:
            if old in seen:
                raise InvalidInputError(
                    f"renamed[{old!r}]", "a renamed key must not be defined in the manifest"
                )
            if new not in seen:
                raise InvalidInputError(
                    f"renamed[{old!r}]", f"the new key {new!r} is not a setting of this manifest"
                )
        if len({old for old, _ in self.renamed}) != len(self.renamed):
            raise InvalidInputError("renamed", "a key is renamed twice")
        self._check_hook_renames(names)
        for i, capability in enumerate(self.supersedes):
            if not isinstance(capability, str) or not capability.strip():
                raise InvalidInputError(f"supersedes[{i}]", "must be a non-empty capability name")
        definitions = {d.key: d for d in self.settings}
        pairs: set[tuple[str, str]] = set()
        for i, migration in enumerate(self.migrations):
            where = f"migrations[{i}]"
            if migration.capability not in self.supersedes:
                raise InvalidInputError(
                    f"{where}.capability",
                    f"{migration.capability!r} is not superseded by this release: add it to "
                    "'supersedes'",
                )
            pair = (migration.customization, migration.tenant)
            if pair in pairs:
                raise InvalidInputError(where, f"{pair[0]} for {pair[1]} is migrated twice")
            pairs.add(pair)
            for key, value in migration.overrides:
                if key not in definitions:
                    raise InvalidInputError(
                        f"{where}.overrides[{key!r}]", "is not a setting of this release"
                    )
                try:
                    definitions[key].validate(value)
                except SettingValidationError as exc:
                    raise InvalidInputError(
                        f"{where}.overrides[{key!r}]", f"invalid value: {exc}"
                    ) from None

    def _check_hook_renames(self, names: set[str]) -> None:
        points = {p.name: p for p in self.extension_points}
        for old, new in self.renamed_hooks:
            where = f"renamed_hooks[{old!r}]"
            if old in names:
                raise InvalidInputError(
                    where, "a renamed hook must not be an extension point of the manifest"
                )
            if new not in names:
                raise InvalidInputError(
                    where, f"the new hook {new!r} is not an extension point of this manifest"
                )
        if len({old for old, _ in self.renamed_hooks}) != len(self.renamed_hooks):
            raise InvalidInputError("renamed_hooks", "a hook is renamed twice")
        for hook, pairs in self.renamed_params:
            where = f"renamed_params[{hook!r}]"
            point = points.get(hook)
            if point is None:
                raise InvalidInputError(
                    where,
                    f"{hook!r} is not an extension point of this manifest (name the hook as "
                    "this release does, its new name when it is renamed too)",
                )
            for old, new in pairs:
                if old in point.params:
                    raise InvalidInputError(
                        f"{where}[{old!r}]",
                        f"{hook} still takes {old!r}: a renamed parameter must be gone",
                    )
                if new not in point.params:
                    raise InvalidInputError(
                        f"{where}[{old!r}]",
                        f"the new parameter {new!r} is not one of "
                        f"{hook}({', '.join(point.params)})",
                    )
            if len({new for _, new in pairs}) != len(pairs):
                raise InvalidInputError(where, "two parameters are renamed to the same name")

    def check_renames_against(self, earlier: Iterable[ReleaseManifest]) -> None:
        """Raise :class:`InvalidInputError` when a renamed hook is not a rename of
        the hook the last earlier release declared: its parameters (through
        ``renamed_params``) must all be the new hook's, and its ``firstresult`` the
        same; a hook whose shape changes (per key to batch) is a ``replacement``."""
        before = sorted((m for m in earlier if m.parsed < self.parsed), key=lambda m: m.parsed)
        points = {p.name: p for p in self.extension_points}
        params = self.param_renames
        for old, new in self.renamed_hooks:
            previous = None
            for m in before:
                previous = next((p for p in m.extension_points if p.name == old), previous)
            if previous is None:
                continue  # no earlier release here declares it: nothing to compare with
            point = points[new]
            mapping = params.get(new, {})
            mapped = [mapping.get(p, p) for p in previous.params]
            missing = [
                p for p, m in zip(previous.params, mapped, strict=True) if m not in point.params
            ]
            if missing or previous.firstresult != point.firstresult:
                why = (
                    f"its parameter(s) {', '.join(missing)} are not {new}'s"
                    if missing
                    else "one returns the first result, the other every result"
                )
                raise InvalidInputError(
                    f"renamed_hooks[{old!r}]",
                    f"{old}({', '.join(previous.params)}) is not a rename of "
                    f"{new}({', '.join(point.params)}): {why}. A hook whose shape changes is "
                    f"not a rename: keep {old} deprecated with replacement = {new!r} in the "
                    "release that introduces it (or list the renamed parameters under "
                    f"[renamed_params.{new}])",
                )

    @property
    def parsed(self) -> Version:
        return Version(self.version)

    @property
    def renames(self) -> dict[str, str]:
        return dict(self.renamed)

    @property
    def hook_renames(self) -> dict[str, str]:
        """old hook name -> new hook name."""
        return dict(self.renamed_hooks)

    @property
    def param_renames(self) -> dict[str, dict[str, str]]:
        """hook (its name in this release) -> old parameter -> new parameter."""
        return {hook: dict(pairs) for hook, pairs in self.renamed_params}

    @property
    def schema_version(self) -> int:
        """The lowest manifest file schema that can hold this manifest: 2 when it
        renames hooks or parameters or declares a conversion, else 1."""
        if self.renamed_hooks or self.renamed_params:
            return 2
        if any(d.previous_type is not None for d in self.settings):
            return 2
        return 1

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "status": self.status,
            "notes": self.notes,
            "supersedes": list(self.supersedes),
            "renamed": dict(self.renamed),
        }
        if self.tailor_hook_api is not None:
            data["tailor_hook_api"] = self.tailor_hook_api
        if self.migrations:
            data["migrations"] = [m.to_dict() for m in self.migrations]
        if self.renamed_hooks:
            data["renamed_hooks"] = dict(self.renamed_hooks)
        if self.renamed_params:
            data["renamed_params"] = self.param_renames
        data["extension_points"] = [e.to_dict() for e in self.extension_points]
        data["settings"] = [d.to_dict() for d in self.settings]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReleaseManifest:
        """Build and check a manifest; unknown fields are errors, not ignored."""
        unknown = set(data) - MANIFEST_FIELDS
        if unknown:
            raise InvalidInputError(
                "manifest",
                f"unknown field(s): {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(MANIFEST_FIELDS))})",
            )
        if "version" not in data:
            raise InvalidInputError("version", "the manifest has no 'version'")
        for name in ("settings", "extension_points", "supersedes", "migrations"):
            if not isinstance(data.get(name, []), list | tuple):
                raise InvalidInputError(name, "must be a list")
        renamed = data.get("renamed", {})
        if not isinstance(renamed, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in renamed.items()
        ):
            raise InvalidInputError("renamed", "must map old setting keys to new ones")
        renamed_hooks = data.get("renamed_hooks", {})
        if not isinstance(renamed_hooks, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in renamed_hooks.items()
        ):
            raise InvalidInputError("renamed_hooks", "must map old hook names to new ones")
        renamed_params = data.get("renamed_params", {})
        if not isinstance(renamed_params, Mapping) or not all(
            isinstance(hook, str)
            and isinstance(pairs, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in pairs.items())
            for hook, pairs in renamed_params.items()
        ):
            raise InvalidInputError(
                "renamed_params",
                "must map each hook to a table of old parameter names to new ones "
                '([renamed_params.hook] old = "new")',
            )
        for i, item in enumerate([*data.get("settings", []), *data.get("extension_points", [])]):
            if not isinstance(item, Mapping):
                raise InvalidInputError(f"entry {i}", "settings and extension points are tables")
        settings = tuple(
            _entry(SettingDefinition.from_dict, s, f"settings[{i}]")
            for i, s in enumerate(data.get("settings", []))
        )
        api = data.get("tailor_hook_api")
        manifest = cls(
            version=str(data["version"]),
            status=str(data.get("status", PLANNED)),
            settings=settings,
            extension_points=tuple(
                _entry(ExtensionPoint.from_dict, e, f"extension_points[{i}]")
                for i, e in enumerate(data.get("extension_points", []))
            ),
            supersedes=tuple(data.get("supersedes", [])),
            notes=str(data.get("notes", "")),
            renamed=tuple(sorted(renamed.items())),
            tailor_hook_api=None if api is None else parse_hook_api(api),
            migrations=tuple(
                Migration.from_dict(m, f"migrations[{i}]")
                for i, m in enumerate(data.get("migrations", []))
            ),
            renamed_hooks=tuple(sorted(renamed_hooks.items())),
            renamed_params=_param_pairs(renamed_params),
        )
        manifest.check()
        return manifest

    def merged(self, fragment: Mapping[str, Any], version: str) -> ReleaseManifest:
        """This manifest as planned release ``version`` with ``fragment`` merged in
        (its settings added, its ``supersedes`` and ``migrations`` appended), then
        validated as a whole. A fragment's setting may not redefine a key
        differently."""
        unknown = set(fragment) - FRAGMENT_FIELDS
        if unknown:
            raise InvalidInputError(
                "fragment",
                f"unknown field(s): {', '.join(sorted(unknown))} "
                f"(a fragment has: {', '.join(sorted(FRAGMENT_FIELDS - {'schema_version'}))})",
            )
        for name in ("settings", "supersedes", "migrations"):
            if not isinstance(fragment.get(name, []), list | tuple):
                raise InvalidInputError(f"fragment.{name}", "must be a list")
        data = self.to_dict()
        data["version"] = version
        data["status"] = PLANNED
        settings = {s["key"]: s for s in data["settings"]}
        for i, item in enumerate(fragment.get("settings", [])):
            if not isinstance(item, Mapping):
                raise InvalidInputError(f"fragment.settings[{i}]", "settings are tables")
            new = _entry(SettingDefinition.from_dict, item, f"fragment.settings[{i}]").to_dict()
            old = settings.get(new["key"])
            if old is not None and old != new:
                raise InvalidInputError(
                    f"fragment.settings[{i}]",
                    f"{new['key']!r} is already defined differently in the release",
                )
            settings[new["key"]] = new
        data["settings"] = list(settings.values())
        data["supersedes"] = list(
            dict.fromkeys([*data["supersedes"], *fragment.get("supersedes", [])])
        )
        migrations = {(m["customization"], m["tenant"]): m for m in data.get("migrations", [])}
        for i, item in enumerate(fragment.get("migrations", [])):
            m = Migration.from_dict(item, f"fragment.migrations[{i}]").to_dict()
            migrations[(m["customization"], m["tenant"])] = m
        if migrations:
            data["migrations"] = list(migrations.values())
        if fragment.get("notes"):
            data["notes"] = "\n".join(n for n in (data.get("notes"), fragment["notes"]) if n)
        return ReleaseManifest.from_dict(data)


@dataclass(frozen=True)
class ReleaseInfo:
    version: str
    status: str
    created_at: datetime
    supersedes: tuple[str, ...] = ()
    setting_count: int = 0
    manifest: Mapping[str, Any] = field(default_factory=dict)

    @property
    def parsed(self) -> Version:
        return Version(self.version)


def stored_definition(data: Mapping[str, Any]) -> SettingDefinition:
    """Rebuild a definition that was validated when it was stored."""
    return SettingDefinition.from_stored(data)


def stored_manifest(
    header: Mapping[str, Any], status: str, definitions: Sequence[Mapping[str, Any]]
) -> ReleaseManifest:
    """Rebuild a manifest that was validated when it was stored (header JSON of the
    ``releases`` row plus its ``setting_definitions`` rows)."""
    return ReleaseManifest(
        version=str(header["version"]),
        status=status,
        settings=tuple(stored_definition(d) for d in definitions),
        extension_points=tuple(
            ExtensionPoint.from_dict(e) for e in header.get("extension_points", [])
        ),
        supersedes=tuple(header.get("supersedes", ())),
        notes=str(header.get("notes", "")),
        renamed=tuple(sorted(dict(header.get("renamed", {})).items())),
        tailor_hook_api=header.get("tailor_hook_api"),
        migrations=tuple(
            Migration(
                m["capability"], m["customization"], m["tenant"], tuple(m["overrides"].items())
            )
            for m in header.get("migrations", ())
        ),
        renamed_hooks=tuple(sorted(dict(header.get("renamed_hooks", {})).items())),
        renamed_params=_param_pairs(header.get("renamed_params", {})),
    )


def _defines(m: ReleaseManifest) -> set[str]:
    """Keys ``m`` really defines (not listed as removed at or below it)."""
    out = set()
    for d in m.settings:
        try:
            gone = d.removed is not None and Version(d.removed) <= m.parsed
        except ValueError:  # InvalidVersion or a 5,000-digit segment
            gone = False
        if not gone:
            out.add(d.key)
    return out


def contradictions(manifest: ReleaseManifest, others: Iterable[ReleaseManifest]) -> list[str]:
    """Where ``manifest`` and a later or earlier **planned** release disagree: a
    setting one release drops (defined by the release before it, gone from it,
    not renamed) that a later planned release still defines."""
    releases = sorted([*others, manifest], key=lambda m: m.parsed)
    defined = {m.version: _defines(m) for m in releases}
    warnings = []
    for i, m in enumerate(releases):
        if i == 0:
            continue
        previous = releases[i - 1]
        renamed = {old for old, _new in m.renamed}
        dropped = defined[previous.version] - defined[m.version] - renamed
        for later in releases[i + 1 :]:
            if later.status != PLANNED or manifest.version not in (m.version, later.version):
                continue
            for key in sorted(dropped & defined[later.version]):
                warnings.append(
                    f"{m.version} drops {key} (defined in {previous.version}), but planned "
                    f"{later.version} still defines it: drop it there too, or keep it in "
                    f"{m.version}"
                )
    return warnings


#: a rename chain longer than this is a cycle in the manifests
_MAX_CHAIN = 50


@dataclass(frozen=True)
class Renames:
    """What ``target`` renames, through every release up to it: old -> the name
    the target defines (a chain a -> b -> c collapses to a -> c). What a rewrite
    (``tailor customization fix``) and a rehearsal translate recorded inputs by."""

    keys: Mapping[str, str]
    hooks: Mapping[str, str]
    #: hook (its name in the target) -> old parameter -> new parameter
    params: Mapping[str, Mapping[str, str]]

    @classmethod
    def up_to(cls, target: ReleaseManifest, history: Iterable[ReleaseManifest]) -> Renames:
        releases = sorted(
            [m for m in history if m.parsed < target.parsed and m.version != target.version]
            + [target],
            key=lambda m: m.parsed,
        )
        keys: dict[str, str] = {}
        hooks: dict[str, str] = {}
        params: dict[str, dict[str, str]] = {}
        for m in releases:
            keys.update(m.renamed)
            hooks.update(m.renamed_hooks)
            for hook, pairs in m.renamed_params:
                params.setdefault(hook, {}).update(pairs)
        defined = {d.key for d in target.settings}
        points = {p.name: p for p in target.extension_points}
        return cls(
            keys=_collapse(keys, defined),
            hooks=_collapse(hooks, set(points)),
            params={
                hook: {o: n for o, n in pairs.items() if n in points[hook].params}
                for hook, pairs in params.items()
                if hook in points
            },
        )


def _collapse(chain: Mapping[str, str], defined: set[str]) -> dict[str, str]:
    out = {}
    for old in chain:
        new = old
        for _ in range(_MAX_CHAIN):
            if new not in chain:
                break
            new = chain[new]
        if new in defined and new != old and old not in defined:
            out[old] = new
    return out


class _Release(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def status(self) -> str: ...


_R = TypeVar("_R", bound=_Release)


def newest_release(releases: Iterable[_R], status: str | None = None) -> _R | None:
    """The newest (by version) of ``releases`` in ``status`` (any when None); None if
    there is none. The one answer to "the current release" (``RELEASED``), "the
    default upgrade target" (``PLANNED``) and "the newest release" (any)."""
    wanted = [r for r in releases if status is None or r.status == status]
    return max(wanted, key=lambda r: Version(r.version)) if wanted else None


def known_releases(versions: Iterable[str]) -> str:
    """An error hint listing ``versions`` in version order ("known releases: 1.0, 2.0")."""
    return "known releases: " + (", ".join(sorted(versions, key=Version)) or "none")


@dataclass(frozen=True)
class ReleaseHistory:
    """Every registered release, by version: the one place that answers "the
    manifest of version V", "the current release", "which release supersedes a
    capability" and "the known versions" (for error hints)."""

    manifests: Mapping[str, ReleaseManifest]

    @classmethod
    def of(cls, manifests: Iterable[ReleaseManifest]) -> ReleaseHistory:
        return cls({m.version: m for m in sorted(manifests, key=lambda m: m.parsed)})

    @property
    def versions(self) -> tuple[str, ...]:
        """Known versions, oldest first."""
        return tuple(self.manifests)

    def known(self) -> str:
        """The known versions for an error hint."""
        return known_releases(self.versions)

    def manifest(self, version: str, field_name: str = "version") -> ReleaseManifest:
        """The manifest of ``version``; a missing one is a NotFound naming the known ones."""
        parse_version(version, field_name)
        try:
            return self.manifests[version]
        except KeyError:
            raise NotFoundError("release", version, self.known()) from None

    def others(self, version: str) -> tuple[ReleaseManifest, ...]:
        """Every manifest but ``version``'s, oldest first (a target's history)."""
        return tuple(m for v, m in self.manifests.items() if v != version)

    def renames_to(self, version: str) -> Renames:
        """What release ``version`` renames, through every release before it."""
        return Renames.up_to(self.manifest(version), self.others(version))

    @cached_property
    def current(self) -> ReleaseManifest | None:
        """The newest released release (None before any is registered)."""
        return newest_release(self.manifests.values(), RELEASED)

    @property
    def planned(self) -> tuple[ReleaseManifest, ...]:
        """Planned releases, oldest first."""
        return tuple(m for m in self.manifests.values() if m.status == PLANNED)

    @cached_property
    def superseded(self) -> Mapping[str, str]:
        """capability -> the first release (released or planned) that supersedes it."""
        out: dict[str, str] = {}
        for manifest in self.manifests.values():
            for capability in manifest.supersedes:
                out.setdefault(capability, manifest.version)
        return out
