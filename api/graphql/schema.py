"""The GraphQL schema: root fields map requests to core services and back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Union

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from api.graphql.apps import AppsMutation, AppsQuery
from api.graphql.changes import ChangesMutation, ChangesQuery
from api.graphql.context import Info
from api.graphql.customizations import CustomizationsMutation, CustomizationsQuery
from api.graphql.errors import Errors, expected, uncacheable
from api.graphql.extensions import ExtensionsMutation
from api.graphql.foldback import FoldbackQuery
from api.graphql.masking import MaskUnexpectedErrors
from api.graphql.projection import ProjectingExecutionContext
from api.graphql.readiness import ReadinessMutation, ReadinessQuery
from api.graphql.roadmap import RoadmapMutation, RoadmapQuery
from api.graphql.samples import SamplesMutation, SamplesQuery
from api.graphql.subscriptions import SUBSCRIPTION_GROUPS
from api.graphql.types import (
    AuditEntry,
    AuditLog,
    CustomizationError,
    Release,
    ReleaseDetail,
    ResolvedSetting,
    SettingChanged,
    SettingDefinitionType,
    Settings,
    Tenant,
)
from api.graphql.webhooks import WebhooksMutation, WebhooksQuery
from core.store.settings import SettingChange

SettingsResult = Annotated[Union[Settings, Errors], strawberry.union("SettingsResult")]  # noqa: UP007
TenantResult = Annotated[Union[Tenant, Errors], strawberry.union("TenantResult")]  # noqa: UP007
ReleaseResult = Annotated[Union[ReleaseDetail, Errors], strawberry.union("ReleaseResult")]  # noqa: UP007
AuditLogResult = Annotated[Union[AuditLog, Errors], strawberry.union("AuditLogResult")]  # noqa: UP007
SettingChangeResult = Annotated[
    Union[SettingChanged, Errors],  # noqa: UP007
    strawberry.union("SettingChangeResult"),
]


@strawberry.type
class SettingsQuery:
    """Settings, tenants, releases and the audit log."""

    @strawberry.field(description="One tenant's resolved settings, each with its source.")
    @expected
    async def settings(
        self,
        info: Info,
        tenant: str,
        environment: str | None = None,
        keys: list[str] | None = None,
        prefix: str | None = None,
        customizations: Annotated[
            bool,
            strawberry.argument(
                description="false: the values before any customization (default < tenant "
                "< environment), what tailor_resolve_settings receives"
            ),
        ] = True,
    ) -> SettingsResult:
        ctx = info.context
        if not customizations:
            return Settings.from_domain(
                await ctx.services.settings.layered(
                    ctx.principal, tenant, environment, keys=keys, prefix=prefix
                )
            )
        resolution = await ctx.services.settings.resolve(
            ctx.principal, tenant, environment, keys, prefix
        )
        if resolution.failures:
            uncacheable(info)
        return Settings.from_domain(resolution)

    @strawberry.field(description="One tenant by slug.")
    @expected
    async def tenant(self, info: Info, slug: str) -> TenantResult:
        ctx = info.context
        return Tenant.from_domain(await ctx.services.tenants.get(ctx.principal, slug))

    @strawberry.field(description="The tenants your token may see.")
    @expected(union=False)
    async def tenants(self, info: Info) -> list[Tenant]:
        ctx = info.context
        found = await ctx.services.tenants.list_all(ctx.principal)
        return [Tenant.from_domain(t) for t in found]

    @strawberry.field(description="Every registered release, oldest first.")
    @expected(union=False)
    async def releases(self, info: Info) -> list[Release]:
        ctx = info.context
        found = await ctx.services.releases.list_all(ctx.principal)
        return [Release.from_domain(r) for r in found]

    @strawberry.field(description="One release with its setting catalog.")
    @expected
    async def release(self, info: Info, version: str, prefix: str | None = None) -> ReleaseResult:
        ctx = info.context
        r = await ctx.services.releases.get(version, ctx.principal)
        defs = await ctx.services.releases.definitions(version, ctx.principal)
        base = Release.from_domain(r)
        return ReleaseDetail(
            **base.__dict__,
            settings=[
                SettingDefinitionType.from_domain(d)
                for d in defs
                if not prefix or d.key.startswith(prefix)
            ],
        )

    @strawberry.field(description="Audited changes, newest first.")
    @expected
    async def audit_log(
        self,
        info: Info,
        tenant: str | None = None,
        key: str | None = None,
        limit: int = 100,
        before: int | None = None,
        request_id: Annotated[
            str | None,
            strawberry.argument(
                description="Only the entries the HTTP request with this X-Request-Id made."
            ),
        ] = None,
    ) -> AuditLogResult:
        ctx = info.context
        records = await ctx.services.audit.list_all(
            ctx.principal, tenant, key, limit, before, request_id
        )
        return AuditLog(entries=[AuditEntry.from_domain(r) for r in records])


@strawberry.input(description="Set one override.")
class SetSettingInput:
    tenant: str
    key: str
    value: JSON
    environment: str | None = strawberry.field(
        default=None, description="null = tenant-wide override"
    )
    expected_revision: int | None = strawberry.field(
        default=None,
        description="the revision you read (0 = no override yet); when stale, you get a "
        "Conflict and nothing is written",
    )
    reason: str | None = None


@strawberry.input(description="Remove one override so the next layer down applies.")
class ResetSettingInput:
    tenant: str
    key: str
    environment: str | None = None
    expected_revision: int | None = None
    reason: str | None = None


@strawberry.input(description="A new tenant.")
class CreateTenantInput:
    slug: str
    name: str
    release: str | None = strawberry.field(
        default=None, description="default: the newest released release"
    )
    environments: list[str] = strawberry.field(default_factory=lambda: ["production", "sandbox"])


async def _changed(info: Info, change: SettingChange) -> SettingChanged:
    ctx = info.context
    resolution = await ctx.services.settings.resolve(
        ctx.principal, change.tenant, change.environment, keys=[change.key]
    )
    # a committed write is never reported as failed: when a failing customization
    # hides the setting's definition now, the written layer is shown and the
    # failure is listed in customizationErrors
    current = next((s for s in resolution.settings if s.key == change.key), None)
    current = current or change.as_resolved()
    if current is None:  # pragma: no cover - every write carries its definition
        raise RuntimeError(f"setting {change.key!r} vanished after a committed write")
    resolved = ResolvedSetting.from_domain(current)
    secret = current.definition.secret
    return SettingChanged(
        tenant=change.tenant,
        environment=change.environment,
        key=change.key,
        action=change.action,
        old=None if secret else change.old,
        new=None if secret else change.new,
        revision=change.revision,
        audit_id=change.audit_id,
        setting=resolved,
        customization_errors=[
            CustomizationError.from_domain(f) for f in (*change.failures, *resolution.failures)
        ],
    )


@strawberry.type
class SettingsMutation:
    """Overrides and tenants."""

    @strawberry.mutation(description="Set a tenant's (or environment's) override for a setting.")
    @expected
    async def set_setting(
        self, info: Info, given: Annotated[SetSettingInput, strawberry.argument(name="input")]
    ) -> SettingChangeResult:
        ctx = info.context
        change = await ctx.services.settings.set(
            ctx.principal,
            given.tenant,
            given.key,
            given.value,
            environment=given.environment,
            expected_revision=given.expected_revision,
            reason=given.reason,
        )
        return await _changed(info, change)

    @strawberry.mutation(description="Remove an override.")
    @expected
    async def reset_setting(
        self, info: Info, given: Annotated[ResetSettingInput, strawberry.argument(name="input")]
    ) -> SettingChangeResult:
        ctx = info.context
        change = await ctx.services.settings.reset(
            ctx.principal,
            given.tenant,
            given.key,
            environment=given.environment,
            expected_revision=given.expected_revision,
            reason=given.reason,
        )
        return await _changed(info, change)

    @strawberry.mutation(description="Create a tenant (admin).")
    @expected
    async def create_tenant(
        self, info: Info, given: Annotated[CreateTenantInput, strawberry.argument(name="input")]
    ) -> TenantResult:
        ctx = info.context
        created = await ctx.services.tenants.create(
            ctx.principal, given.slug, given.name, given.release, given.environments
        )
        return Tenant.from_domain(created)


#: Root field groups, one class per area (each area's module defines its own);
#: merged into the schema's Query and Mutation types.
QUERY_GROUPS: tuple[type, ...] = (
    SettingsQuery,
    CustomizationsQuery,
    ReadinessQuery,
    FoldbackQuery,
    RoadmapQuery,
    ChangesQuery,
    WebhooksQuery,
    AppsQuery,
    SamplesQuery,
)
MUTATION_GROUPS: tuple[type, ...] = (
    SettingsMutation,
    CustomizationsMutation,
    ReadinessMutation,
    ExtensionsMutation,
    RoadmapMutation,
    ChangesMutation,
    WebhooksMutation,
    AppsMutation,
    SamplesMutation,
)


class TailorSchema(strawberry.Schema):
    """Strawberry's schema, minus its own error logging: unexpected errors are
    logged once, with their request id, by :class:`MaskUnexpectedErrors`, and
    expected ones (bad queries, domain errors) are answers, not incidents."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
    config: StrawberryConfig | None = None,
    projection: bool = True,
) -> strawberry.Schema:
    """Build the schema. Extensions are classes or factories, never instances:
    strawberry creates them anew for every operation. Unexpected errors are
    always masked (with the request id). ``projection``: complete plain object
    selections by projection (:mod:`api.graphql.projection`; the same answer, faster)."""
    return TailorSchema(
        query=merge_types("Query", QUERY_GROUPS),
        mutation=merge_types("Mutation", MUTATION_GROUPS),
        subscription=merge_types("Subscription", SUBSCRIPTION_GROUPS),
        extensions=[*extensions, MaskUnexpectedErrors],
        config=config,
        execution_context_class=ProjectingExecutionContext if projection else None,
    )
