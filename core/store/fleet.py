"""A generated fleet for scale tests and benchmarks: ``tailor demo seed --tenants N
--customizations-per-tenant M``.

Tenants (``fleet-00001`` ...) copy a random subset of one of the product's demo
tenants' release and overrides (so every override is valid on its release),
inserted in bulk. Customization registrations are generated as plain
:class:`~core.model.customizations.Registration` data: each tenant enables M of a shared
pool (consultants reuse work), with hooks, parameters, ``requires`` and setting
references drawn from the product's fleet profile (its ``demo.toml``), so that
every readiness code occurs. Storing them is the
customization registry's job: pass ``publish`` (the seam for the registry);
without it they are returned, not stored.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select

from core.model.clock import utcnow
from core.model.customizations import CustomizationManifest, HookUse, Registration
from core.model.demo_data import DemoData, FleetProfile
from core.store.models import Environment, Override, Release, Tenant
from core.store.services import Services

PREFIX = "fleet-"
ACTOR = "fleet-seed"

Publish = Callable[[Sequence[Registration]], Awaitable[None]]

#: share of generated customizations written against outdated hooks or pinned
#: below the next release
OUTDATED = 0.04


@dataclass(frozen=True)
class FleetReport:
    tenants_added: int
    overrides_added: int
    registrations: tuple[Registration, ...]
    #: False when no registry was given to store the registrations
    published: bool


def generate_registrations(
    tenants: Sequence[str], per_tenant: int, rng: random.Random, profile: FleetProfile
) -> tuple[Registration, ...]:
    """``per_tenant`` enabled customizations per tenant, from a shared pool of about
    a quarter as many distinct customizations as (tenant, customization) pairs."""
    if per_tenant <= 0 or not tenants:
        return ()
    pool_size = max(per_tenant, len(tenants) * per_tenant // 4)
    enabled: dict[int, list[str]] = {i: [] for i in range(pool_size)}
    for slug in tenants:
        for i in rng.sample(range(pool_size), per_tenant):
            enabled[i].append(slug)
    out = []
    for i in range(pool_size):
        wanted = rng.randint(1, 3)
        uses = rng.sample(profile.hook_uses, min(wanted, len(profile.hook_uses)))
        if rng.random() < OUTDATED and profile.outdated_hook_uses:
            uses.append(rng.choice(profile.outdated_hook_uses))
        hooks = tuple(
            HookUse(hook, params, fingerprint=f"fp{i % 97:02d}-{hook}", location=f"c{i}:{hook}")
            for hook, params in dict(uses).items()
        )
        manifest = CustomizationManifest(
            name=f"fleet-custom-{i:05d}",
            version=f"1.{rng.randint(0, 9)}.0",
            tenants=tuple(sorted(enabled[i])),
            requires=rng.choice(
                profile.outdated_requires
                if rng.random() < OUTDATED and profile.outdated_requires
                else profile.requires
            ),
            tested_up_to=rng.choice(profile.tested_up_to),
            capability=rng.choice(profile.capabilities),
            author="fleet generator",
        )
        refs = profile.setting_refs
        keys = tuple(rng.sample(refs, min(rng.randint(0, 2), len(refs))))
        outdated = profile.outdated_setting_refs
        if rng.random() < OUTDATED and outdated:
            keys += (outdated[i % len(outdated)],)
        out.append(
            Registration(
                manifest=manifest, hooks=hooks, setting_keys=keys, enabled_for=manifest.tenants
            )
        )
    return tuple(out)


async def seed_fleet(
    services: Services,
    tenants: int,
    customizations_per_tenant: int = 0,
    *,
    demo: DemoData,
    seed: int = 42,
    publish: Publish | None = None,
) -> FleetReport:
    """Add ``tenants`` generated tenants (idempotent by slug) with bulk inserts,
    modelled on ``demo`` (the product's demo tenants and fleet profile)."""
    rng = random.Random(seed)
    async with services.sessions.begin() as session:
        releases = dict((await session.execute(select(Release.version, Release.id))).all())
        existing = set(
            await session.scalars(select(Tenant.slug).where(Tenant.slug.like(f"{PREFIX}%")))
        )
        plans = []
        for i in range(1, tenants + 1):
            if not demo.tenants:
                break
            template = rng.choice(demo.tenants)
            keep = [o for o in template.overrides if rng.random() < 0.75]
            slug = f"{PREFIX}{i:05d}"
            if slug not in existing and template.release in releases:
                plans.append((slug, template, keep))
        if plans:
            ids = (
                await session.execute(
                    insert(Tenant).returning(Tenant.id, Tenant.slug),
                    [
                        {
                            "slug": slug,
                            "name": f"Fleet tenant {slug[len(PREFIX) :]} ({t.name} profile)",
                            "release_id": releases[t.release],
                            "created_at": utcnow(),
                        }
                        for slug, t, _ in plans
                    ],
                )
            ).all()
            by_slug = {slug: tid for tid, slug in ids}
            await session.execute(
                insert(Environment),
                [
                    {"tenant_id": by_slug[slug], "name": env}
                    for slug, t, _ in plans
                    for env in t.environments
                ],
            )
            rows = [
                {
                    "tenant_id": by_slug[slug],
                    "environment": o.environment,
                    "key": o.key,
                    "value": o.value,
                    "active": True,
                    "revision": 1,
                    "updated_at": utcnow(),
                    "updated_by": ACTOR,
                }
                for slug, _, keep in plans
                for o in keep
            ]
            if rows:
                await session.execute(insert(Override), rows)
        else:
            rows = []
    all_slugs = [f"{PREFIX}{i:05d}" for i in range(1, tenants + 1)]
    registrations = generate_registrations(all_slugs, customizations_per_tenant, rng, demo.fleet)
    if publish is not None and registrations:
        await publish(registrations)
    return FleetReport(len(plans), len(rows), registrations, publish is not None)
