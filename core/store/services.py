"""The domain services of one running Tailor, wired to one database."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.model.apps import DocumentCheck
from core.model.auth import Principal
from core.model.hooks import HookRunner
from core.model.secrets import SecretBox
from core.store.apps import AppService
from core.store.audit import AuditService
from core.store.changes import ChangeRequestService
from core.store.db import create_engine, sessionmaker
from core.store.feed import FeedService
from core.store.foldback_service import FoldbackService
from core.store.observations import ObservationStore
from core.store.readiness_service import ReadinessService, RegistrationProvider, RegistrySnapshot
from core.store.registry import RegistryService
from core.store.rehearsal import RehearsalService
from core.store.releases import ReleaseService
from core.store.roadmap import RoadmapService
from core.store.samples import InputSampleService
from core.store.settings import SettingsService
from core.store.tenants import TenantService
from core.store.tokens import TokenService
from core.store.triage import TriageService
from core.store.usage_service import UsageService
from core.store.web_sessions import WebSessionService
from core.store.webhooks import WebhookService


@dataclass(frozen=True)
class RegistryRegistrations:
    """Readiness's view of the registry: every registration with its enabled
    tenants. ``installed`` is what the plugin runtime found here (None: unknown)."""

    registry: RegistryService
    installed: frozenset[str] | None = None
    #: judge by the code the database stores (``installed`` is then ignored)
    stored_code: bool = False

    async def __call__(self) -> RegistrySnapshot:
        # each tenant judged on the version it is pinned to
        registrations = await self.registry.pinned_registrations(Principal.system("readiness"))
        if self.stored_code:
            return RegistrySnapshot.of_stored_code(registrations)
        return RegistrySnapshot(tuple(registrations), self.installed)


@dataclass
class Services:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    settings: SettingsService
    tenants: TenantService
    releases: ReleaseService
    audit: AuditService
    tokens: TokenService
    registry: RegistryService
    readiness: ReadinessService
    foldback: FoldbackService
    observations: ObservationStore
    triage: TriageService
    usage: UsageService
    roadmap: RoadmapService
    web_sessions: WebSessionService
    feed: FeedService
    webhooks: WebhookService
    apps: AppService
    #: recorded hook inputs and each tenant's recording policy
    samples: InputSampleService
    #: recorded inputs replayed against a target release
    rehearsal: RehearsalService
    #: the keys that seal secret settings at rest (``TAILOR_SECRET_KEY``)
    secrets: SecretBox = field(default_factory=SecretBox)

    @classmethod
    def from_engine(
        cls,
        engine: AsyncEngine,
        hooks: HookRunner | None = None,
        registrations: RegistrationProvider | None = None,
        secrets: SecretBox | None = None,
    ) -> Services:
        """``hooks`` call the customizations (the plugin runtime); ``secrets``
        defaults to the keys in ``TAILOR_SECRET_KEY``."""
        sessions = sessionmaker(engine)
        secrets = secrets if secrets is not None else SecretBox.from_env()
        registry = RegistryService(sessions)
        apps = AppService(sessions)
        readiness = ReadinessService(
            sessions, registrations or RegistryRegistrations(registry), secrets, apps
        )
        observations = ObservationStore(sessions)
        samples = InputSampleService(sessions, secrets)
        foldback = FoldbackService(sessions, registry, readiness.blockers_by_customization)
        return cls(
            engine=engine,
            sessions=sessions,
            settings=SettingsService(sessions, hooks, secrets),
            tenants=TenantService(sessions),
            releases=ReleaseService(sessions),
            audit=AuditService(sessions),
            tokens=TokenService(sessions),
            registry=registry,
            readiness=readiness,
            foldback=foldback,
            observations=observations,
            triage=TriageService(sessions, readiness),
            usage=UsageService(readiness, observations),
            roadmap=RoadmapService(
                sessions, foldback, registry, readiness.blockers_by_customization
            ),
            web_sessions=WebSessionService(sessions),
            feed=FeedService(sessions),
            webhooks=WebhookService(sessions, secrets),
            apps=apps,
            samples=samples,
            rehearsal=RehearsalService(sessions, readiness, registry, samples),
            secrets=secrets,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        hooks: HookRunner | None = None,
    ) -> Services:
        return cls.from_engine(create_engine(url), hooks)

    def with_hooks(self, hooks: HookRunner) -> Services:
        """The same services, with settings calling ``hooks`` (the plugin runtime)."""
        return replace(self, settings=SettingsService(self.sessions, hooks, self.secrets))

    def with_document_check(self, check: DocumentCheck) -> Services:
        """The same services, with readiness checking the apps' documents against
        Tailor's schema (``APP_OPERATION_INVALID``; the API layer knows the schema)."""
        self.readiness.check_documents = check
        return self

    def with_installed(self, installed: frozenset[str]) -> Services:
        """The same services, with readiness knowing which customizations' code is here."""
        return self._with_registrations(RegistryRegistrations(self.registry, installed))

    def with_stored_code(self) -> Services:
        """The same services, with readiness reporting a customization whose code the
        database does not store (``NOT_INSTALLED``): what every server runs."""
        return self._with_registrations(RegistryRegistrations(self.registry, stored_code=True))

    def _with_registrations(self, registrations: RegistryRegistrations) -> Services:
        readiness = ReadinessService(
            self.sessions,
            registrations,
            self.secrets,
            self.apps,
            self.readiness.check_documents,
        )
        foldback = self.foldback.with_blockers(
            readiness.blockers_by_customization,
            registrations.installed,
            stored_code=registrations.stored_code,
        )
        return replace(
            self,
            readiness=readiness,
            triage=TriageService(self.sessions, readiness),
            usage=UsageService(readiness, self.observations),
            foldback=foldback,
            roadmap=self.roadmap.with_sources(foldback, readiness.blockers_by_customization),
        )

    @property
    def changes(self) -> ChangeRequestService:
        """Change requests, applied through these very services (hooks and all)."""
        return ChangeRequestService(self.sessions, self.settings, self.registry, self.readiness)

    async def close(self) -> None:
        await self.engine.dispose()
