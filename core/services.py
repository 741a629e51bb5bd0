"""The domain services of one running Tailor, wired to one database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.audit import AuditService
from core.db import create_engine, sessionmaker
from core.hooks import HookRunner, NoHooks
from core.readiness_service import ReadinessService, RegistrationProvider, no_registrations
from core.releases import ReleaseService
from core.settings import SettingsService
from core.tenants import TenantService
from core.tokens import TokenService


@dataclass
class Services:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    settings: SettingsService
    tenants: TenantService
    releases: ReleaseService
    audit: AuditService
    tokens: TokenService
    readiness: ReadinessService

    @classmethod
    def from_engine(
        cls,
        engine: AsyncEngine,
        hooks: HookRunner | None = None,
        registrations: RegistrationProvider = no_registrations,
    ) -> Services:
        sessions = sessionmaker(engine)
        return cls(
            engine=engine,
            sessions=sessions,
            settings=SettingsService(sessions, hooks or NoHooks()),
            tenants=TenantService(sessions),
            releases=ReleaseService(sessions),
            audit=AuditService(sessions),
            tokens=TokenService(sessions),
            readiness=ReadinessService(sessions, registrations),
        )

    @classmethod
    def from_url(cls, url: str, hooks: HookRunner | None = None) -> Services:
        return cls.from_engine(create_engine(url), hooks)

    async def close(self) -> None:
        await self.engine.dispose()
