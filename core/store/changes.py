"""Change control: protected environments, change requests, scheduled changes.

A tenant's environment is **protected** or not (opt-in). In a protected
environment every override change is a **change request**; so is, for a tenant
with any protected environment, a tenant-wide override, a customization's
enablement or pin and an upgrade (they reach every environment). A request is
proposed with a reason (:meth:`ChangeRequestService.propose`), approved by
principals other than its author who have the right to make the change
(:meth:`~ChangeRequestService.approve`; the environment says how many), and on
its last approval applied through the very services a direct write goes through,
with their checks: a stale expected revision is a ``Conflict`` and changes
nothing. The services refuse a direct write to a protected environment
(:mod:`core.store.authorization`), so nothing bypasses this. Where nothing is
protected a proposal needs no approval and applies at once.

A request with ``apply_at`` is applied then (:meth:`~ChangeRequestService.apply_due`,
every worker's background job): workers claim due requests with ``FOR UPDATE
SKIP LOCKED`` (PostgreSQL), and the apply marks the request applied in its own
transaction, so it happens exactly once, across workers and restarts.

Every state change is audited (action ``propose_change``, ``approve_change``,
``reject_change``, ``apply_change``, ``fail_change``; key ``change:<id>``), and so
is on the change feed.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import Principal, Role
from core.model.clock import utcnow
from core.model.errors import (
    ChangedSinceError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NotRevertibleError,
    PermissionDeniedError,
    TailorError,
)
from core.model.secrets import is_sealed
from core.store.authorization import (
    AlreadyApplied,
    Authorization,
    ChangeState,
    Unchanged,
    checked_reason,
)
from core.store.feed import FeedService
from core.store.models import AuditEntry, ChangeRequestRow, Environment, Tenant, aware
from core.store.readiness_service import ReadinessService
from core.store.registry import RegistryService
from core.store.settings import SECRET_MARK, SettingsService
from core.store.tenants import load_tenant_ref

log = logging.getLogger("tailor.changes")

#: a worker applying a due request holds it this long (then another may retry)
CLAIM = timedelta(seconds=60)
#: due requests one worker claims per turn
DUE_BATCH = 20
#: how often each worker looks for due requests (seconds)
APPLY_EVERY = 0.25
MAX_LIST = 200
MAX_APPROVALS = 10


class ChangeKind(enum.StrEnum):
    SET_SETTING = "set_setting"
    RESET_SETTING = "reset_setting"
    ENABLE_CUSTOMIZATION = "enable_customization"
    DISABLE_CUSTOMIZATION = "disable_customization"
    PIN_CUSTOMIZATION = "pin_customization"
    UPGRADE_TENANT = "upgrade_tenant"
    SET_PROTECTION = "set_protection"


_SETTING_KINDS = (ChangeKind.SET_SETTING, ChangeKind.RESET_SETTING)
_CUSTOMIZATION_KINDS = (
    ChangeKind.ENABLE_CUSTOMIZATION,
    ChangeKind.DISABLE_CUSTOMIZATION,
    ChangeKind.PIN_CUSTOMIZATION,
)


@dataclass(frozen=True)
class ProposedChange:
    """What a change request changes. ``value``: the setting's value
    (SET_SETTING); true to force an upgrade past blockers (UPGRADE_TENANT);
    ``{"protected": bool, "approvals": n}`` (SET_PROTECTION). ``version``: the
    customization version (enable, pin) or the target release (upgrade)."""

    tenant: str
    kind: ChangeKind
    reason: str
    environment: str | None = None
    key: str | None = None
    value: Any = None
    expected_revision: int | None = None
    customization: str | None = None
    version: str | None = None
    apply_at: datetime | None = None


@dataclass(frozen=True)
class Approval:
    actor: str
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class ChangeRequest:
    id: int
    tenant: str
    environment: str | None
    kind: ChangeKind
    key: str | None
    #: :data:`SECRET_MARK` for a secret setting's value
    value: Any
    expected_revision: int | None
    customization: str | None
    version: str | None
    reason: str
    apply_at: datetime | None
    state: ChangeState
    author: str
    required_approvals: int
    approvals: tuple[Approval, ...]
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    applied_at: datetime | None
    outcome: str | None
    reverts: int | None

    @property
    def summary(self) -> str:
        """One line: what it changes."""
        where = f" in {self.environment}" if self.environment else ""
        if self.kind is ChangeKind.SET_SETTING:
            return f"set {self.key} = {_shown(self.value)}{where}"
        if self.kind is ChangeKind.RESET_SETTING:
            return f"reset {self.key}{where}"
        if self.kind is ChangeKind.PIN_CUSTOMIZATION:
            return f"pin {self.customization} to {self.version}"
        if self.kind in _CUSTOMIZATION_KINDS:
            verb = "enable" if self.kind is ChangeKind.ENABLE_CUSTOMIZATION else "disable"
            return f"{verb} {self.customization}" + (f" {self.version}" if self.version else "")
        if self.kind is ChangeKind.UPGRADE_TENANT:
            return f"upgrade to {self.version}" + (" (forced)" if self.value else "")
        value = self.value if isinstance(self.value, dict) else {}
        if value.get("protected"):
            return f"protect {self.environment} ({value.get('approvals', 1)} approval(s))"
        return f"unprotect {self.environment}"


def _shown(value: Any) -> str:
    return SECRET_MARK if value == SECRET_MARK else repr(value)


def _required_right(principal: Principal, kind: ChangeKind, tenant: str) -> None:
    """The right to make the change itself (to propose or approve it)."""
    if kind in _SETTING_KINDS:
        principal.require_write_settings(tenant)
    elif kind in _CUSTOMIZATION_KINDS:
        principal.require_enable_customization(tenant)
    else:
        principal.require_manage_tenants()


def _not_found(request_id: int) -> NotFoundError:
    return NotFoundError("change request", str(request_id), "list them with changeRequests")


class ChangeRequestService:
    """Proposes, approves, rejects, lists and applies change requests, through
    the settings, registry and readiness services (their checks, their audit)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: SettingsService,
        registry: RegistryService,
        readiness: ReadinessService,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._registry = registry
        self._readiness = readiness

    # -- proposing -------------------------------------------------------------
    async def propose(
        self,
        principal: Principal,
        change: ProposedChange,
        *,
        reverts: int | None = None,
        break_glass: Authorization | None = None,
    ) -> ChangeRequest:
        """Check the change as its service would (nothing written), keep it as a
        request, and apply it at once when it needs no approval and is not
        scheduled. A change that fails when applied at once is ``failed`` and its
        error raised. ``break_glass`` (:meth:`Authorization.break_glass`, the
        operator's emergency path) needs no approval either, and is audited."""
        kind = ChangeKind(change.kind)
        _required_right(principal, kind, change.tenant)
        reason = checked_reason(change.reason)
        apply_at = _aware(change.apply_at)
        if change.expected_revision is not None and kind not in _SETTING_KINDS:
            raise InvalidInputError(
                "expectedRevision", "only override changes (SET_SETTING, RESET_SETTING) have one"
            )
        async with self._sessions() as session:
            ref = await load_tenant_ref(session, change.tenant)
        ref.check_environment(change.environment)
        value: Any = None
        expected = None
        key = change.key
        environment = change.environment
        if kind in _SETTING_KINDS:
            if not key:
                raise InvalidInputError("key", f"required for {kind.name}: the setting's key")
            reset = kind is ChangeKind.RESET_SETTING
            if not reset and change.value is None:
                raise InvalidInputError("value", "required for SET_SETTING: the value to set")
            prepared = await self._settings.prepare(
                principal,
                change.tenant,
                key,
                environment,
                change.expected_revision,
                change.value,
                reset=reset,
            )
            value = prepared.value
            if prepared.definition.secret and value is not None:
                value = self._settings.secrets.seal(value)  # never stored in plaintext
            # the approvers approve a change from what is there now
            expected = prepared.revision
            needed = ref.approvals_needed(environment)
        else:
            if key:
                raise InvalidInputError("key", f"only for override changes, not {kind.name}")
            if kind in _CUSTOMIZATION_KINDS:
                if environment is not None:
                    raise InvalidInputError(
                        "environment",
                        "a customization runs in every environment of the tenant: leave it out",
                    )
                if not change.customization:
                    raise InvalidInputError("customization", f"required for {kind.name}")
                if kind is ChangeKind.PIN_CUSTOMIZATION:
                    if not change.version:
                        raise InvalidInputError("version", "required for PIN_CUSTOMIZATION")
                    await self._registry.set_version(
                        principal, change.tenant, change.customization, change.version, dry_run=True
                    )
                else:
                    await self._registry.set_enabled(
                        principal,
                        change.tenant,
                        change.customization,
                        kind is ChangeKind.ENABLE_CUSTOMIZATION,
                        change.version,
                        dry_run=True,
                    )
                needed = ref.approvals_needed(None)
            elif kind is ChangeKind.UPGRADE_TENANT:
                if not change.version:
                    raise InvalidInputError("version", "required for UPGRADE_TENANT: the target")
                value = bool(change.value)
                await self._readiness.check_upgrade(
                    principal, change.tenant, change.version, force=value, reason=reason
                )
                needed = ref.approvals_needed(None)
            else:
                value, needed = _protection(ref.protected, environment, change.value)
        glass = break_glass is not None and break_glass.break_glass_reason is not None
        if glass and needed:
            needed = 0
        else:
            glass = False
        row = ChangeRequestRow(
            environment=environment,
            kind=kind.value,
            key=key,
            value=value,
            expected_revision=expected,
            customization=change.customization,
            version=change.version,
            reason=reason,
            apply_at=apply_at,
            state=(ChangeState.PENDING if needed else ChangeState.APPROVED).value,
            author=principal.name,
            author_key=principal.key,
            author_role=principal.role.value,
            required_approvals=needed,
            approvals=[],
            reverts=reverts,
        )
        now = utcnow()
        due = not needed and (apply_at is None or apply_at <= now)
        async with self._sessions.begin() as session:
            row.tenant_id = ref.id
            if due:
                row.claimed_until = now + CLAIM  # applied right below, not by the scheduler
            session.add(row)
            await session.flush()
            if glass and break_glass is not None:
                await break_glass.record(session, ref.id, environment, f"change:{row.id}")
            session.add(
                _audit(
                    principal.name, "propose_change", row, new=_audited(row, ref.slug), why=reason
                )
            )
        request_id = row.id
        if due:
            await self._apply(request_id, principal.name)
        return await self._get(request_id)

    async def protect(
        self,
        principal: Principal,
        tenant: str,
        environment: str,
        protected: bool,
        approvals: int | None = None,
        reason: str | None = None,
        break_glass: Authorization | None = None,
    ) -> ChangeRequest:
        """Protect an environment (applies at once) or weaken its protection
        (unprotect, fewer approvals): a change request on the protected
        environment like any other."""
        value: dict[str, Any] = {"protected": protected}
        if approvals is not None:
            value["approvals"] = approvals
        return await self.propose(
            principal,
            ProposedChange(
                tenant,
                ChangeKind.SET_PROTECTION,
                reason or ("protect" if protected else "unprotect") + f" {environment}",
                environment=environment,
                value=value,
            ),
            break_glass=break_glass,
        )

    async def revert(
        self,
        principal: Principal,
        sequence: int,
        reason: str | None = None,
        *,
        break_glass: Authorization | None = None,
    ) -> ChangeRequest:
        """Propose the inverse of the change the feed holds at ``sequence`` (a
        direct write's or an applied change request's), from its audit entry's old
        value: an override set back (or reset), a customization disabled (enabled),
        a pin moved back to the version before. Applied at once, or a change
        request where protected. A later edit of the same thing is a ``Conflict``
        (an override's revision; a customization's later enablement or pin change,
        checked again when the request applies). What has no inverse (an upgrade,
        a release import, a triage decision, a request's state) is
        :class:`NotRevertibleError`, saying what to do instead; a secret's old
        value is never kept, so only a secret's first setting can be reverted."""
        principal.require_role(Role.ADMIN, Role.CONSULTANT, action="reverting a change")
        feed = FeedService(self._sessions)
        found = await feed.get(sequence)
        visible = found is not None and (
            principal.sees_all_tenants
            if found[0].tenant is None
            else principal.in_scope(found[0].tenant)
        )
        if found is None or not visible:
            raise NotFoundError(
                "change",
                str(sequence),
                "no change of a tenant in your scope has that sequence in the change feed "
                "(it may have been pruned)",
            )
        event, entry = found
        if entry is None:
            raise NotRevertibleError(
                sequence, event.action, "its audit entry is gone, so its old value is unknown"
            )
        if entry.action == "apply_change":
            # an applied change request: revert what it changed, written beside it
            request = await self._get(int(str(entry.key).removeprefix("change:")))
            sequence, entry = await _applied_by(feed, sequence, entry, request)
        why = (reason or "").strip() or f"revert of change {sequence}"
        tenant = event.tenant
        if tenant is None or entry.action not in _REVERTIBLE:
            raise NotRevertibleError(sequence, entry.action, _not_revertible(entry.action))
        if entry.action in _SETTING_ACTIONS:
            inverse = _setting_inverse(sequence, tenant, entry, why)
        else:
            inverse = await _customization_inverse(feed, sequence, tenant, entry, why)
            assert entry.tenant_id is not None
            async with self._sessions() as session:
                await _unchanged(sequence, entry).check(session, entry.tenant_id)
        return await self.propose(principal, inverse, reverts=sequence, break_glass=break_glass)

    # -- deciding --------------------------------------------------------------
    async def approve(
        self, principal: Principal, request_id: int, comment: str | None = None
    ) -> ChangeRequest:
        """Approve as a principal other than the author who has the right to make
        the change; the last approval applies it (or, with ``apply_at`` still
        ahead, leaves it to the schedule). A stale request fails with the service's
        error (``Conflict``) and changes nothing."""
        principal.require_role(Role.ADMIN, Role.CONSULTANT, action="approving a change request")
        comment = (comment or "").strip() or None
        now = utcnow()
        async with self._sessions.begin() as session:
            row, slug = await self._locked(session, principal, request_id)
            kind = ChangeKind(row.kind)
            _required_right(principal, kind, slug)
            if row.state != ChangeState.PENDING:
                raise InvalidInputError(
                    "id",
                    f"change request {request_id} is {row.state}: only pending ones are approved",
                )
            if principal.same_as(row.author_key, row.author):
                raise PermissionDeniedError(
                    f"approving change request {request_id}: you proposed it; another "
                    "principal with the right to make this change must approve it (four eyes)"
                )
            given = list(row.approvals or [])
            if any(principal.same_as(a.get("key", ""), a["actor"]) for a in given):
                raise InvalidInputError("id", f"you already approved change request {request_id}")
            given.append(
                {
                    "actor": principal.name,
                    "key": principal.key,
                    "comment": comment,
                    "at": now.isoformat(),
                }
            )
            row.approvals = given
            complete = len(given) >= row.required_approvals
            apply_at = aware(row.apply_at)
            due = complete and (apply_at is None or apply_at <= now)
            if complete:
                row.state = ChangeState.APPROVED.value
                row.decided_by = principal.name
                row.decided_at = now
            if due:
                row.claimed_until = now + CLAIM
            session.add(
                _audit(
                    principal.name,
                    "approve_change",
                    row,
                    new={"approvals": len(given), "of": row.required_approvals},
                    why=comment,
                )
            )
        if due:
            await self._apply(request_id, principal.name)
        return await self._get(request_id)

    async def reject(self, principal: Principal, request_id: int, reason: str) -> ChangeRequest:
        """Reject a request not yet applied (its author may withdraw it)."""
        principal.require_role(Role.ADMIN, Role.CONSULTANT, action="rejecting a change request")
        why = checked_reason(reason)
        async with self._sessions.begin() as session:
            row, slug = await self._locked(session, principal, request_id)
            _required_right(principal, ChangeKind(row.kind), slug)
            if row.state not in (ChangeState.PENDING, ChangeState.APPROVED):
                raise InvalidInputError(
                    "id",
                    f"change request {request_id} is {row.state}: it can no longer be rejected",
                )
            row.state = ChangeState.REJECTED.value
            row.decided_by = principal.name
            row.decided_at = utcnow()
            row.outcome = f"rejected by {principal.name}: {why}"
            session.add(
                _audit(principal.name, "reject_change", row, new={"state": "rejected"}, why=why)
            )
        return await self._get(request_id)

    async def _locked(
        self, session: AsyncSession, principal: Principal, request_id: int
    ) -> tuple[ChangeRequestRow, str]:
        found = (
            await session.execute(
                select(ChangeRequestRow, Tenant.slug)
                .join(Tenant, Tenant.id == ChangeRequestRow.tenant_id)
                .where(ChangeRequestRow.id == request_id)
                .with_for_update(of=ChangeRequestRow)
            )
        ).first()
        # one answer for a request of another tenant and for none at all
        if found is None or not principal.in_scope(found[1]):
            raise _not_found(request_id)
        return found[0], found[1]

    # -- reading ---------------------------------------------------------------
    async def list(
        self,
        principal: Principal,
        tenant: str | None = None,
        state: ChangeState | None = None,
        limit: int = MAX_LIST,
    ) -> list[ChangeRequest]:
        """Pending first, then newest first; only tenants in the caller's scope.
        One statement."""
        principal.require_role(
            Role.ADMIN, Role.RELEASE_MANAGER, Role.CONSULTANT, action="reading change requests"
        )
        if tenant is not None:
            principal.require_tenant(tenant, action="reading change requests")
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInputError("limit", f"must be between 1 and {MAX_LIST}")
        query = _select().order_by(
            case((ChangeRequestRow.state == ChangeState.PENDING, 0), else_=1),
            ChangeRequestRow.id.desc(),
        )
        if tenant is not None:
            query = query.where(Tenant.slug == tenant)
        elif not principal.sees_all_tenants:
            query = query.where(Tenant.slug.in_(sorted(principal.tenants)))
        if state is not None:
            query = query.where(ChangeRequestRow.state == ChangeState(state).value)
        async with self._sessions() as session:
            rows = (await session.execute(query.limit(limit))).all()
        return [_request(row, slug) for row, slug in rows]

    async def get(self, principal: Principal, request_id: int) -> ChangeRequest:
        principal.require_role(
            Role.ADMIN, Role.RELEASE_MANAGER, Role.CONSULTANT, action="reading change requests"
        )
        request = await self._get(request_id)
        if not principal.in_scope(request.tenant):
            raise _not_found(request_id)
        return request

    async def _get(self, request_id: int) -> ChangeRequest:
        async with self._sessions() as session:
            found = (
                await session.execute(_select().where(ChangeRequestRow.id == request_id))
            ).first()
        if found is None:
            raise _not_found(request_id)
        return _request(found[0], found[1])

    # -- applying --------------------------------------------------------------
    async def apply_due(self, now: datetime | None = None) -> int:
        """Apply the approved requests whose time has come (and any approved one a
        crashed worker left): claimed with ``FOR UPDATE SKIP LOCKED``, so several
        workers share them; applied exactly once. How many this turn applied."""
        now = now or utcnow()
        due = (
            ChangeRequestRow.state == ChangeState.APPROVED,
            or_(ChangeRequestRow.apply_at.is_(None), ChangeRequestRow.apply_at <= now),
            or_(ChangeRequestRow.claimed_until.is_(None), ChangeRequestRow.claimed_until < now),
        )
        # a plain read first: most turns find nothing, and take no write lock
        async with self._sessions() as session:
            if await session.scalar(select(ChangeRequestRow.id).where(*due).limit(1)) is None:
                return 0
        async with self._sessions.begin() as session:
            ids = list(
                (
                    await session.scalars(
                        select(ChangeRequestRow.id)
                        .where(*due)
                        .order_by(ChangeRequestRow.apply_at, ChangeRequestRow.id)
                        .limit(DUE_BATCH)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            )
            if ids:
                await session.execute(
                    update(ChangeRequestRow)
                    .where(ChangeRequestRow.id.in_(ids))
                    .values(claimed_until=now + CLAIM)
                )
        applied = 0
        for request_id in ids:
            try:
                if await self._apply(request_id, "scheduler"):
                    applied += 1
            except TailorError as exc:
                log.info("scheduled change request %s failed: %s", request_id, exc.message)
        return applied

    async def _apply(self, request_id: int, actor: str) -> bool:
        """Apply an approved request through its service; False when another
        worker already had. A refusal marks it failed and is raised."""
        request = await self._get(request_id)
        kind = request.kind
        author = Principal(
            role=Role(await self._author_role(request_id)),
            name=request.author,
            tenants=frozenset({request.tenant}),
        )
        unchanged = None
        if request.reverts is not None and kind in _CUSTOMIZATION_KINDS:
            unchanged = Unchanged(
                request.reverts,
                f"customization:{request.customization}",
                _PIN_ACTIONS if kind is ChangeKind.PIN_CUSTOMIZATION else _ENABLEMENT_ACTIONS,
            )
        authorization = Authorization.applying(request_id, actor, unchanged)
        reason = f"change request {request_id}: {request.reason}"
        try:
            if kind is ChangeKind.SET_SETTING:
                async with self._sessions() as session:
                    stored = await session.scalar(
                        select(ChangeRequestRow.value).where(ChangeRequestRow.id == request_id)
                    )
                value = self._settings.secrets.open(stored) if is_sealed(stored) else stored
                await self._settings.set(
                    author,
                    request.tenant,
                    str(request.key),
                    value,
                    environment=request.environment,
                    expected_revision=request.expected_revision,
                    reason=reason,
                    authorization=authorization,
                )
            elif kind is ChangeKind.RESET_SETTING:
                await self._settings.reset(
                    author,
                    request.tenant,
                    str(request.key),
                    environment=request.environment,
                    expected_revision=request.expected_revision,
                    reason=reason,
                    authorization=authorization,
                )
            elif kind is ChangeKind.PIN_CUSTOMIZATION:
                await self._registry.set_version(
                    author,
                    request.tenant,
                    str(request.customization),
                    str(request.version),
                    authorization=authorization,
                )
            elif kind in _CUSTOMIZATION_KINDS:
                await self._registry.set_enabled(
                    author,
                    request.tenant,
                    str(request.customization),
                    kind is ChangeKind.ENABLE_CUSTOMIZATION,
                    request.version,
                    authorization=authorization,
                )
            elif kind is ChangeKind.UPGRADE_TENANT:
                await self._readiness.upgrade(
                    author,
                    request.tenant,
                    str(request.version),
                    force=bool(request.value),
                    reason=reason,
                    authorization=authorization,
                )
            else:
                await self._set_protection(request, authorization)
        except AlreadyApplied:
            return False
        except TailorError as exc:
            await self._fail(request_id, actor, exc)
            raise
        return True

    async def _author_role(self, request_id: int) -> str:
        async with self._sessions() as session:
            role = await session.scalar(
                select(ChangeRequestRow.author_role).where(ChangeRequestRow.id == request_id)
            )
        return str(role)

    async def _set_protection(self, request: ChangeRequest, authorization: Authorization) -> None:
        value = request.value if isinstance(request.value, dict) else {}
        async with self._sessions.begin() as session:
            ref = await load_tenant_ref(session, request.tenant)
            await authorization.record(session, ref.id, request.environment, None)
            env = await session.scalar(
                select(Environment).where(
                    Environment.tenant_id == ref.id, Environment.name == request.environment
                )
            )
            if env is None:
                raise NotFoundError("environment", str(request.environment))
            old = {"protected": bool(env.protected), "approvals": int(env.approvals)}
            env.protected = bool(value.get("protected"))
            env.approvals = int(value.get("approvals", env.approvals))
            session.add(
                AuditEntry(
                    actor=request.author,
                    action="protect_environment" if env.protected else "unprotect_environment",
                    tenant_id=ref.id,
                    environment=request.environment,
                    old=old,
                    new={"protected": env.protected, "approvals": env.approvals},
                    reason=f"change request {request.id}: {request.reason}",
                )
            )

    async def _fail(self, request_id: int, actor: str, exc: TailorError) -> None:
        outcome = f"{exc.code}: {exc.message}"
        if isinstance(exc, ChangedSinceError):
            outcome = f"CONFLICT: {exc.message}"
        elif isinstance(exc, ConflictError):
            outcome = (
                f"CONFLICT: {exc.key} is at revision {exc.actual}, the request was made "
                f"against {exc.expected}; nothing was changed: propose it again"
            )
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(ChangeRequestRow)
                .where(
                    ChangeRequestRow.id == request_id,
                    ChangeRequestRow.state == ChangeState.APPROVED,
                )
                .with_for_update()
            )
            if row is None:  # applied or decided meanwhile: leave it as it is
                return
            row.state = ChangeState.FAILED.value
            row.outcome = outcome
            row.claimed_until = None
            session.add(_audit(actor, "fail_change", row, new={"state": "failed"}, why=outcome))


#: the audit actions a revert inverts
_SETTING_ACTIONS = ("set", "reset")
_ENABLEMENT_ACTIONS = ("enable_customization", "disable_customization")
_PIN_ACTIONS = ("pin_customization",)
_REVERTIBLE = (*_SETTING_ACTIONS, *_ENABLEMENT_ACTIONS, *_PIN_ACTIONS)
_REQUEST_STATES = ("propose_change", "approve_change", "reject_change", "fail_change")
#: what to do instead of reverting a change that has no inverse
_INSTEAD = {
    "upgrade_tenant": "Tailor has no downgrades (the tenant's data and customizations may "
    "already be in the new release's shape, and readiness judged only the way up): revert "
    "the changes made with or after it one by one, or upgrade to a release that fixes the "
    "problem",
    "break_glass": "it is the audited note that let the change beside it past protection; "
    "revert that change by its own sequence",
    "triage_finding": "a triage decision is undone by triaging the finding again "
    "(triageFinding, or the console's readiness page)",
    "protect_environment": "change the protection itself (setEnvironmentProtection, "
    "tailor tenant protect)",
    "unprotect_environment": "change the protection itself (setEnvironmentProtection, "
    "tailor tenant protect)",
}


def _not_revertible(action: str) -> str:
    if action in _INSTEAD:
        return _INSTEAD[action]
    if action in _REQUEST_STATES:
        return (
            "it is a change request's state: reject a pending request with rejectChange; "
            "an applied one is reverted by the sequence of its apply_change (or of the "
            "change it made)"
        )
    if action.startswith("release_"):
        return "a release import is no change of a tenant: import the manifest you want again"
    return (
        "only override changes (set, reset), customization enablements (enable, disable) "
        "and version pins are reverted"
    )


async def _applied_by(
    feed: FeedService, sequence: int, entry: AuditEntry, request: ChangeRequest
) -> tuple[int, AuditEntry]:
    """The change an ``apply_change`` entry's ``request`` made: written in the same
    transaction right after it (the applying service records the request first)."""
    if request.kind in (ChangeKind.UPGRADE_TENANT, ChangeKind.SET_PROTECTION):
        action = "upgrade_tenant" if request.kind is ChangeKind.UPGRADE_TENANT else "protect"
        raise NotRevertibleError(
            sequence,
            f"apply_change of change request {request.id}: {request.summary}",
            _INSTEAD.get(action, _INSTEAD["protect_environment"]),
        )
    actions: tuple[str, ...]
    if request.kind in _SETTING_KINDS:
        key, actions = request.key, _SETTING_ACTIONS
    else:
        key = f"customization:{request.customization}"
        pin = request.kind is ChangeKind.PIN_CUSTOMIZATION
        actions = _PIN_ACTIONS if pin else _ENABLEMENT_ACTIONS
    for found, beside in await feed.beside(sequence, entry.tenant_id, span=2):
        if (
            found > sequence
            and beside.key == key
            and beside.action in actions
            and beside.environment == request.environment
        ):
            return found, beside
    raise NotRevertibleError(
        sequence,
        f"apply_change of change request {request.id}: {request.summary}",
        "no change it made follows it on the change feed (it changed nothing, or was "
        "pruned): revert a change by its own sequence",
    )


def _setting_inverse(sequence: int, tenant: str, entry: AuditEntry, why: str) -> ProposedChange:
    if entry.old == SECRET_MARK:
        raise NotRevertibleError(
            sequence,
            entry.action,
            "it replaced a secret value, which is never kept (the audit log stores "
            "<secret>): it cannot be recovered; set the value again with setSetting",
        )
    assert entry.revision is not None and entry.key
    return ProposedChange(
        tenant,
        ChangeKind.RESET_SETTING if entry.old is None else ChangeKind.SET_SETTING,
        why,
        environment=entry.environment,
        key=entry.key,
        value=entry.old,
        expected_revision=entry.revision,
    )


async def _customization_inverse(
    feed: FeedService, sequence: int, tenant: str, entry: AuditEntry, why: str
) -> ProposedChange:
    name = str(entry.key).removeprefix("customization:")
    if entry.action in _ENABLEMENT_ACTIONS:
        if bool(entry.old) == bool(entry.new):
            raise NotRevertibleError(
                sequence,
                entry.action,
                f"it changed nothing ({name} was already "
                f"{'enabled' if entry.new else 'disabled'} for {tenant})",
            )
        kind = ChangeKind.ENABLE_CUSTOMIZATION if entry.old else ChangeKind.DISABLE_CUSTOMIZATION
        return ProposedChange(tenant, kind, why, customization=name)
    if entry.old is None:
        enabled = [
            s
            for s, beside in await feed.beside(sequence, entry.tenant_id, span=1)
            if s < sequence and beside.action == "enable_customization" and beside.key == entry.key
        ]
        instead = (
            f"revert its enablement, change {enabled[-1]}, instead"
            if enabled
            else "disable it instead (setCustomizationEnabled, a DISABLE_CUSTOMIZATION change)"
        )
        raise NotRevertibleError(
            sequence,
            entry.action,
            f"it pinned {tenant}'s first version of {name} ({entry.new}), so there is no "
            f"version before it: {instead}",
        )
    return ProposedChange(
        tenant, ChangeKind.PIN_CUSTOMIZATION, why, customization=name, version=str(entry.old)
    )


def _unchanged(sequence: int, entry: AuditEntry) -> Unchanged:
    """A customization revert's condition: no later change of the same kind."""
    pin = entry.action in _PIN_ACTIONS
    return Unchanged(sequence, str(entry.key), _PIN_ACTIONS if pin else _ENABLEMENT_ACTIONS)


def _protection(protected: Any, environment: str | None, value: Any) -> tuple[dict[str, Any], int]:
    """SET_PROTECTION's value, and the approvals it needs: weakening a protected
    environment's protection (off, or fewer approvals) is a change request there."""
    if environment is None:
        raise InvalidInputError("environment", "required for SET_PROTECTION")
    if not isinstance(value, dict) or not isinstance(value.get("protected"), bool):
        raise InvalidInputError(
            "value", 'SET_PROTECTION takes {"protected": true|false, "approvals": n}'
        )
    current = protected.get(environment)
    approvals = value.get("approvals", current or 1)
    if isinstance(approvals, bool) or not isinstance(approvals, int):
        raise InvalidInputError("approvals", "a whole number of approvals")
    if not 1 <= approvals <= MAX_APPROVALS:
        raise InvalidInputError("approvals", f"between 1 and {MAX_APPROVALS}")
    wanted = {"protected": value["protected"], "approvals": approvals}
    weakening = current is not None and (not value["protected"] or approvals < current)
    return wanted, (current if weakening else 0)


def _aware(at: datetime | None) -> datetime | None:
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at


def _select() -> Any:
    return select(ChangeRequestRow, Tenant.slug).join(
        Tenant, Tenant.id == ChangeRequestRow.tenant_id
    )


def _request(row: ChangeRequestRow, slug: str) -> ChangeRequest:
    created = aware(row.created_at)
    assert created is not None
    return ChangeRequest(
        id=row.id,
        tenant=slug,
        environment=row.environment,
        kind=ChangeKind(row.kind),
        key=row.key,
        value=SECRET_MARK if is_sealed(row.value) else row.value,
        expected_revision=row.expected_revision,
        customization=row.customization,
        version=row.version,
        reason=row.reason,
        apply_at=aware(row.apply_at),
        state=ChangeState(row.state),
        author=row.author,
        required_approvals=row.required_approvals,
        approvals=tuple(
            Approval(a["actor"], a.get("comment"), datetime.fromisoformat(a["at"]))
            for a in (row.approvals or [])
        ),
        created_at=created,
        decided_by=row.decided_by,
        decided_at=aware(row.decided_at),
        applied_at=aware(row.applied_at),
        outcome=row.outcome,
        reverts=row.reverts,
    )


def _audited(row: ChangeRequestRow, tenant: str) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "key": row.key,
        "value": SECRET_MARK if is_sealed(row.value) else row.value,
        "customization": row.customization,
        "version": row.version,
        "apply_at": row.apply_at.isoformat() if row.apply_at else None,
        "approvals_needed": row.required_approvals,
        "tenant": tenant,
    }


def _audit(
    actor: str, action: str, row: ChangeRequestRow, *, new: Any, why: str | None
) -> AuditEntry:
    return AuditEntry(
        actor=actor,
        action=action,
        tenant_id=row.tenant_id,
        environment=row.environment,
        key=f"change:{row.id}",
        new=new,
        reason=why,
    )
