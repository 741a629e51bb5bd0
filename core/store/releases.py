"""The release store: registering, replacing, promoting and deleting releases,
and loading them back as values (:mod:`core.model.manifest`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.analysis.roadmap import RoadmapStatus
from core.model.auth import Principal
from core.model.definitions import SettingDefinition
from core.model.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from core.model.manifest import (
    PLANNED,
    RELEASED,
    ReleaseHistory,
    ReleaseInfo,
    ReleaseManifest,
    contradictions,
    known_releases,
    parse_version,
    stored_definition,
    stored_manifest,
)
from core.store.models import AuditEntry, Release, SettingDefinitionRow, Tenant
from core.store.models import RoadmapItem as RoadmapItemRow
from core.store.tenants import bump_data_version


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
        principal.require_import_releases()
        manifest.check()
        if manifest.renamed_hooks:  # a rename is checked against the hook it renames
            history = await self.history(principal)
            manifest.check_renames_against(history.others(manifest.version))
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
                await _ship_roadmap_items(session, manifest, principal.name)
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
            session.add(
                AuditEntry(
                    actor=principal.name,
                    action="release_imported",
                    key=f"release:{manifest.version}",
                    new={"settings": len(manifest.settings), "status": manifest.status},
                )
            )
            await _ship_roadmap_items(session, manifest, principal.name)
            return _info(release, len(manifest.settings))

    async def import_planned(
        self, manifest: ReleaseManifest, principal: Principal, *, replace: bool = False
    ) -> tuple[ReleaseInfo, list[str]]:
        """Register ``manifest`` as a **planned** release (whatever status its file
        says: no code runs it yet), and the warnings where it contradicts another
        planned release (see :func:`core.model.manifest.contradictions`)."""
        planned = dataclasses.replace(manifest, status=PLANNED)
        info = await self.register(planned, principal, replace=replace)
        return info, await self.contradictions(planned, principal)

    async def import_fragment(
        self, fragment: Mapping[str, Any], into: str, principal: Principal
    ) -> tuple[ReleaseInfo, ReleaseManifest, list[str]]:
        """Merge a manifest fragment (``tailor foldback propose``) into planned
        release ``into``, created from the current release when it does not exist
        yet; the result is validated as a whole before anything is stored."""
        principal.require_import_releases()
        parse_version(into, "into")
        history = await self.history(principal)
        existing = history.manifests.get(into)
        if existing is not None and existing.status != PLANNED:
            raise InvalidInputError(
                "into", f"{into} is released: a fragment merges into a planned release only"
            )
        base = existing if existing is not None else history.current
        if base is None:
            raise InvalidInputError(
                "into", "there is no current release to create the planned release from"
            )
        merged = base.merged(fragment, into)
        info = await self.register(merged, principal, replace=existing is not None)
        return info, merged, await self.contradictions(merged, principal)

    async def delete(self, version: str, principal: Principal) -> None:
        """Delete a planned release while no tenant is on it (audited)."""
        principal.require_import_releases()
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
        :func:`core.model.manifest.contradictions`). Two statements."""
        history = await self.history(principal)
        return contradictions(manifest, history.others(manifest.version))

    async def history(self, principal: Principal) -> ReleaseHistory:
        """Every registered release as values (two statements)."""
        principal.require_read_product()
        async with self._sessions() as session:
            return await load_history(session)

    async def promote(self, version: str, principal: Principal) -> bool:
        """Mark a planned release as released (the running code has reached it).
        Returns whether anything changed; the change is audited."""
        principal.require_import_releases()
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
        principal.require_read_product()
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
        principal.require_read_product()
        async with self._sessions() as session:
            release = await _get(session, version)
            n = await session.scalar(
                select(func.count()).where(SettingDefinitionRow.release_id == release.id)
            )
            return _info(release, n or 0)

    async def manifest(self, version: str, principal: Principal) -> ReleaseManifest:
        """The full manifest of a registered release (two statements)."""
        principal.require_read_product()
        async with self._sessions() as session:
            release = await _get(session, version)
            rows = await _definition_rows(session, release.id)
            return stored_manifest(release.manifest or {}, release.status, rows)

    async def definitions(self, version: str, principal: Principal) -> list[SettingDefinition]:
        principal.require_read_product()
        async with self._sessions() as session:
            release = await _get(session, version)
            return [stored_definition(d) for d in await _definition_rows(session, release.id)]


async def load_history(session: AsyncSession) -> ReleaseHistory:
    """Every release with its definitions, in two statements whatever their number."""
    releases = (
        await session.execute(select(Release.id, Release.version, Release.status, Release.manifest))
    ).all()
    definitions: dict[int, list[dict[str, Any]]] = {r.id: [] for r in releases}
    for release_id, definition in await session.execute(
        select(SettingDefinitionRow.release_id, SettingDefinitionRow.definition).order_by(
            SettingDefinitionRow.release_id, SettingDefinitionRow.key
        )
    ):
        definitions[release_id].append(definition)
    return ReleaseHistory.of(
        stored_manifest(r.manifest or {"version": r.version}, r.status, definitions[r.id])
        for r in releases
    )


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
        raise NotFoundError("release", version, known_releases(known))
    return release


async def _ship_roadmap_items(
    session: AsyncSession, manifest: ReleaseManifest, actor: str
) -> list[int]:
    """Mark every open item whose capability ``manifest`` supersedes as shipped in
    it (audited). In the transaction that registers the release. Returns the items shipped."""
    if not manifest.supersedes:
        return []
    rows = (
        await session.scalars(
            select(RoadmapItemRow).where(
                RoadmapItemRow.capability.in_(list(manifest.supersedes)),
                RoadmapItemRow.status != RoadmapStatus.SHIPPED.value,
            )
        )
    ).all()
    for row in rows:
        old = row.audit_view()
        row.status = RoadmapStatus.SHIPPED.value
        row.shipped_in = manifest.version
        session.add(
            AuditEntry(
                actor=actor,
                action="roadmap_item_shipped",
                key=f"roadmap:{row.id}",
                old=old,
                new=row.audit_view(),
            )
        )
    return [r.id for r in rows]


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
