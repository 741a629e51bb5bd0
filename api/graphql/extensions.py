"""``invokeExtension``: the host product's backend calls a tenant's enabled
customizations at one of the product's own extension points (``host`` token)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Union

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Info
from api.graphql.errors import Errors, expected
from api.graphql.types import CustomizationError
from core.model.auth import Principal
from core.model.errors import InvalidInputError
from core.model.extension_points import TAILOR_SOURCE
from core.model.hooks import HookFailure
from plugins.runtime import PluginRuntime

#: the hookspec parameter Tailor fills from the ``tenant`` argument
TENANT_PARAM = "tenant"


@strawberry.type(description="What one customization returned at the extension point.")
class ExtensionResult:
    customization: str
    result: JSON | None = strawberry.field(description="Its return value, as JSON.")


@strawberry.type(
    description="A tenant's enabled customizations called at an extension point: each "
    "one's result, in call order, and each failure (named; the others still ran)."
)
class ExtensionCall:
    tenant: str
    hook: str
    release: str = strawberry.field(description="The product release the running code implements.")
    results: list[ExtensionResult]
    failures: list[CustomizationError]


ExtensionCallResult = Annotated[
    Union[ExtensionCall, Errors],  # noqa: UP007
    strawberry.union("ExtensionCallResult"),
]


def _arguments(
    runtime: PluginRuntime, tenant: str, hook: str, args: object
) -> tuple[str, dict[str, Any]]:
    """The running release and the hook's keyword arguments, checked against the
    hookspec: an unknown hook, a Tailor hook, unknown or missing parameters are
    input errors."""
    catalog = runtime.catalog
    release = catalog.release or ""
    points = {
        p.name: p
        for p in (catalog.for_version(release) if release else catalog.all())
        if p.source != TAILOR_SOURCE
    }
    point = points.get(hook)
    if point is None:
        known = ", ".join(sorted(points)) or "none"
        why = (
            "Tailor's own hooks are called by Tailor, not through invokeExtension"
            if (p := catalog.get(hook)) is not None and p.source == TAILOR_SOURCE
            else f"no extension point of that name in release {release}"
        )
        raise InvalidInputError("hook", f"{hook!r}: {why}; the product's are: {known}")
    if not isinstance(args, Mapping):
        raise InvalidInputError("args", "must be a JSON object of the hook's parameters")
    wanted = [p for p in point.params if p != TENANT_PARAM]
    shape = f"{hook} takes ({', '.join(wanted)})" + (
        " plus the tenant argument" if TENANT_PARAM in point.params else ""
    )
    if TENANT_PARAM in args:
        raise InvalidInputError("args", f"give the tenant as the tenant argument; {shape}")
    unknown = sorted(set(args) - set(wanted))
    missing = [p for p in wanted if p not in args]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unknown parameter(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"missing parameter(s) {', '.join(missing)}")
        raise InvalidInputError("args", f"{'; '.join(problems)}: {shape}")
    kwargs = dict(args)
    if TENANT_PARAM in point.params:
        kwargs[TENANT_PARAM] = tenant
    return release, kwargs


def _json_or_failure(name: str, hook: str, result: Any) -> ExtensionResult | HookFailure:
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError):
        return HookFailure(
            name, hook, f"returned {type(result).__name__}, which is not a JSON value"
        )
    return ExtensionResult(customization=name, result=result)


@strawberry.type
class ExtensionsMutation:
    """The host product's calls into its tenants' customizations."""

    @strawberry.mutation(
        description="Call TENANT's enabled customizations at one of the product's extension "
        "points (HOOK) with ARGS (a JSON object of the hookspec's parameters; the tenant "
        "parameter is filled in). Each runs isolated, under its time budget: a failing one "
        "is reported in failures and does not stop the others. Roles: host (its tenants, "
        "or all when its token names none) and admin."
    )
    @expected
    async def invoke_extension(
        self, info: Info, tenant: str, hook: str, args: JSON
    ) -> ExtensionCallResult:
        ctx = info.context
        runtime = ctx.plugins
        ctx.principal.require_invoke_extension(tenant)
        release, kwargs = _arguments(runtime, tenant, hook, args)
        # existence only (a host token reads nothing of the tenant)
        await ctx.services.tenants.get(Principal.system(ctx.principal.name), tenant)
        called, failed = await runtime.call_extension(tenant, hook, kwargs)
        results: list[ExtensionResult] = []
        failures = [CustomizationError.from_domain(f) for f in failed]
        for name, value in called:
            checked = _json_or_failure(name, hook, value)
            if isinstance(checked, HookFailure):
                failures.append(CustomizationError.from_domain(checked))
            else:
                results.append(checked)
        return ExtensionCall(
            tenant=tenant, hook=hook, release=release, results=results, failures=failures
        )
