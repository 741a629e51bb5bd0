"""Front-end apps: registering them, their trusted documents (stored by sha256)
and their declared OFREP flag keys; looking documents up for ``/graphql`` with a
constant number of statements per request (see :mod:`core.model.apps`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.apps import (
    MAX_DOCUMENT_CHARS,
    MAX_OPERATIONS,
    App,
    Operation,
    PushedOperation,
    PushResult,
    app_name,
    app_not_found,
    document_hash,
    flag_keys,
)
from core.model.auth import Principal, Role
from core.model.clock import utcnow
from core.model.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from core.store.models import AppOperationRow, AppRow, AuditEntry, Tenant, aware

#: seconds an app's trusted set is used without asking the database again: the
#: bound on how late a push or a change of ``trusted_only`` made by another
#: process takes effect here (as for tokens, core.store.tokens)
APP_CACHE_SECONDS = 2.0
#: documents and apps remembered per process
MAX_CACHED = 10_000


@dataclass(frozen=True)
class TrustedSet:
    """What ``/graphql`` needs to know of an app: whether its tokens run only its
    documents, and the hashes of those documents."""

    trusted_only: bool
    hashes: frozenset[str]


class AppService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        #: sha256 -> (document text, the tenants whose apps hold it); the text is
        #: immutable (content-addressed), the tenants are read again on a miss
        self._documents: dict[str, tuple[str, frozenset[str]]] = {}
        #: app name -> (its trusted set, monotonic time read)
        self._apps: dict[str, tuple[TrustedSet | None, float]] = {}

    # -- writing ---------------------------------------------------------------
    async def register(
        self, principal: Principal, name: str, tenant: str, *, trusted_only: bool = False
    ) -> App:
        """Register ``name`` for ``tenant``; again for the same tenant: sets
        ``trusted_only``. Audited."""
        name = app_name(name)
        principal.require_manage_app(tenant)
        async with self._sessions.begin() as session:
            tenant_row = await session.scalar(select(Tenant).where(Tenant.slug == tenant))
            if tenant_row is None:
                raise NotFoundError("tenant", tenant, "list tenants: tailor tenant list")
            row = await session.scalar(select(AppRow).where(AppRow.name == name))
            if row is not None and row.tenant_id != tenant_row.id:
                raise AlreadyExistsError("app", name, "app names are unique: choose another")
            action = "app_changed"
            old = None
            if row is None:
                action = "app_registered"
                row = AppRow(
                    name=name,
                    tenant_id=tenant_row.id,
                    trusted_only=trusted_only,
                    flags=[],
                    created_by=principal.name,
                    created_at=utcnow(),
                )
                session.add(row)
            elif row.trusted_only != trusted_only:
                old = {"trusted_only": row.trusted_only}
                row.trusted_only = trusted_only
            else:
                action = ""
            if action:
                session.add(
                    AuditEntry(
                        actor=principal.name,
                        action=action,
                        tenant_id=tenant_row.id,
                        key=f"app:{name}",
                        old=old,
                        new={"trusted_only": trusted_only},
                    )
                )
        self._apps.pop(name, None)
        return await self.app(principal, name)

    async def push_operations(
        self, principal: Principal, name: str, operations: Sequence[PushedOperation]
    ) -> PushResult:
        """Store each operation by the sha256 of its text (one already stored is
        left as it is). Audited with the ids stored."""
        if not operations:
            raise InvalidInputError("document", "the document holds no operation")
        for op in operations:
            if len(op.document) > MAX_DOCUMENT_CHARS:
                raise InvalidInputError(
                    "document",
                    f"operation {op.name or '(anonymous)'} is longer than "
                    f"{MAX_DOCUMENT_CHARS} characters",
                )
        async with self._sessions.begin() as session:
            row, tenant = await self._owned(session, principal, name)
            known = {
                r.sha256: r
                for r in (
                    await session.scalars(
                        select(AppOperationRow).where(AppOperationRow.app_id == row.id)
                    )
                ).all()
            }
            pushed: list[tuple[AppOperationRow, bool]] = []
            new: list[str] = []
            for op in operations:
                sha = document_hash(op.document)
                if sha in known:
                    pushed.append((known[sha], False))
                    continue
                stored = AppOperationRow(
                    app_id=row.id,
                    sha256=sha,
                    name=op.name,
                    document=op.document,
                    keys=list(op.keys),
                    prefixes=list(op.prefixes),
                    pushed_by=principal.name,
                    pushed_at=utcnow(),
                )
                session.add(stored)
                known[sha] = stored
                pushed.append((stored, True))
                new.append(sha)
            if len(known) > MAX_OPERATIONS:
                raise InvalidInputError(
                    "document", f"an app holds at most {MAX_OPERATIONS} operations"
                )
            if new:
                session.add(
                    AuditEntry(
                        actor=principal.name,
                        action="app_operations_pushed",
                        tenant_id=tenant.id,
                        key=f"app:{name}",
                        new={"ids": [f"sha256:{h}" for h in new]},
                    )
                )
            await session.flush()
            results = tuple((_operation(r), fresh) for r, fresh in pushed)
        self._apps.pop(name, None)
        return PushResult(await self.app(principal, name), results)

    async def push_flags(
        self, principal: Principal, name: str, keys: Iterable[str], *, replace: bool = False
    ) -> App:
        """Declare setting keys the app reads as OFREP flags (added to those
        declared; ``replace``: instead of them). Audited."""
        declared = flag_keys(keys)
        async with self._sessions.begin() as session:
            row, tenant = await self._owned(session, principal, name)
            before = list(row.flags or ())
            after = list(declared) if replace else list(dict.fromkeys([*before, *declared]))
            if after != before:
                row.flags = after
                session.add(
                    AuditEntry(
                        actor=principal.name,
                        action="app_flags_pushed",
                        tenant_id=tenant.id,
                        key=f"app:{name}",
                        old={"flags": before},
                        new={"flags": after},
                    )
                )
        return await self.app(principal, name)

    # -- reading ---------------------------------------------------------------
    async def apps(self, principal: Principal, tenant: str | None = None) -> list[App]:
        """The apps the caller may see (of ``tenant`` only, when given), by name.
        Two statements, however many apps and documents."""
        principal.require_read_apps()
        if tenant is not None:
            principal.require_tenant(tenant, action="reading apps")
        return await self._load(principal, tenant=tenant)

    async def app(self, principal: Principal, name: str) -> App:
        principal.require_read_apps()
        found = await self._load(principal, name=name)
        if not found:
            raise app_not_found(name)
        return found[0]

    async def every_app(self) -> list[App]:
        """Every app with its documents, for readiness (which keeps the tenants in
        scope): one statement, however many apps and documents."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(AppRow, Tenant.slug, AppOperationRow)
                    .join(Tenant, AppRow.tenant_id == Tenant.id)
                    .outerjoin(AppOperationRow, AppOperationRow.app_id == AppRow.id)
                    .order_by(AppRow.name, AppOperationRow.id)
                )
            ).all()
        apps: dict[int, tuple[AppRow, str, list[Operation]]] = {}
        for row, slug, op in rows:
            entry = apps.setdefault(row.id, (row, slug, []))
            if op is not None:
                entry[2].append(_operation(op))
        return [_app(r, slug, ops) for r, slug, ops in apps.values()]

    async def _load(
        self, principal: Principal, *, tenant: str | None = None, name: str | None = None
    ) -> list[App]:
        async with self._sessions() as session:
            query = (
                select(AppRow, Tenant.slug)
                .join(Tenant, AppRow.tenant_id == Tenant.id)
                .order_by(AppRow.name)
            )
            if tenant is not None:
                query = query.where(Tenant.slug == tenant)
            if name is not None:
                query = query.where(AppRow.name == name)
            rows = [(r, slug) for r, slug in (await session.execute(query)).all()]
            rows = [(r, slug) for r, slug in rows if principal.in_scope(slug)]
            if not rows:
                return []
            ops_query = select(AppOperationRow).order_by(AppOperationRow.id)
            if name is not None or tenant is not None:
                ops_query = ops_query.where(AppOperationRow.app_id.in_([r.id for r, _ in rows]))
            ops: dict[int, list[Operation]] = {}
            for op in (await session.scalars(ops_query)).all():
                ops.setdefault(op.app_id, []).append(_operation(op))
        return [_app(r, slug, ops.get(r.id, ())) for r, slug in rows]

    async def _owned(
        self, session: AsyncSession, principal: Principal, name: str
    ) -> tuple[AppRow, Tenant]:
        """The app and its tenant, for a caller who may manage it; one "not
        found" for an app elsewhere and nowhere."""
        principal.require_role(Role.ADMIN, Role.CONSULTANT, action="managing an app")
        found = (
            await session.execute(
                select(AppRow, Tenant)
                .join(Tenant, AppRow.tenant_id == Tenant.id)
                .where(AppRow.name == name)
            )
        ).first()
        if found is None or not principal.in_scope(found[1].slug):
            raise app_not_found(name)
        row, tenant = found
        principal.require_manage_app(tenant.slug)
        return row, tenant

    # -- /graphql ----------------------------------------------------------------
    async def documents(self, hashes: Iterable[str], principal: Principal) -> dict[str, str]:
        """The texts of the stored documents with these hashes that an app of a
        tenant in the caller's scope holds (others, and unknown hashes, are left
        out: tenant A's token never runs a document only tenant B pushed).
        Remembered in this process: at most one statement, however many hashes."""
        wanted = set(hashes)
        found: dict[str, str] = {}
        missing: set[str] = set()
        for sha in wanted:
            known = self._documents.get(sha)
            if known is not None and _sees(principal, known[1]):
                found[sha] = known[0]
            else:
                missing.add(sha)
        if missing:
            async with self._sessions() as session:
                rows = (
                    await session.execute(
                        select(AppOperationRow.sha256, AppOperationRow.document, Tenant.slug)
                        .join(AppRow, AppRow.id == AppOperationRow.app_id)
                        .join(Tenant, Tenant.id == AppRow.tenant_id)
                        .where(AppOperationRow.sha256.in_(sorted(missing)))
                    )
                ).all()
            read: dict[str, tuple[str, set[str]]] = {}
            for sha, text, slug in rows:
                read.setdefault(sha, (text, set()))[1].add(slug)
            if len(self._documents) + len(read) >= MAX_CACHED:
                self._documents.clear()
            for sha, (text, tenants) in read.items():
                self._documents[sha] = (text, frozenset(tenants))
                if _sees(principal, tenants):
                    found[sha] = text
        return found

    async def trusted_set(self, name: str) -> TrustedSet | None:
        """The app's trusted set (None: no such app), read again after
        :data:`APP_CACHE_SECONDS`; one statement when read."""
        now = time.monotonic()
        cached = self._apps.get(name)
        if cached is not None and now - cached[1] < APP_CACHE_SECONDS:
            return cached[0]
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(AppRow.trusted_only, AppOperationRow.sha256)
                    .outerjoin(AppOperationRow, AppOperationRow.app_id == AppRow.id)
                    .where(AppRow.name == name)
                )
            ).all()
        found = (
            TrustedSet(bool(rows[0][0]), frozenset(h for _t, h in rows if h is not None))
            if rows
            else None
        )
        if len(self._apps) >= MAX_CACHED:
            self._apps.clear()
        self._apps[name] = (found, now)
        return found


def _sees(principal: Principal, tenants: Iterable[str]) -> bool:
    return principal.sees_all_tenants or any(principal.in_scope(t) for t in tenants)


def _app(row: AppRow, tenant: str, operations: Iterable[Operation]) -> App:
    return App(
        name=row.name,
        tenant=tenant,
        trusted_only=row.trusted_only,
        flags=tuple(row.flags or ()),
        operations=tuple(operations),
        created_by=row.created_by,
        created_at=aware(row.created_at) or utcnow(),
    )


def _operation(row: AppOperationRow) -> Operation:
    return Operation(
        sha256=row.sha256,
        name=row.name,
        document=row.document,
        keys=tuple(row.keys or ()),
        prefixes=tuple(row.prefixes or ()),
        pushed_by=row.pushed_by,
        pushed_at=aware(row.pushed_at) or utcnow(),
    )
