"""GraphQL: front-end apps and their trusted documents (``apps``, ``registerApp``,
``pushAppOperations``, ``pushAppFlags``): thin types over :mod:`core.model.apps`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Union

import strawberry

from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from api.graphql.trusted import split_operations
from core.model import apps as domain


@strawberry.type(description="A trusted (persisted) document of an app, stored by its sha256.")
class AppOperation:
    id: str = strawberry.field(
        description="'sha256:<hex>': send it as documentId (or its hex as Apollo's "
        "extensions.persistedQuery.sha256Hash) instead of the text"
    )
    name: str | None
    document: str
    keys: list[str] = strawberry.field(description="literal keys: of its settings fields")
    prefixes: list[str] = strawberry.field(description="literal prefix: of its settings fields")
    pushed_by: str
    pushed_at: datetime

    @classmethod
    def from_domain(cls, o: domain.Operation) -> AppOperation:
        return cls(
            id=o.id,
            name=o.name,
            document=o.document,
            keys=list(o.keys),
            prefixes=list(o.prefixes),
            pushed_by=o.pushed_by,
            pushed_at=o.pushed_at,
        )


@strawberry.type(description="A tenant's front-end app: its trusted documents and flag keys.")
class App:
    name: str
    tenant: str
    trusted_only: bool = strawberry.field(
        description="its tokens (token create --app) run only its registered documents"
    )
    flags: list[str] = strawberry.field(description="setting keys it reads as OFREP flags")
    operations: list[AppOperation]
    created_by: str
    created_at: datetime

    @classmethod
    def from_domain(cls, a: domain.App) -> App:
        return cls(
            name=a.name,
            tenant=a.tenant,
            trusted_only=a.trusted_only,
            flags=list(a.flags),
            operations=[AppOperation.from_domain(o) for o in a.operations],
            created_by=a.created_by,
            created_at=a.created_at,
        )


@strawberry.type(description="The apps you may see, by name.")
class Apps:
    apps: list[App]


@strawberry.type(description="What a push stored.")
class PushedOperation:
    operation: AppOperation
    stored: bool = strawberry.field(description="false: the app already had this document")


@strawberry.type(description="The app after a push of documents.")
class AppOperationsPushed:
    app: App
    pushed: list[PushedOperation]


AppsResult = Annotated[Union[Apps, Errors], strawberry.union("AppsResult")]  # noqa: UP007
AppResult = Annotated[Union[App, Errors], strawberry.union("AppResult")]  # noqa: UP007
AppOperationsResult = Annotated[
    Union[AppOperationsPushed, Errors],  # noqa: UP007
    strawberry.union("AppOperationsResult"),
]


@strawberry.type
class AppsQuery:
    @strawberry.field(
        description="Front-end apps with their trusted documents and flag keys. Admins and "
        "release managers see every app; a consultant their tenants' apps."
    )
    @expected
    async def apps(self, info: Info, tenant: str | None = None) -> AppsResult:
        ctx = info.context
        found = await ctx.services.apps.apps(ctx.principal, tenant)
        return Apps(apps=[App.from_domain(a) for a in found])


@strawberry.type
class AppsMutation:
    @strawberry.mutation(
        description="Register a tenant's front-end app (again: set trustedOnly). Admins and "
        "consultants of the tenant; audited."
    )
    @expected
    async def register_app(
        self, info: Info, name: str, tenant: str, trusted_only: bool = False
    ) -> AppResult:
        ctx = info.context
        app = await ctx.services.apps.register(
            ctx.principal, name, tenant, trusted_only=trusted_only
        )
        return App.from_domain(app)

    @strawberry.mutation(
        description="Store an app's operations by the sha256 of their text: a document of "
        "one operation as it is, one of several operations as one document each (with the "
        "fragments it uses). Each must validate against Tailor's schema. Audited."
    )
    @expected
    async def push_app_operations(self, info: Info, app: str, document: str) -> AppOperationsResult:
        ctx = info.context
        operations = split_operations(document, info.schema._schema)
        result = await ctx.services.apps.push_operations(ctx.principal, app, operations)
        return AppOperationsPushed(
            app=App.from_domain(result.app),
            pushed=[
                PushedOperation(operation=AppOperation.from_domain(o), stored=fresh)
                for o, fresh in result.operations
            ],
        )

    @strawberry.mutation(
        description="Declare setting keys the app reads as OpenFeature flags (OFREP); "
        "added to those declared, or instead of them with replace: true. Audited."
    )
    @expected
    async def push_app_flags(
        self, info: Info, app: str, keys: list[str], replace: bool = False
    ) -> AppResult:
        ctx = info.context
        found = await ctx.services.apps.push_flags(ctx.principal, app, keys, replace=replace)
        return App.from_domain(found)
