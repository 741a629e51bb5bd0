"""Thin GraphQL types over domain objects (``from_domain``); no logic here."""

from __future__ import annotations

from datetime import datetime

import orjson
import strawberry
from strawberry.scalars import JSON

from core.model import definitions
from core.model.definitions import SettingType
from core.model.hooks import HookFailure
from core.store import audit, releases, settings, tenants

# the domain's enum, exposed to GraphQL as is (not copied)
strawberry.enum(SettingType, description="The type of a setting's value.")


@strawberry.type(name="SettingDefinition", description="A setting as one release defines it.")
class SettingDefinitionType:
    key: str
    type: SettingType
    default: JSON | None = strawberry.field(description="null for secret settings")
    description: str
    category: str
    min: float | None
    max: float | None
    choices: list[str] | None
    pattern: str | None
    added: str | None
    deprecated: str | None
    removed: str | None
    replacement: str | None
    secret: bool

    @classmethod
    def from_domain(cls, d: definitions.SettingDefinition) -> SettingDefinitionType:
        """One GraphQL object per domain definition: the settings service reuses
        its parsed definitions across resolutions, and so do we (both are
        immutable), instead of building 1,000 of them per settings query."""
        cached = _DEFINITION_OBJECTS.get(id(d))
        if cached is not None and cached[0] is d:
            return cached[1]
        if len(_DEFINITION_OBJECTS) >= _MAX_DEFINITION_OBJECTS:
            _DEFINITION_OBJECTS.clear()
        made = cls._build(d)
        # the entry holds ``d`` itself, so its id cannot be reused while cached
        _DEFINITION_OBJECTS[id(d)] = (d, made)
        return made

    @classmethod
    def _build(cls, d: definitions.SettingDefinition) -> SettingDefinitionType:
        return cls(
            key=d.key,
            type=SettingType(d.type),
            default=None if d.secret else d.default,
            description=d.description,
            category=d.category,
            min=d.min,
            max=d.max,
            choices=list(d.choices) if d.choices is not None else None,
            pattern=d.pattern,
            added=d.added,
            deprecated=d.deprecated,
            removed=d.removed,
            replacement=d.replacement,
            secret=d.secret,
        )


_DEFINITION_OBJECTS: dict[int, tuple[definitions.SettingDefinition, SettingDefinitionType]] = {}
_MAX_DEFINITION_OBJECTS = 50_000


@strawberry.type(description="An override at one scope (environment null = tenant-wide).")
class Override:
    environment: str | None
    value: JSON | None
    revision: int

    @classmethod
    def from_domain(cls, o: settings.OverrideInfo | None, secret: bool) -> Override | None:
        if o is None:
            return None
        return cls(
            environment=o.environment, value=None if secret else o.value, revision=o.revision
        )


@strawberry.type(description="A setting's value for one tenant (and environment), with provenance.")
class ResolvedSetting:
    key: str
    value: JSON | None = strawberry.field(
        description="the typed value; null for secret settings (they are write-only)"
    )
    source: str = strawberry.field(
        description="DEFAULT, TENANT, ENVIRONMENT or CUSTOMIZATION:<name>"
    )
    revision: int = strawberry.field(
        description="revision of the override at the scope asked for (0 = none): send it as "
        "expectedRevision with your next write"
    )
    definition: SettingDefinitionType
    tenant_override: Override | None
    environment_override: Override | None

    @classmethod
    def from_domain(cls, s: settings.ResolvedSetting) -> ResolvedSetting:
        secret = s.definition.secret
        return cls(
            key=s.key,
            value=None if secret else s.value,
            source=s.source,
            revision=s.revision,
            definition=SettingDefinitionType.from_domain(s.definition),
            tenant_override=Override.from_domain(s.tenant_override, secret),
            environment_override=Override.from_domain(s.environment_override, secret),
        )


@strawberry.type(description="A customization hook failed; its tenant got the safe fallback.")
class CustomizationError:
    customization: str
    hook: str
    message: str

    @classmethod
    def from_domain(cls, f: HookFailure) -> CustomizationError:
        return cls(customization=f.customization, hook=f.hook, message=f.message)


@strawberry.type(description="One tenant's resolved settings.")
class Settings:
    tenant: str
    environment: str | None
    release: str
    items: list[ResolvedSetting]
    customization_errors: list[CustomizationError]

    @classmethod
    def from_domain(cls, r: settings.Resolution) -> Settings:
        return cls(
            tenant=r.tenant,
            environment=r.environment,
            release=r.release,
            items=[ResolvedSetting.from_domain(s) for s in r.settings],
            customization_errors=[CustomizationError.from_domain(f) for f in r.failures],
        )


@strawberry.type(description="A protected environment: its changes need approved change requests.")
class ProtectedEnvironment:
    name: str
    approvals: int = strawberry.field(description="approvals a change request needs here")


@strawberry.type(description="A client of the product.")
class Tenant:
    slug: str
    name: str
    release: str
    environments: list[str]
    created_at: datetime
    protected_environments: list[ProtectedEnvironment] = strawberry.field(
        description="environments whose changes are change requests, with the approvals each needs"
    )

    @classmethod
    def from_domain(cls, t: tenants.TenantInfo) -> Tenant:
        return cls(
            slug=t.slug,
            name=t.name,
            release=t.release,
            environments=list(t.environments),
            created_at=t.created_at,
            protected_environments=[
                ProtectedEnvironment(name=n, approvals=a) for n, a in t.protected
            ],
        )


@strawberry.type(description="A product release and what it promises.")
class Release:
    version: str
    status: str
    created_at: datetime
    supersedes: list[str]
    setting_count: int
    notes: str
    tailor_hook_api: str | None = strawberry.field(
        description="The Tailor hook API this release runs on: its tailor_* hooks are that "
        "API's, numbered independently of the product's versions (null: stored before "
        "releases named one)."
    )

    @classmethod
    def from_domain(cls, r: releases.ReleaseInfo) -> Release:
        api = r.manifest.get("tailor_hook_api")
        return cls(
            version=r.version,
            status=r.status,
            created_at=r.created_at,
            supersedes=list(r.supersedes),
            setting_count=r.setting_count,
            notes=str(r.manifest.get("notes", "")),
            tailor_hook_api=api if isinstance(api, str) else None,
        )


@strawberry.type(description="A release with its full setting catalog.")
class ReleaseDetail(Release):
    settings: list[SettingDefinitionType]

    @strawberry.field(
        description="The whole manifest (settings, extension points, supersedes, hook API) "
        "as `tailor release export --format json` writes it: what `tailor customization "
        "check --release V --url URL` checks a package against"
    )
    async def manifest(self, info: strawberry.Info) -> JSON:
        from core.model.manifest_io import ManifestFormat, dumps

        ctx = info.context
        found = await ctx.services.releases.manifest(self.version, ctx.principal)
        return orjson.loads(dumps(found, ManifestFormat.JSON))


@strawberry.type(description="One audited change.")
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    tenant: str | None
    environment: str | None
    key: str | None
    old: JSON | None
    new: JSON | None
    revision: int | None
    reason: str | None
    request_id: str | None = strawberry.field(
        description="The X-Request-Id of the HTTP request that made the change, as its "
        "log lines carry it (null: made from the CLI)."
    )

    @classmethod
    def from_domain(cls, a: audit.AuditRecord) -> AuditEntry:
        return cls(
            id=a.id,
            at=a.at,
            actor=a.actor,
            action=a.action,
            tenant=a.tenant,
            environment=a.environment,
            key=a.key,
            old=a.old,
            new=a.new,
            revision=a.revision,
            reason=a.reason,
            request_id=a.request_id,
        )


@strawberry.type(description="The audit log, newest first.")
class AuditLog:
    entries: list[AuditEntry]


@strawberry.type(description="A setting was set or reset.")
class SettingChanged:
    tenant: str
    environment: str | None
    key: str
    action: str
    old: JSON | None
    new: JSON | None
    revision: int
    audit_id: int
    setting: ResolvedSetting
    customization_errors: list[CustomizationError]
