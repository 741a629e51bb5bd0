"""Seed the demo: the product's releases, the demo tenants and their overrides,
and (for ``serve --demo``) tokens to try the API with."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.model.auth import Principal, Role
from core.model.errors import AlreadyExistsError
from core.model.product import Product
from core.store.bootstrap import (
    ExtensionPointSource,
    register_planned_releases,
    sync_product_releases,
)
from core.store.services import Services

DEMO_ACTOR = Principal.system("demo-seed")


@dataclass(frozen=True)
class SeedReport:
    releases_added: list[str]
    tenants_added: list[str]
    overrides_set: int
    planned_added: list[str] = field(default_factory=list)


async def seed_demo(
    services: Services, product: Product, extension_points: ExtensionPointSource | None = None
) -> SeedReport:
    """Idempotent: existing tenants are left as they are. ``extension_points``
    gives Tailor's own extension points per release (the plugin catalog)."""
    if extension_points is None:
        releases = await sync_product_releases(services, product)
    else:
        releases = await sync_product_releases(services, product, extension_points)
    if extension_points is None:
        planned = await register_planned_releases(services, product)
    else:
        planned = await register_planned_releases(services, product, extension_points)
    tenants: list[str] = []
    overrides = 0
    for demo in product.demo.tenants:
        try:
            await services.tenants.create(
                DEMO_ACTOR, demo.slug, demo.name, demo.release, demo.environments
            )
        except AlreadyExistsError:
            continue
        tenants.append(demo.slug)
        for o in demo.overrides:
            await services.settings.set(
                DEMO_ACTOR,
                demo.slug,
                o.key,
                o.value,
                environment=o.environment or None,
                reason="demo seed",
            )
            overrides += 1
    return SeedReport(releases, tenants, overrides, planned)


async def protect_demo(services: Services, product: Product) -> list[str]:
    """Protect the demo tenants' ``protected`` environments (after their data and
    customizations are written: from now on those change through change
    requests). Those already protected are skipped. Answers ``tenant/environment``
    of those protected now."""
    done: list[str] = []
    for demo in product.demo.tenants:
        if not demo.protected:
            continue
        info = await services.tenants.get(DEMO_ACTOR, demo.slug)
        already = {name for name, _ in info.protected}
        for environment in demo.protected:
            if environment in already:
                continue
            await services.changes.protect(
                DEMO_ACTOR, demo.slug, environment, True, reason="demo: change requests"
            )
            done.append(f"{demo.slug}/{environment}")
    return done


@dataclass(frozen=True)
class DemoToken:
    role: Role
    tenants: tuple[str, ...]
    secret: str


async def create_demo_tokens(services: Services, product: Product) -> list[DemoToken]:
    """One token per role, scoped to the product's first demo tenants where the role
    needs it (the tenant-scoped roles are left out when it has no demo tenants)."""
    slugs = [t.slug for t in product.demo.tenants]
    wanted: list[tuple[Role, tuple[str, ...]]] = [
        (Role.ADMIN, ()),
        (Role.RELEASE_MANAGER, ()),
        (Role.HOST, ()),
    ]
    if slugs:
        wanted += [(Role.CONSULTANT, tuple(slugs[:2])), (Role.APP, (slugs[0],))]
    out = []
    for role, scope in wanted:
        secret, _ = await services.tokens.create(role, scope, label=f"demo {role.value}")
        out.append(DemoToken(role, scope, secret))
    return out
