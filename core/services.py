"""The domain services of one running Tailor, wired to one database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.audit import AuditService
from core.db import create_engine, sessionmaker
from core.hooks import DEFAULT_HOOK_TIMEOUT, FailureListener, HookRunner
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

    @classmethod
    def from_engine(
        cls,
        engine: AsyncEngine,
        hooks: HookRunner | None = None,
        hook_timeout: float = DEFAULT_HOOK_TIMEOUT,
        on_hook_failure: FailureListener | None = None,
    ) -> Services:
        """``hooks`` call the customizations; each call gets ``hook_timeout``
        seconds, and every failure goes to ``on_hook_failure(tenant, failure)``."""
        sessions = sessionmaker(engine)
        return cls(
            engine=engine,
            sessions=sessions,
            settings=SettingsService(sessions, hooks, hook_timeout, on_hook_failure),
            tenants=TenantService(sessions),
            releases=ReleaseService(sessions),
            audit=AuditService(sessions),
            tokens=TokenService(sessions),
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        hooks: HookRunner | None = None,
        hook_timeout: float = DEFAULT_HOOK_TIMEOUT,
        on_hook_failure: FailureListener | None = None,
    ) -> Services:
        return cls.from_engine(create_engine(url), hooks, hook_timeout, on_hook_failure)

    async def close(self) -> None:
        await self.engine.dispose()
