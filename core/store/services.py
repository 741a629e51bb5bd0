"""The domain services of one running Tailor, wired to one database."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.model.apps import DocumentCheck
from core.model.hooks import HookRunner
from core.model.rehearsal import Replayer
from core.model.secrets import SecretBox
from core.store.apps import AppService
from core.store.audit import AuditService
from core.store.changes import ChangeRequestService
from core.store.db import create_engine, sessionmaker
from core.store.feed import FeedService
from core.store.foldback_service import FoldbackService
from core.store.observations import ObservationStore
from core.store.readiness_service import CodeSource, ReadinessService, RegistryRegistrations
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
    #: the registry as readiness and fold-back judge it (which code counts as installed)
    registrations: RegistryRegistrations
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
    #: change requests, applied through these very services (hooks and all)
    changes: ChangeRequestService
    #: the keys that seal secret settings at rest (``TAILOR_SECRET_KEY``)
    secrets: SecretBox = field(default_factory=SecretBox)

    @classmethod
    def from_engine(
        cls,
        engine: AsyncEngine,
        *,
        code: CodeSource = CodeSource.REGISTERED,
        secrets: SecretBox | None = None,
    ) -> Services:
        """Every service, each built once, here and nowhere else. ``code``: which
        customizations readiness and fold-back count as installed; ``secrets``
        defaults to the keys in ``TAILOR_SECRET_KEY``. Settings call no hooks until
        a runtime is attached (:meth:`run_customizations`)."""
        sessions = sessionmaker(engine)
        secrets = secrets if secrets is not None else SecretBox.from_env()
        registry = RegistryService(sessions)
        registrations = RegistryRegistrations(registry, code)
        apps = AppService(sessions)
        readiness = ReadinessService(sessions, registrations, secrets, apps)
        observations = ObservationStore(sessions)
        samples = InputSampleService(sessions, secrets)
        foldback = FoldbackService(sessions, registrations, readiness.blockers_by_customization)
        settings = SettingsService(sessions, None, secrets)
        return cls(
            engine=engine,
            sessions=sessions,
            settings=settings,
            tenants=TenantService(sessions),
            releases=ReleaseService(sessions),
            audit=AuditService(sessions),
            tokens=TokenService(sessions),
            registry=registry,
            registrations=registrations,
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
            changes=ChangeRequestService(sessions, settings, registry, readiness),
            secrets=secrets,
        )

    @classmethod
    def from_url(cls, url: str, *, code: CodeSource = CodeSource.REGISTERED) -> Services:
        return cls.from_engine(create_engine(url), code=code)

    def run_customizations(self, hooks: HookRunner, replayer: Replayer) -> None:
        """These services become a server's, in place (every service keeps its
        identity, and its caches): settings call ``hooks`` (the plugin runtime),
        readiness (and the triage, usage, fold-back and roadmap built on it) judges
        by the code the database stores (``NOT_INSTALLED``), rehearsals replay
        through ``replayer``. Called by :func:`api.wiring.attach`."""
        self.settings.hooks = hooks
        self.registrations.code = CodeSource.STORED
        self.rehearsal.replayer = replayer

    def set_document_check(self, check: DocumentCheck) -> None:
        """Readiness (and the triage, usage, fold-back and roadmap services built on
        it) checks the apps' documents against Tailor's schema from now on
        (``APP_OPERATION_INVALID``; the API layer knows the schema). Changes these
        services in place."""
        self.readiness.check_documents = check

    async def close(self) -> None:
        await self.engine.dispose()
