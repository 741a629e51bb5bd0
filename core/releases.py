"""Releases: product versions with their manifest (setting catalog, extension
points, superseded capabilities)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from packaging.version import InvalidVersion, Version
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth import Principal
from core.definitions import SettingDefinition
from core.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from core.extension_points import ExtensionPoint
from core.models import Release, SettingDefinitionRow

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

    def check(self) -> None:
        """Raise :class:`InvalidInputError` for any inconsistency."""
        parse_version(self.version)
        if self.status not in STATUSES:
            raise InvalidInputError("status", f"{self.status!r} is not one of {STATUSES}")
        names: set[str] = set()
        for point in self.extension_points:
            if point.name in names:
                raise InvalidInputError(
                    f"extension_points[{point.name!r}]", "the hook is listed twice in this manifest"
                )
            names.add(point.name)
        seen: set[str] = set()
        for definition in self.settings:
            if definition.key in seen:
                raise InvalidInputError(
                    f"settings[{definition.key!r}]", "the key is defined twice in this manifest"
                )
            seen.add(definition.key)
            definition.check_consistent()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "status": self.status,
            "notes": self.notes,
            "supersedes": list(self.supersedes),
            "extension_points": [e.to_dict() for e in self.extension_points],
            "settings": [d.to_dict() for d in self.settings],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReleaseManifest:
        if "version" not in data:
            raise InvalidInputError("version", "the manifest has no 'version'")
        settings = tuple(
            SettingDefinition.from_dict(s, where=f"settings[{i}]")
            for i, s in enumerate(data.get("settings", []))
        )
        manifest = cls(
            version=str(data["version"]),
            status=str(data.get("status", PLANNED)),
            settings=settings,
            extension_points=tuple(
                ExtensionPoint.from_dict(e, where=f"extension_points[{i}]")
                for i, e in enumerate(data.get("extension_points", []))
            ),
            supersedes=tuple(data.get("supersedes", [])),
            notes=str(data.get("notes", "")),
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


class ReleaseService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def register(
        self, manifest: ReleaseManifest, principal: Principal, *, exist_ok: bool = False
    ) -> ReleaseInfo:
        """Store a release with its catalog in one transaction."""
        principal.can_import_releases()
        manifest.check()
        async with self._sessions.begin() as session:
            existing = await session.scalar(
                select(Release).where(Release.version == manifest.version)
            )
            if existing is not None:
                if exist_ok:
                    return _info(existing, len(manifest.settings))
                raise AlreadyExistsError("release", manifest.version)
            release = await _insert(session, manifest)
            return _info(release, len(manifest.settings))

    async def list(self, principal: Principal) -> list[ReleaseInfo]:
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

    async def definitions(self, version: str, principal: Principal) -> list[SettingDefinition]:
        principal.can_read_product()
        async with self._sessions() as session:
            release = await _get(session, version)
            rows = await session.scalars(
                select(SettingDefinitionRow.definition)
                .where(SettingDefinitionRow.release_id == release.id)
                .order_by(SettingDefinitionRow.key)
            )
            return [stored_definition(d) for d in rows]


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
    if manifest.settings:
        await session.execute(
            insert(SettingDefinitionRow),
            [
                {"release_id": release.id, "key": d.key, "definition": d.to_dict()}
                for d in manifest.settings
            ],
        )
    return release


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
