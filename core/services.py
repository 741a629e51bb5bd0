"""The domain services of one running Tailor, wired to one database."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.audit import AuditService
from core.db import create_engine, sessionmaker
from core.hooks import HookRunner, NoHooks
from core.registry import RegistryService
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
    registry: RegistryService

    @classmethod
    def from_engine(cls, engine: AsyncEngine, hooks: HookRunner | None = None) -> Services:
        sessions = sessionmaker(engine)
        return cls(
            engine=engine,
            sessions=sessions,
            settings=SettingsService(sessions, hooks or NoHooks()),
            tenants=TenantService(sessions),
            releases=ReleaseService(sessions),
            audit=AuditService(sessions),
            tokens=TokenService(sessions),
            registry=RegistryService(sessions),
        )

    @classmethod
    def from_url(cls, url: str, hooks: HookRunner | None = None) -> Services:
        return cls.from_engine(create_engine(url), hooks)

    def with_hooks(self, hooks: HookRunner) -> Services:
        """The same services, with settings calling ``hooks`` (the plugin runtime)."""
        return replace(self, settings=SettingsService(self.sessions, hooks))

    async def close(self) -> None:
        await self.engine.dispose()
