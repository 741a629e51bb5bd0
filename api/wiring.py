"""Wiring the plugin runtime into a running Tailor (app factory, CLI, demo)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.model.auth import Principal
from core.model.errors import TailorError
from core.store.services import Services
from plugins.runtime import PluginRuntime


def attach(services: Services, runtime: PluginRuntime) -> Services:
    """Services whose settings call ``runtime``'s hooks; the runtime follows the
    registry's changes and records health and observations there."""
    runtime.bind(services.registry, services.observations)
    installed = frozenset(loaded.name for loaded in runtime.installed())
    hooked = services.with_hooks(runtime)
    return hooked.with_installed(installed)


@dataclass
class DemoPublishReport:
    published: list[str] = field(default_factory=list)
    enabled: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


async def publish_installed(
    services: Services, runtime: PluginRuntime, principal: Principal, enable: bool = True
) -> DemoPublishReport:
    """Publish every installed customization (idempotent) and enable it for the
    listed tenants that exist. Refused ones are skipped and reported."""
    report = DemoPublishReport(skipped=[r.name for r in runtime.refused()])
    existing = {t.slug for t in await services.tenants.list_all(principal)}
    for loaded in runtime.installed():
        try:
            registration = await services.registry.publish(principal, loaded.registration())
        except TailorError as exc:
            report.skipped.append(f"{loaded.name}: {exc.message}")
            continue
        report.published.append(loaded.name)
        if not enable:
            continue
        for tenant in registration.manifest.tenants:
            if tenant in existing:
                await services.registry.set_enabled(principal, tenant, loaded.name, True)
                report.enabled.append((loaded.name, tenant))
    return report
