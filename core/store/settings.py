"""Settings: resolution with provenance, and writes with optimistic concurrency.

Resolution order (later wins): release default < tenant override < environment
override < customization hooks. Each resolved value carries its ``source``.
A resolution costs a constant number of SQL statements, whatever the number of
settings, and calls each hook once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.model.auth import Principal
from core.model.clock import utcnow
from core.model.definitions import SettingDefinition
from core.model.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SettingValidationError,
)
from core.model.hooks import RESOLVE_SETTINGS, HookFailure, HookRunner, NoHooks
from core.model.manifest import stored_definition
from core.model.overrides import TENANT_SCOPE
from core.model.secrets import SECRET_MARK, SecretBox, is_sealed
from core.store.authorization import (
    Authorization,
    locked_protection,
    require_change_request,
)
from core.store.models import AuditEntry, Override, SettingDefinitionRow, Tenant
from core.store.tenants import TenantRef, bump_data_version, load_tenant_ref

DEFAULT = "DEFAULT"
TENANT = "TENANT"
ENVIRONMENT = "ENVIRONMENT"
CUSTOMIZATION_PREFIX = "CUSTOMIZATION:"
#: how often a write without ``expected_revision`` is retried after losing a race
WRITE_RETRIES = 5
#: parsed definitions kept per service (a few releases' catalogs)
MAX_PARSED = 50_000


@dataclass(frozen=True)
class OverrideInfo:
    environment: str | None
    value: Any
    revision: int


@dataclass(frozen=True)
class OverrideListing:
    """One active override of a tenant, as a page lists it: a secret one never
    carries its value (nor its sealed form), only that it is set and its revision."""

    key: str
    environment: str | None
    #: the value; :data:`SECRET_MARK` for a secret setting
    value: Any
    revision: int
    secret: bool


@dataclass(frozen=True)
class ResolvedSetting:
    key: str
    value: Any
    source: str
    definition: SettingDefinition
    #: revision of the override at the scope asked for (environment when one was
    #: given, tenant-wide otherwise); 0 when there is none: the expectedRevision
    #: to send with the next write at that scope
    revision: int
    tenant_override: OverrideInfo | None = None
    environment_override: OverrideInfo | None = None
    #: where the value came from when a customization supplied it
    customization: str | None = None


@dataclass(frozen=True)
class Resolution:
    tenant: str
    environment: str | None
    release: str
    settings: Sequence[ResolvedSetting]
    failures: Sequence[HookFailure] = ()


@dataclass(frozen=True)
class SettingChange:
    tenant: str
    environment: str | None
    key: str
    old: Any
    new: Any
    revision: int
    action: str
    audit_id: int
    failures: Sequence[HookFailure] = field(default_factory=tuple)
    #: the definition the write was checked against
    definition: SettingDefinition | None = None

    def as_resolved(self) -> ResolvedSetting | None:
        """The written layer as a resolved setting: what to show when a failing
        customization hides the setting's definition after a committed write."""
        if self.definition is None:
            return None
        if self.new is None and self.action == "reset":
            return ResolvedSetting(self.key, self.definition.default, DEFAULT, self.definition, 0)
        source = TENANT if self.environment is None else ENVIRONMENT
        return ResolvedSetting(self.key, self.new, source, self.definition, self.revision)


def _scope(environment: str | None) -> str:
    return TENANT_SCOPE if environment is None else environment


class SettingsService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        hooks: HookRunner | None = None,
        secrets: SecretBox | None = None,
    ) -> None:
        self._sessions = sessions
        #: seals secret values before they are stored, opens them when read
        self.secrets = secrets if secrets is not None else SecretBox.from_env()
        #: the plugin runtime contains and times customizations itself: every
        #: failure comes back as a HookFailure for this tenant's request only (set
        #: once, when a server attaches its runtime: :func:`api.wiring.attach`)
        self.hooks: HookRunner = hooks or NoHooks()
        #: (release id, key) -> (stored JSON, definition built from it): a resolution
        #: re-reads the rows but rebuilds only definitions whose stored JSON differs
        self._parsed: dict[tuple[int, str], tuple[Mapping[str, Any], SettingDefinition]] = {}
        #: definitions served from / rebuilt into that cache, in this process (metrics)
        self.definition_cache_hits = 0
        self.definition_cache_misses = 0

    # -- reading ---------------------------------------------------------------
    async def resolve(
        self,
        principal: Principal,
        tenant: str,
        environment: str | None = None,
        keys: Sequence[str] | None = None,
        prefix: str | None = None,
    ) -> Resolution:
        principal.require_read_settings(tenant)
        async with self._sessions() as session:
            ref = await load_tenant_ref(session, tenant)
            ref.check_environment(environment)
            # whole inputs: customizations see every setting of the release,
            # whatever subset was asked for; the answer is filtered at the end
            definitions = await self._definitions(session, ref)
            overrides = await _overrides(session, ref, environment)
        failures: list[HookFailure] = []
        extra = await self.hooks.register_settings(tenant)
        failures.extend(extra.failures)
        for _owner, definition in extra.definitions:
            if definition.key not in definitions:
                definitions[definition.key] = definition
        if keys is not None:
            missing = sorted(set(keys) - set(definitions))
            if missing and not extra.failures:
                raise NotFoundError(
                    "setting",
                    ", ".join(missing),
                    f"not defined in release {ref.release} for tenant {tenant!r}",
                )

        layered = self._layer(definitions, overrides, environment, self._opened)
        if layered:
            outcome = await self.hooks.resolve_settings(
                tenant,
                environment,
                {k: s.value for k, s in layered.items()},
                # each reaches only the customizations declaring it
                secret=frozenset(k for k, s in layered.items() if s.definition.secret),
            )
            failures.extend(outcome.failures)
            for cv in outcome.values:
                current = layered.get(cv.key)
                if current is None:
                    continue  # a hook may only customize settings in this batch
                try:
                    value = current.definition.validate(cv.value)
                except SettingValidationError as exc:
                    failures.append(
                        HookFailure(
                            cv.customization,
                            RESOLVE_SETTINGS,
                            f"returned an invalid value for {exc.message}; "
                            "the non-customized value is served",
                        )
                    )
                    continue
                layered[cv.key] = _with(
                    current, value, CUSTOMIZATION_PREFIX + cv.customization, cv.customization
                )
        selected = [s for k, s in layered.items() if _selected(k, keys, prefix)]
        return Resolution(tenant, environment, ref.release, selected, failures)

    async def layered(
        self,
        principal: Principal,
        tenant: str,
        environment: str | None = None,
        extra: Sequence[SettingDefinition] = (),
        keys: Sequence[str] | None = None,
        prefix: str | None = None,
    ) -> Resolution:
        """Every setting of the tenant's release layered default < tenant <
        environment, and no customization called: what ``tailor_resolve_settings``
        receives (``tailor customization run`` hands it to one package; GraphQL
        ``settings(customizations: false)``). ``extra``: definitions a customization
        registers (a key the release defines wins). ``keys``/``prefix`` select what
        is answered. Secret values are never opened here: a secret set by an
        override reads :data:`SECRET_MARK`."""
        principal.require_read_settings(tenant)
        async with self._sessions() as session:
            ref = await load_tenant_ref(session, tenant)
            ref.check_environment(environment)
            definitions = await self._definitions(session, ref)
            overrides = await _overrides(session, ref, environment)
        for definition in extra:
            definitions.setdefault(definition.key, definition)
        layered = self._layer(definitions, overrides, environment, _sealed)
        selected = [s for k, s in layered.items() if _selected(k, keys, prefix)]
        return Resolution(tenant, environment, ref.release, selected)

    async def overrides(self, principal: Principal, tenant: str) -> list[OverrideListing]:
        """Every active override of ``tenant`` (tenant-wide and per environment),
        by key then environment: two statements. A setting is secret when its
        definition in the tenant's release says so, or when its stored value is
        sealed (a key the release no longer defines): either way the value stays
        out, so no page can show it."""
        principal.require_read_settings(tenant)
        async with self._sessions() as session:
            ref = await load_tenant_ref(session, tenant)
            definitions = await self._definitions(session, ref)
            rows = (
                await session.execute(
                    select(Override.environment, Override.key, Override.value, Override.revision)
                    .where(Override.tenant_id == ref.id, Override.active.is_(True))
                    .order_by(Override.key, Override.environment)
                )
            ).all()
        out = []
        for environment, key, value, revision in rows:
            definition = definitions.get(key)
            secret = is_sealed(value) or (definition is not None and definition.secret)
            out.append(
                OverrideListing(
                    key=key,
                    environment=None if environment == TENANT_SCOPE else environment,
                    value=SECRET_MARK if secret else value,
                    revision=revision,
                    secret=secret,
                )
            )
        return out

    @staticmethod
    def _layer(
        definitions: Mapping[str, SettingDefinition],
        overrides: Mapping[tuple[str, str], _Row],
        environment: str | None,
        secret: Callable[[_Row | None], _Row | None],
    ) -> dict[str, ResolvedSetting]:
        """default < tenant < environment for every definition, sorted by key;
        ``secret`` turns a secret setting's stored rows into what is served."""
        layered: dict[str, ResolvedSetting] = {}
        for key, definition in sorted(definitions.items()):
            t_o = overrides.get((TENANT_SCOPE, key))
            e_o = overrides.get((environment, key)) if environment is not None else None
            if definition.secret:
                t_o, e_o = secret(t_o), secret(e_o)
            value, source = definition.default, DEFAULT
            if t_o is not None and t_o.value is not _INACTIVE:
                value, source = t_o.value, TENANT
            if e_o is not None and e_o.value is not _INACTIVE:
                value, source = e_o.value, ENVIRONMENT
            scoped = e_o if environment is not None else t_o
            layered[key] = ResolvedSetting(
                key=key,
                value=value,
                source=source,
                definition=definition,
                revision=scoped.revision if scoped is not None else 0,
                tenant_override=_public(t_o, None),
                environment_override=_public(e_o, environment),
            )
        return layered

    def _opened(self, row: _Row | None) -> _Row | None:
        if row is None or row.value is _INACTIVE:
            return row
        return _Row(self.secrets.open(row.value), row.revision)

    async def _definitions(
        self,
        session: AsyncSession,
        ref: TenantRef,
    ) -> dict[str, SettingDefinition]:
        query = select(SettingDefinitionRow.definition).where(
            SettingDefinitionRow.release_id == ref.release_id
        )
        rows = await session.scalars(query)
        parsed = self._parsed
        if len(parsed) > MAX_PARSED:
            parsed.clear()
        out: dict[str, SettingDefinition] = {}
        release = ref.release_id
        misses = 0
        for data in rows:
            key = data["key"]
            cached = parsed.get((release, key))
            if cached is None or cached[0] != data:
                cached = parsed[(release, key)] = (data, stored_definition(data))
                misses += 1
            out[key] = cached[1]
        self.definition_cache_misses += misses
        self.definition_cache_hits += len(out) - misses
        return out

    # -- writing ---------------------------------------------------------------
    async def set(
        self,
        principal: Principal,
        tenant: str,
        key: str,
        value: Any,
        environment: str | None = None,
        expected_revision: int | None = None,
        reason: str | None = None,
        authorization: Authorization | None = None,
    ) -> SettingChange:
        """Set an override. With ``expected_revision``, refuse with
        :class:`ConflictError` unless it is the override's current revision
        (0 when there is none). Writes nothing on any error. In a protected
        environment (tenant-wide: while any is) only with an ``authorization``
        (an approved change request, or break-glass): else
        :class:`ChangeRequestRequiredError`."""
        ref, definition = await self._target(principal, tenant, key, environment, expected_revision)
        require_change_request(ref, environment, authorization, "changing an override")
        value = await self._validated(ref, definition, environment, value)
        return await self._write(
            _Write(
                principal,
                ref,
                definition,
                environment,
                value,
                expected_revision,
                reason,
                "set",
                authorization,
            )
        )

    async def reset(
        self,
        principal: Principal,
        tenant: str,
        key: str,
        environment: str | None = None,
        expected_revision: int | None = None,
        reason: str | None = None,
        authorization: Authorization | None = None,
    ) -> SettingChange:
        """Remove an override so the next layer down applies again (protected
        environments: as :meth:`set`)."""
        ref, definition = await self._target(principal, tenant, key, environment, expected_revision)
        require_change_request(ref, environment, authorization, "resetting an override")
        return await self._write(
            _Write(
                principal,
                ref,
                definition,
                environment,
                _INACTIVE,
                expected_revision,
                reason,
                "reset",
                authorization,
            )
        )

    async def prepare(
        self,
        principal: Principal,
        tenant: str,
        key: str,
        environment: str | None,
        expected_revision: int | None,
        value: Any = None,
        *,
        reset: bool = False,
    ) -> PreparedWrite:
        """Everything :meth:`set` (``reset``: :meth:`reset`) checks, without
        writing: what a change request checks when it is proposed. Answers the
        validated value and the override's current revision."""
        ref, definition = await self._target(principal, tenant, key, environment, expected_revision)
        if not reset:
            value = await self._validated(ref, definition, environment, value)
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Override.revision, Override.active).where(
                        Override.tenant_id == ref.id,
                        Override.environment == _scope(environment),
                        Override.key == key,
                    )
                )
            ).first()
        current = row.revision if row is not None else 0
        if expected_revision is not None and expected_revision != current:
            raise ConflictError(key, expected_revision, current)
        if reset and (row is None or not row.active):
            where = f"environment {environment!r}" if environment else "the tenant"
            raise NotFoundError("override", key, f"{where} of {tenant!r} has no override to reset")
        return PreparedWrite(ref, definition, None if reset else value, current)

    async def _validated(
        self, ref: TenantRef, definition: SettingDefinition, environment: str | None, value: Any
    ) -> Any:
        key = definition.key
        with _secret_errors(definition):
            value = definition.validate(value)
            verdict = await self.hooks.validate_setting(
                ref.slug, environment, key, value, secret=definition.secret
            )
            if verdict.failures:
                failure = verdict.failures[0]
                raise SettingValidationError(
                    key,
                    f"customization:{failure.customization}",
                    value,
                    f"customization {failure.customization!r} failed in {failure.hook} "
                    f"({failure.message}); nothing was written",
                )
            if verdict.errors:
                owner, message = verdict.errors[0]
                raise SettingValidationError(key, f"customization:{owner}", value, message)
        return value

    async def _target(
        self,
        principal: Principal,
        tenant: str,
        key: str,
        environment: str | None,
        expected_revision: int | None,
    ) -> tuple[TenantRef, SettingDefinition]:
        """What every write checks first: scope, the revision argument, the tenant,
        its environment and the setting's definition in the tenant's release."""
        principal.require_write_settings(tenant)
        _check_revision(expected_revision)
        async with self._sessions() as session:
            ref = await load_tenant_ref(session, tenant)
        ref.check_environment(environment)
        return ref, await self._definition(ref, key)

    async def _definition(self, ref: TenantRef, key: str) -> SettingDefinition:
        async with self._sessions() as session:
            data = await session.scalar(
                select(SettingDefinitionRow.definition).where(
                    SettingDefinitionRow.release_id == ref.release_id,
                    SettingDefinitionRow.key == key,
                )
            )
        if data is not None:
            return stored_definition(data)
        extra = await self.hooks.register_settings(ref.slug)
        for _owner, definition in extra.definitions:
            if definition.key == key:
                return definition
        raise NotFoundError(
            "setting", key, f"not defined in release {ref.release} for tenant {ref.slug!r}"
        )

    async def _write(self, w: _Write) -> SettingChange:
        key = w.definition.key
        attempts = 1 if w.expected_revision is not None else WRITE_RETRIES
        for attempt in range(attempts):
            try:
                change = await self._write_once(w)
            except _LostRace as race:
                if attempt + 1 == attempts:
                    raise ConflictError(key, race.expected, race.actual) from None
                continue
            failures = await self.hooks.setting_changed(
                w.ref.slug,
                w.environment,
                key,
                change.old,
                change.new,
                w.principal.name,
                secret=w.definition.secret,
            )
            if failures:
                change = replace(change, failures=tuple(failures))
            return change
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_once(self, w: _Write) -> SettingChange:
        principal, ref, definition, environment = w.principal, w.ref, w.definition, w.environment
        value, expected_revision, reason, action = w.value, w.expected_revision, w.reason, w.action
        key = definition.key
        scope = _scope(environment)
        async with self._sessions.begin() as session:
            # protection as of this transaction (checked before it too, to refuse early)
            ref = await locked_protection(session, ref)
            require_change_request(ref, environment, w.authorization, "changing an override")
            if w.authorization is not None:
                # first: a change request is applied once, whoever else tries
                await w.authorization.record(
                    session, ref.id, environment, key, protected=ref.protects(environment)
                )
            row = (
                await session.execute(
                    select(Override.id, Override.revision, Override.active, Override.value)
                    .where(
                        Override.tenant_id == ref.id,
                        Override.environment == scope,
                        Override.key == key,
                    )
                    # PostgreSQL: concurrent writers of one override queue here
                    # instead of losing the race at the UPDATE (SQLite already
                    # serializes writers at BEGIN IMMEDIATE)
                    .with_for_update()
                )
            ).first()
            current = row.revision if row is not None else 0
            if expected_revision is not None and expected_revision != current:
                raise ConflictError(key, expected_revision, current)
            old = row.value if row is not None and row.active else None
            if definition.secret:
                old = self.secrets.open(old)
            reset = value is _INACTIVE
            if reset and (row is None or not row.active):
                where = f"environment {environment!r}" if environment else "the tenant"
                raise NotFoundError(
                    "override", key, f"{where} of {ref.slug!r} has no override to reset"
                )
            new_revision = current + 1
            stored = value
            if definition.secret and not reset and value is not None:
                stored = self.secrets.seal(value)  # never stored in plaintext
            fields = {
                "value": None if reset else stored,
                "active": not reset,
                "revision": new_revision,
                "updated_at": utcnow(),
                "updated_by": principal.name,
            }
            if row is None:
                try:
                    async with session.begin_nested():
                        session.add(
                            Override(tenant_id=ref.id, environment=scope, key=key, **fields)
                        )
                        await session.flush()
                except IntegrityError:
                    raise _LostRace(current, current + 1) from None
            else:
                # an UPDATE's result is a CursorResult (it has a rowcount)
                result = cast(
                    CursorResult[Any],
                    await session.execute(
                        update(Override)
                        .where(Override.id == row.id, Override.revision == current)
                        .values(**fields)
                    ),
                )
                if result.rowcount != 1:
                    raise _LostRace(current, current + 1)
            entry = AuditEntry(
                actor=principal.name,
                action=action,
                tenant_id=ref.id,
                environment=environment,
                key=key,
                old=_audited(definition, old),
                new=_audited(definition, None if reset else value),
                revision=new_revision,
                reason=reason,
            )
            session.add(entry)
            await bump_data_version(session, Tenant.id == ref.id)
            await session.flush()
            return SettingChange(
                ref.slug,
                environment,
                key,
                old,
                None if reset else value,
                new_revision,
                action,
                entry.id,
                definition=definition,
            )


@dataclass(frozen=True)
class _Write:
    """One requested write (set, or reset with ``value`` = ``_INACTIVE``)."""

    principal: Principal
    ref: TenantRef
    definition: SettingDefinition
    environment: str | None
    value: Any
    expected_revision: int | None
    reason: str | None
    action: str
    authorization: Authorization | None = None


@dataclass(frozen=True)
class PreparedWrite:
    """A checked write not yet made (:meth:`SettingsService.prepare`)."""

    ref: TenantRef
    definition: SettingDefinition
    value: Any
    #: the override's revision now (0: none yet)
    revision: int


class _Inactive:
    def __repr__(self) -> str:
        return "<inactive>"


_INACTIVE: Any = _Inactive()


class _LostRace(Exception):
    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class _Row:
    value: Any
    revision: int


async def _overrides(
    session: AsyncSession,
    ref: TenantRef,
    environment: str | None,
) -> Mapping[tuple[str, str], _Row]:
    scopes = [TENANT_SCOPE] if environment is None else [TENANT_SCOPE, environment]
    query = select(
        Override.environment, Override.key, Override.value, Override.active, Override.revision
    ).where(Override.tenant_id == ref.id, Override.environment.in_(scopes))
    rows = (await session.execute(query)).all()
    return {
        (env, key): _Row(value if active else _INACTIVE, revision)
        for env, key, value, active, revision in rows
    }


def _selected(key: str, keys: Sequence[str] | None, prefix: str | None) -> bool:
    if keys is not None and key not in keys:
        return False
    return not (prefix and not key.startswith(prefix))


def _sealed(row: _Row | None) -> _Row | None:
    """A secret override as :meth:`SettingsService.layered` shows it: set, never read."""
    if row is None or row.value is _INACTIVE:
        return row
    return _Row(SECRET_MARK, row.revision)


def _public(row: _Row | None, environment: str | None) -> OverrideInfo | None:
    if row is None or row.value is _INACTIVE:
        return None
    return OverrideInfo(environment, row.value, row.revision)


def _with(setting: ResolvedSetting, value: Any, source: str, owner: str) -> ResolvedSetting:
    return ResolvedSetting(
        key=setting.key,
        value=value,
        source=source,
        definition=setting.definition,
        revision=setting.revision,
        tenant_override=setting.tenant_override,
        environment_override=setting.environment_override,
        customization=owner,
    )


def _audited(definition: SettingDefinition, value: Any) -> Any:
    """What the audit log keeps of a value: secret values are never stored twice."""
    if definition.secret and value is not None:
        return SECRET_MARK
    return value


@contextmanager
def _secret_errors(definition: SettingDefinition) -> Iterator[None]:
    """A secret setting's value is never echoed back, not even in a refusal."""
    try:
        yield
    except SettingValidationError as exc:
        if not definition.secret:
            raise
        raise SettingValidationError(
            exc.key,
            exc.rule,
            SECRET_MARK,
            f"the value breaks the {exc.rule!r} rule of this secret setting "
            "(secret values are never echoed); nothing was written",
        ) from None


def _check_revision(expected: int | None) -> None:
    if expected is not None and expected < 0:
        raise InvalidInputError("expectedRevision", "must be 0 (no override yet) or more")
