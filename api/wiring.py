"""Wiring the plugin runtime into a running Tailor (app factory, CLI, demo)."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.model.auth import Principal
from core.model.customizations import Registration
from core.model.errors import ChangeRequestRequiredError, InvalidInputError, TailorError
from core.store.changes import ChangeKind, ChangeRequest, ProposedChange
from core.store.services import Services
from plugins.runtime import PluginRuntime
from plugins.runtime.rehearsal import RuntimeReplayer


def bind_runtime(services: Services, runtime: PluginRuntime) -> None:
    """Bind ``runtime`` to ``services`` (changes the runtime, never the services):
    it follows the registry's changes, records health and observations there, and
    the hook inputs of the tenants that record them (``services.samples``). Enough
    to publish through the runtime; :func:`attach` also serves its hooks."""
    runtime.bind(services.registry, services.observations)
    runtime.record_to(services.samples, services.samples)


def attach(services: Services, runtime: PluginRuntime) -> None:
    """Make ``services`` a server's, running ``runtime``, in place (no service is
    built again; :meth:`Services.run_customizations`): settings call its hooks,
    readiness reads the stored code, rehearsals replay through its workers; and
    the runtime is bound to the services first (:func:`bind_runtime`)."""
    bind_runtime(services, runtime)
    services.run_customizations(runtime, RuntimeReplayer(runtime))


@dataclass
class DemoPublishReport:
    published: list[str] = field(default_factory=list)
    enabled: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


async def publish_installed(
    services: Services, runtime: PluginRuntime, principal: Principal, enable: bool = True
) -> DemoPublishReport:
    """Publish every package the runtime found on disk (idempotent: a version
    already published with the same content changes nothing) and enable it for the
    listed tenants that exist. Refused ones are skipped and reported."""
    report = DemoPublishReport(skipped=[r.name for r in runtime.refused()])
    existing = {t.slug for t in await services.tenants.list_all(principal)}
    for loaded in runtime.sources():
        try:
            registration = await services.registry.publish(principal, loaded.registration())
        except TailorError as exc:
            report.skipped.append(f"{loaded.name}: {exc.message}")
            continue
        report.published.append(loaded.name)
        if not enable:
            continue
        for tenant in registration.manifest.tenants:
            # run again, what is enabled stays as it is (a protected tenant's
            # enablement is a change request: never written here)
            if tenant in existing and tenant not in registration.enabled_for:
                try:
                    await services.registry.set_enabled(principal, tenant, loaded.name, True)
                except ChangeRequestRequiredError as exc:
                    report.skipped.append(f"{loaded.name} for {tenant}: {exc.message}")
                    continue
                report.enabled.append((loaded.name, tenant))
    return report


@dataclass
class PublishOutcome:
    """A published version, and the tenants ``enable`` pinned to it (or why not)."""

    registration: Registration
    enabled: list[str] = field(default_factory=list)
    #: (tenant, why it was not enabled)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: the change requests proposed instead for tenants with a protected
    #: environment (their enablement waits for approval), in the manifest's order
    requested: list[ChangeRequest] = field(default_factory=list)


async def publish_archive(
    services: Services,
    runtime: PluginRuntime,
    principal: Principal,
    data: bytes,
    *,
    enable: bool = False,
) -> PublishOutcome:
    """Publish an uploaded package; with ``enable``, pin the tenants it lists that
    do not run it yet to the new version (tenants already enabled stay on theirs).
    A tenant with a protected environment gets a change request instead
    (``requested``), for another principal to approve."""
    registration = await runtime.publish_archive(principal, data)
    outcome = PublishOutcome(registration)
    if not enable:
        return outcome
    version = registration.manifest.version
    existing = {t.slug for t in await services.tenants.list_all(principal)}
    for tenant in registration.manifest.tenants:
        if tenant in registration.enabled_for:
            continue
        if tenant not in existing:
            outcome.skipped.append((tenant, "no such tenant"))
            continue
        try:
            registration = await services.registry.set_enabled(
                principal, tenant, registration.name, True, version
            )
        except InvalidInputError as exc:
            outcome.skipped.append((tenant, exc.message))
            continue
        except ChangeRequestRequiredError:
            request = await services.changes.propose(
                principal,
                ProposedChange(
                    tenant,
                    ChangeKind.ENABLE_CUSTOMIZATION,
                    f"publish --enable {registration.name} {version}",
                    customization=registration.name,
                    version=version,
                ),
            )
            outcome.requested.append(request)
            continue
        outcome.enabled.append(tenant)
    outcome.registration = registration
    return outcome


async def store_missing_code(
    services: Services, runtime: PluginRuntime, principal: Principal
) -> tuple[list[str], list[str]]:
    """Versions registered before the database stored code (``tailor db upgrade``
    from an older Tailor): store the code of the package found on disk with the
    same name, version and tenants. Answers (stored, still missing) as
    ``name version``."""
    found = {(s.name, s.manifest.version): s for s in runtime.sources() if s.manifest}
    stored: list[str] = []
    missing: list[str] = []
    for name, version, tenants in await services.registry.versions_without_code():
        source = found.get((name, version))
        if source is None or source.manifest is None or source.manifest.tenants != tenants:
            missing.append(f"{name} {version}")
            continue
        try:
            await services.registry.publish(principal, source.registration())
        except TailorError as exc:
            missing.append(f"{name} {version} ({exc.message})")
            continue
        stored.append(f"{name} {version}")
    return stored, missing
