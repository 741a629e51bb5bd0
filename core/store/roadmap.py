"""The roadmap store: items made from fold-back candidates, their pledges, and
shipping them when a release supersedes their capability (see
:mod:`core.analysis.roadmap` for the values and the ranking)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.analysis.roadmap import (
    CoveredCustomization,
    Pledge,
    RoadmapItem,
    RoadmapStatus,
    SourceKind,
    find_candidate,
    rank,
    scored,
    visible,
)
from core.model.auth import Principal
from core.model.errors import InvalidInputError, NotFoundError
from core.model.manifest import parse_version
from core.model.money import currency as iso_currency
from core.model.money import format_amount, parse_amount
from core.store.foldback_service import FoldbackService
from core.store.gcpause import gc_paused
from core.store.models import AuditEntry, Tenant, aware
from core.store.models import RoadmapItem as ItemRow
from core.store.models import RoadmapPledge as PledgeRow
from core.store.registry import RegistryService
from core.store.releases import load_history

#: customization name -> blocked tenant upgrades it causes across planned releases
Blockers = Callable[[], Awaitable[Mapping[str, int]]]

MAX_TITLE = 200
MAX_NOTE = 2000
#: statuses a person sets; ``shipped`` is set by registering the release
SETTABLE = (RoadmapStatus.PROPOSED, RoadmapStatus.COMMITTED)
_HINT = "list fold-back candidates and their ids: tailor foldback --format json"


class RoadmapService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        foldback: FoldbackService,
        registry: RegistryService,
        blockers: Blockers,
    ) -> None:
        self._sessions = sessions
        self._foldback = foldback
        self._registry = registry
        self._blockers = blockers

    # -- reading ---------------------------------------------------------------
    async def items(
        self, principal: Principal, status: RoadmapStatus | None = None
    ) -> list[RoadmapItem]:
        """Every item the caller may see, ranked (see :func:`core.analysis.roadmap.rank`).
        A constant number of statements: the items, the pledges, the blockers."""
        principal.require_read_roadmap()
        async with self._sessions() as session:
            query = select(ItemRow).order_by(ItemRow.id)
            if status is not None:
                query = query.where(ItemRow.status == status.value)
            rows = list((await session.scalars(query)).all())
            pledges = await _pledges(session, [r.id for r in rows])
        if not rows:
            return []
        with gc_paused():
            blockers = await self._blockers()
        items = (scored(_item(r, pledges.get(r.id, ())), blockers) for r in rows)
        return rank(v for v in (visible(i, principal) for i in items) if v is not None)

    async def item(self, principal: Principal, item_id: int) -> RoadmapItem:
        for found in await self.items(principal):
            if found.id == item_id:
                return found
        raise _not_found(item_id)

    # -- writing ---------------------------------------------------------------
    async def create(
        self,
        principal: Principal,
        source: str,
        *,
        source_kind: SourceKind = SourceKind.CANDIDATE,
        title: str | None = None,
        tenants: Sequence[str] = (),
        capability: str | None = None,
        target_release: str | None = None,
    ) -> RoadmapItem:
        """An item from fold-back candidate ``source``: its customizations and
        tenants (plus ``tenants``), its evidence, and the capability that ships it
        (the one its customizations declare, unless given). Audited."""
        principal.require_plan_roadmap()
        title = _title(title)
        capability = _capability(capability)
        if target_release is not None:
            parse_version(target_release, "targetRelease")
        report = await self._foldback.candidates(Principal.system("roadmap"))
        candidate = find_candidate(report.candidates, source.strip())
        if candidate is None:
            raise NotFoundError("fold-back candidate", source, _HINT)
        if candidate.family is not None:
            source_kind = SourceKind.FAMILY  # a family's id is its candidate's
        elif source_kind is SourceKind.FAMILY:
            raise NotFoundError(
                "fold-back family", source, f"it is a candidate of no family ({_HINT})"
            )
        registrations = {
            r.name: r for r in await self._registry.list_all(Principal.system("roadmap"))
        }
        covered = tuple(
            CoveredCustomization(
                name,
                tuple(registrations[name].manifest.tenants) if name in registrations else (),
            )
            for name in candidate.customizations
        )
        if capability is None:
            declared = {
                registrations[n].manifest.capability
                for n in candidate.customizations
                if n in registrations and registrations[n].manifest.capability
            }
            capability = declared.pop() if len(declared) == 1 else None
        if capability is None and candidate.proposal is not None:
            # the capability the family's proposal supersedes
            capability = candidate.proposal.capability
        async with self._sessions.begin() as session:
            extra = await _existing_tenants(session, tenants)
            history = await load_history(session)
            shipped_in = history.superseded.get(capability) if capability else None
            row = ItemRow(
                title=title or candidate.title,
                source_kind=source_kind.value,
                source_id=source.strip(),
                capability=capability,
                status=(RoadmapStatus.SHIPPED if shipped_in else RoadmapStatus.PROPOSED).value,
                target_release=target_release,
                shipped_in=shipped_in,
                customizations=[{"name": c.name, "tenants": list(c.tenants)} for c in covered],
                tenants=sorted({*candidate.tenants, *extra}),
                evidence=f"{candidate.kind.value}: {candidate.evidence}",
                created_by=principal.name,
            )
            session.add(row)
            await session.flush()
            session.add(
                AuditEntry(
                    actor=principal.name,
                    action="roadmap_item_created",
                    key=f"roadmap:{row.id}",
                    new=row.audit_view(),
                )
            )
            item_id = row.id
        return await self.item(principal, item_id)

    async def update(
        self,
        principal: Principal,
        item_id: int,
        *,
        status: RoadmapStatus | None = None,
        target_release: str | None = None,
        add_tenants: Sequence[str] = (),
    ) -> RoadmapItem:
        """Commit an item (or move it back to proposed), set its target release,
        cover more tenants. Audited; nothing changes on an error."""
        principal.require_plan_roadmap()
        if status is not None and status not in SETTABLE:
            raise InvalidInputError(
                "status",
                "an item becomes shipped when a release that supersedes its capability "
                "is registered; set proposed or committed",
            )
        if target_release is not None:
            parse_version(target_release, "targetRelease")
        async with self._sessions.begin() as session:
            row = await _row(session, item_id)
            before = row.audit_view()
            if status is not None and row.status == RoadmapStatus.SHIPPED.value:
                raise InvalidInputError(
                    "status", f"roadmap item {item_id} shipped in {row.shipped_in}"
                )
            extra = await _existing_tenants(session, add_tenants)
            if status is not None:
                row.status = status.value
            if target_release is not None:
                row.target_release = target_release
            if extra:
                row.tenants = sorted({*row.tenants, *extra})
            after = row.audit_view()
            if after != before:
                session.add(
                    AuditEntry(
                        actor=principal.name,
                        action="roadmap_item_changed",
                        key=f"roadmap:{item_id}",
                        old=before,
                        new=after,
                    )
                )
        return await self.item(principal, item_id)

    async def pledge(
        self,
        principal: Principal,
        item_id: int,
        tenant: str,
        amount: str,
        currency: str,
        note: str | None = None,
    ) -> RoadmapItem:
        """``tenant`` co-funds the item with ``amount`` (a decimal string in
        ``currency``'s major unit, ISO 4217). One pledge per tenant and item:
        pledging again replaces it. Audited under the tenant."""
        principal.require_plan_roadmap()
        code = iso_currency(currency)
        minor = parse_amount(amount, code)
        if note is not None and len(note) > MAX_NOTE:
            raise InvalidInputError("note", f"at most {MAX_NOTE} characters")
        async with self._sessions.begin() as session:
            row = await _row(session, item_id)
            tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
            if tenant_id is None:
                raise NotFoundError("tenant", tenant)
            if tenant not in row.tenants:
                raise InvalidInputError(
                    "tenant",
                    f"roadmap item {item_id} does not cover tenant {tenant!r}; cover it first "
                    f"(tailor roadmap update {item_id} --add-tenant {tenant}, GraphQL "
                    "updateRoadmapItem(input: {addTenants: [...]}))",
                )
            existing = await session.scalar(
                select(PledgeRow).where(
                    PledgeRow.item_id == item_id, PledgeRow.tenant_id == tenant_id
                )
            )
            old: dict[str, Any] | None = None
            if existing is None:
                existing = PledgeRow(item_id=item_id, tenant_id=tenant_id)
                session.add(existing)
            else:
                old = _pledge_audit(tenant, existing)
            existing.amount_minor = minor
            existing.currency = code
            existing.note = note
            existing.pledged_by = principal.name
            # not under the tenant: a pledge changes nothing the tenant's apps see,
            # and only admins and release managers read pledges of every tenant
            session.add(
                AuditEntry(
                    actor=principal.name,
                    action="roadmap_pledged",
                    key=f"roadmap:{item_id}",
                    old=old,
                    new=_pledge_audit(tenant, existing),
                )
            )
        return await self.item(principal, item_id)


def _title(title: str | None) -> str | None:
    if title is None:
        return None
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidInputError("title", f"1 to {MAX_TITLE} characters")
    return title


def _capability(capability: str | None) -> str | None:
    if capability is None:
        return None
    capability = capability.strip()
    if not capability or len(capability) > 200:
        raise InvalidInputError("capability", "1 to 200 characters (a capability name)")
    return capability


def _not_found(item_id: int) -> NotFoundError:
    return NotFoundError("roadmap item", str(item_id), "list them: tailor roadmap list")


async def _row(session: AsyncSession, item_id: int) -> ItemRow:
    row = await session.get(ItemRow, item_id)
    if row is None:
        raise _not_found(item_id)
    return row


async def _existing_tenants(session: AsyncSession, slugs: Sequence[str]) -> list[str]:
    wanted = sorted({s.strip() for s in slugs})
    if not wanted:
        return []
    found = set((await session.scalars(select(Tenant.slug).where(Tenant.slug.in_(wanted)))).all())
    missing = [s for s in wanted if s not in found]
    if missing:
        raise NotFoundError("tenant", missing[0], "create it first: tailor tenant create")
    return wanted


async def _pledges(session: AsyncSession, item_ids: list[int]) -> dict[int, list[Pledge]]:
    out: dict[int, list[Pledge]] = {}
    if not item_ids:
        return out
    rows = await session.execute(
        select(PledgeRow, Tenant.slug)
        .join(Tenant, Tenant.id == PledgeRow.tenant_id)
        .where(PledgeRow.item_id.in_(item_ids))
        .order_by(PledgeRow.item_id, Tenant.slug)
    )
    for p, slug in rows:
        out.setdefault(p.item_id, []).append(
            Pledge(
                slug,
                p.amount_minor,
                p.currency,
                p.note,
                p.pledged_by,
                aware(p.pledged_at) or p.pledged_at,
            )
        )
    return out


def _item(row: ItemRow, pledges: Sequence[Pledge]) -> RoadmapItem:
    return RoadmapItem(
        id=row.id,
        title=row.title,
        source_kind=SourceKind(row.source_kind),
        source_id=row.source_id,
        capability=row.capability,
        status=RoadmapStatus(row.status),
        target_release=row.target_release,
        shipped_in=row.shipped_in,
        customizations=tuple(
            CoveredCustomization(c["name"], tuple(c.get("tenants", ()))) for c in row.customizations
        ),
        tenants=tuple(row.tenants),
        evidence=row.evidence,
        created_by=row.created_by,
        created_at=aware(row.created_at) or row.created_at,
        pledges=tuple(pledges),
    )


def _pledge_audit(tenant: str, p: PledgeRow) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "amount": format_amount(p.amount_minor, p.currency),
        "currency": p.currency,
        "note": p.note,
    }
