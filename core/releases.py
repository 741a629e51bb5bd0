"""Releases: product versions with their manifest (setting catalog, extension
points, superseded capabilities)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from packaging.version import InvalidVersion, Version
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth import Principal
from core.definitions import SettingDefinition
from core.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from core.extension_points import ExtensionPoint
from core.models import AuditEntry, Release, SettingDefinitionRow, Tenant
from core.tenants import bump_data_version

T = TypeVar("T")

RELEASED = "released"
PLANNED = "planned"
STATUSES = (RELEASED, PLANNED)


def parse_version(value: str, field_name: str = "version") -> Version:
    try:
        return Version(value)
    except InvalidVersion:
        raise InvalidInputError(
            field_name, f"{value!r} is not a PEP 440 version (for example '2.0' or '3.0rc1')"
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
        "extension_points",
        "settings",
    }
)


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

    def check(self) -> None:
        """Raise :class:`InvalidInputError` for any inconsistency."""
        version = parse_version(self.version)
        if self.status not in STATUSES:
            raise InvalidInputError("status", f"{self.status!r} is not one of {STATUSES}")
        names: set[str] = set()
        for point in self.extension_points:
            where = f"extension_points[{point.name!r}]"
            if point.name in names:
                raise InvalidInputError(where, "the hook is listed twice in this manifest")
            names.add(point.name)
            _check_lifecycle(where, point.added, point.deprecated, point.removed, version)
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
            if point.deprecated_in(version) and point.replacement:
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
        for i, capability in enumerate(self.supersedes):
            if not isinstance(capability, str) or not capability.strip():
                raise InvalidInputError(f"supersedes[{i}]", "must be a non-empty capability name")

    @property
    def parsed(self) -> Version:
        return Version(self.version)

    @property
    def renames(self) -> dict[str, str]:
        return dict(self.renamed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "status": self.status,
            "notes": self.notes,
            "supersedes": list(self.supersedes),
            "renamed": dict(self.renamed),
            "extension_points": [e.to_dict() for e in self.extension_points],
            "settings": [d.to_dict() for d in self.settings],
        }

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
        for name in ("settings", "extension_points", "supersedes"):
            if not isinstance(data.get(name, []), list | tuple):
                raise InvalidInputError(name, "must be a list")
        renamed = data.get("renamed", {})
        if not isinstance(renamed, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in renamed.items()
        ):
            raise InvalidInputError("renamed", "must map old setting keys to new ones")
        for i, item in enumerate([*data.get("settings", []), *data.get("extension_points", [])]):
            if not isinstance(item, Mapping):
                raise InvalidInputError(f"entry {i}", "settings and extension points are tables")
        settings = tuple(
            _entry(SettingDefinition.from_dict, s, f"settings[{i}]")
            for i, s in enumerate(data.get("settings", []))
        )
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
        )
        manifest.check()
        return manifest


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
    )


class ReleaseService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def register(
        self,
        manifest: ReleaseManifest,
        principal: Principal,
        *,
        exist_ok: bool = False,
        replace: bool = False,
    ) -> ReleaseInfo:
        """Store a release with its catalog in one transaction. ``replace``: a
        planned release of that version is replaced (audited); a released one
        never is."""
        principal.can_import_releases()
        manifest.check()
        async with self._sessions.begin() as session:
            existing = await session.scalar(
                select(Release).where(Release.version == manifest.version)
            )
            if existing is not None:
                if exist_ok:
                    return _info(existing, len(manifest.settings))
                if not replace:
                    raise AlreadyExistsError(
                        "release",
                        manifest.version,
                        "pass --replace (GraphQL: replace: true) to replace a planned release",
                    )
                if existing.status != PLANNED or manifest.status != PLANNED:
                    raise InvalidInputError(
                        "version",
                        f"{manifest.version} is a released release: only planned releases "
                        "can be replaced",
                    )
                await session.execute(
                    delete(SettingDefinitionRow).where(
                        SettingDefinitionRow.release_id == existing.id
                    )
                )
                header = {k: v for k, v in manifest.to_dict().items() if k != "settings"}
                existing.manifest = header
                await _insert_definitions(session, existing.id, manifest)
                await bump_data_version(session, Tenant.release_id == existing.id)
                session.add(
                    AuditEntry(
                        actor=principal.name,
                        action="release_replaced",
                        key=f"release:{manifest.version}",
                        new={"settings": len(manifest.settings)},
                    )
                )
                return _info(existing, len(manifest.settings))
            release = await _insert(session, manifest)
            return _info(release, len(manifest.settings))

    async def delete(self, version: str, principal: Principal) -> None:
        """Delete a planned release while no tenant is on it (audited)."""
        principal.can_import_releases()
        async with self._sessions.begin() as session:
            release = await _get(session, version)
            if release.status != PLANNED:
                raise InvalidInputError(
                    "version", f"{version} is released: only planned releases can be deleted"
                )
            on_it = await session.scalar(
                select(func.count()).select_from(Tenant).where(Tenant.release_id == release.id)
            )
            if on_it:
                raise InvalidInputError(
                    "version", f"{on_it} tenant(s) are on {version}; move them first"
                )
            await session.execute(
                delete(SettingDefinitionRow).where(SettingDefinitionRow.release_id == release.id)
            )
            await session.delete(release)
            session.add(
                AuditEntry(
                    actor=principal.name,
                    action="release_deleted",
                    key=f"release:{version}",
                    old=PLANNED,
                )
            )

    async def contradictions(self, manifest: ReleaseManifest, principal: Principal) -> list[str]:
        """Warnings: where ``manifest`` and another planned release disagree (see
        :func:`contradictions`). Two statements."""
        principal.can_read_product()
        async with self._sessions() as session:
            releases = (
                await session.execute(
                    select(Release.id, Release.version, Release.status, Release.manifest)
                )
            ).all()
            definitions: dict[int, list[dict[str, Any]]] = {r.id: [] for r in releases}
            for release_id, definition in await session.execute(
                select(SettingDefinitionRow.release_id, SettingDefinitionRow.definition)
            ):
                definitions[release_id].append(definition)
        others = [
            stored_manifest(r.manifest or {"version": r.version}, r.status, definitions[r.id])
            for r in releases
            if r.version != manifest.version
        ]
        return contradictions(manifest, others)

    async def promote(self, version: str, principal: Principal) -> bool:
        """Mark a planned release as released (the running code has reached it).
        Returns whether anything changed; the change is audited."""
        principal.can_import_releases()
        async with self._sessions.begin() as session:
            changed = await session.execute(
                update(Release)
                .where(Release.version == version, Release.status == PLANNED)
                .values(status=RELEASED)
                .returning(Release.id)
            )
            promoted = changed.scalar_one_or_none()
            if promoted is None:
                return False
            await bump_data_version(session, Tenant.release_id == promoted)
            session.add(
                AuditEntry(
                    actor=principal.name,
                    action="release_released",
                    key=f"release:{version}",
                    old=PLANNED,
                    new=RELEASED,
                )
            )
            return True

    async def list_all(self, principal: Principal) -> list[ReleaseInfo]:
        principal.can_read_product()
        counts = (
            select(SettingDefinitionRow.release_id, func.count().label("n"))
            .group_by(SettingDefinitionRow.release_id)
            .subquery()
        )
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Release, func.coalesce(counts.c.n, 0)).outerjoin(
                        counts, counts.c.release_id == Release.id
                    )
                )
            ).all()
        return sorted((_info(r, n) for r, n in rows), key=lambda r: r.parsed)

    async def get(self, version: str, principal: Principal) -> ReleaseInfo:
        principal.can_read_product()
        async with self._sessions() as session:
            release = await _get(session, version)
            n = await session.scalar(
                select(func.count()).where(SettingDefinitionRow.release_id == release.id)
            )
            return _info(release, n or 0)

    async def manifest(self, version: str, principal: Principal) -> ReleaseManifest:
        """The full manifest of a registered release (two statements)."""
        principal.can_read_product()
        async with self._sessions() as session:
            release = await _get(session, version)
            rows = await _definition_rows(session, release.id)
            return stored_manifest(release.manifest or {}, release.status, rows)

    async def definitions(self, version: str, principal: Principal) -> list[SettingDefinition]:
        principal.can_read_product()
        async with self._sessions() as session:
            release = await _get(session, version)
            return [stored_definition(d) for d in await _definition_rows(session, release.id)]


async def _definition_rows(session: AsyncSession, release_id: int) -> list[dict[str, Any]]:
    """A release's stored setting definitions, by key."""
    rows = await session.scalars(
        select(SettingDefinitionRow.definition)
        .where(SettingDefinitionRow.release_id == release_id)
        .order_by(SettingDefinitionRow.key)
    )
    return list(rows)


async def _get(session: AsyncSession, version: str) -> Release:
    parse_version(version)
    release = await session.scalar(select(Release).where(Release.version == version))
    if release is None:
        known = (await session.scalars(select(Release.version))).all()
        hint = "known releases: " + (", ".join(sorted(known, key=Version)) or "none")
        raise NotFoundError("release", version, hint)
    return release


async def _insert(session: AsyncSession, manifest: ReleaseManifest) -> Release:
    header = {k: v for k, v in manifest.to_dict().items() if k != "settings"}
    release = Release(version=manifest.version, status=manifest.status, manifest=header)
    session.add(release)
    await session.flush()
    await _insert_definitions(session, release.id, manifest)
    return release


async def _insert_definitions(
    session: AsyncSession, release_id: int, manifest: ReleaseManifest
) -> None:
    if manifest.settings:
        await session.execute(
            insert(SettingDefinitionRow),
            [
                {"release_id": release_id, "key": d.key, "definition": d.to_dict()}
                for d in manifest.settings
            ],
        )


def _defines(m: ReleaseManifest) -> set[str]:
    """Keys ``m`` really defines (not listed as removed at or below it)."""
    out = set()
    for d in m.settings:
        try:
            gone = d.removed is not None and Version(d.removed) <= m.parsed
        except InvalidVersion:
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


def _info(release: Release, setting_count: int) -> ReleaseInfo:
    manifest = release.manifest or {}
    return ReleaseInfo(
        version=release.version,
        status=release.status,
        created_at=release.created_at,
        supersedes=tuple(manifest.get("supersedes", ())),
        setting_count=setting_count,
        manifest=manifest,
    )


def latest(versions: Iterable[str]) -> str | None:
    ordered: Sequence[str] = sorted(versions, key=Version)
    return ordered[-1] if ordered else None
