"""The small protocol through which the domain calls customization hooks.

``core`` never imports pluggy: the plugin runtime (``plugins/runtime/``)
implements :class:`HookRunner`, and the app hands it to the services. Every
method is called once per batch (one resolution, one write), never once per
setting. The runner contains the customizations (worker processes, deadlines,
attribution): whatever goes wrong comes back as :class:`HookFailure` values.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from core.model.definitions import SettingDefinition

if TYPE_CHECKING:
    from core.model.auth import Principal
    from core.model.customizations import HealthDelta, ObservationDelta, Pin, Registration


#: Tailor's hook names: the one home of their spelling. ``plugins/hookspecs.py``
#: declares one hookspec per name (a test checks the two agree); the runtime, the
#: trial, the evidence reader and the settings service name hooks through these.
REGISTER_SETTINGS = "tailor_register_settings"
RESOLVE_SETTINGS = "tailor_resolve_settings"
RESOLVE_SETTING = "tailor_resolve_setting"
VALIDATE_SETTING = "tailor_validate_setting"
SETTING_CHANGED = "tailor_setting_changed"
SETTINGS_CHANGED = "tailor_settings_changed"
#: every Tailor hook, in the order a reader meets them (the hook reference's order)
TAILOR_HOOKS: tuple[str, ...] = (
    REGISTER_SETTINGS,
    RESOLVE_SETTINGS,
    RESOLVE_SETTING,
    VALIDATE_SETTING,
    SETTING_CHANGED,
    SETTINGS_CHANGED,
)


@dataclass(frozen=True)
class HookFailure:
    """A customization's hook raised, timed out or returned something invalid."""

    customization: str
    hook: str
    message: str


@dataclass(frozen=True)
class CustomizedValue:
    key: str
    value: Any
    customization: str


@dataclass(frozen=True)
class ResolveOutcome:
    values: Sequence[CustomizedValue] = ()
    failures: Sequence[HookFailure] = ()


@dataclass(frozen=True)
class ValidationOutcome:
    #: (customization, message) pairs: business-rule violations
    errors: Sequence[tuple[str, str]] = ()
    failures: Sequence[HookFailure] = ()


@dataclass(frozen=True)
class DefinitionsOutcome:
    definitions: Sequence[tuple[str, SettingDefinition]] = ()
    failures: Sequence[HookFailure] = field(default_factory=tuple)


class HookRunner(Protocol):
    """Calls the hooks of one tenant's enabled customizations, and only those."""

    async def register_settings(self, tenant: str) -> DefinitionsOutcome: ...

    async def resolve_settings(
        self,
        tenant: str,
        environment: str | None,
        values: Mapping[str, Any],
        secret: Collection[str] = frozenset(),
    ) -> ResolveOutcome:
        """``secret``: the keys of ``values`` that are secret settings. A
        customization receives one only when its manifest declares it
        (``secrets = [...]``); to the others the key is absent from ``values``."""
        ...

    async def validate_setting(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        value: Any,
        secret: bool = False,
    ) -> ValidationOutcome:
        """``secret``: ``key`` is a secret setting; only the customizations
        declaring it are called."""
        ...

    async def setting_changed(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        old: Any,
        new: Any,
        actor: str,
        secret: bool = False,
    ) -> Sequence[HookFailure]:
        """``secret``: ``key`` is a secret setting; only the customizations
        declaring it are told (with its values)."""
        ...


class NoHooks:
    """A :class:`HookRunner` for a product without customizations."""

    async def register_settings(self, tenant: str) -> DefinitionsOutcome:
        return DefinitionsOutcome()

    async def resolve_settings(
        self,
        tenant: str,
        environment: str | None,
        values: Mapping[str, Any],
        secret: Collection[str] = frozenset(),
    ) -> ResolveOutcome:
        return ResolveOutcome()

    async def validate_setting(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        value: Any,
        secret: bool = False,
    ) -> ValidationOutcome:
        return ValidationOutcome()

    async def setting_changed(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        old: Any,
        new: Any,
        actor: str,
        secret: bool = False,
    ) -> Sequence[HookFailure]:
        return ()


#: default time budget, in seconds, for one request's hook calls
DEFAULT_HOOK_TIMEOUT = 2.0


class CustomizationRegistry(Protocol):
    """What the plugin runtime needs of the customization registry
    (``core/store/registry.py``'s ``RegistryService`` implements it): which customization
    is enabled for which tenant, publishing, and per-customization health."""

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever enablement may have changed."""
        ...

    async def pinned_map(self) -> dict[str, tuple[Pin, ...]]:
        """tenant -> the versions of its enabled customizations it is pinned to."""
        ...

    async def artifacts(self, hashes: Sequence[str]) -> dict[str, bytes]:
        """The stored packages (canonical zips) with these tree hashes."""
        ...

    async def publish(self, principal: Principal, registration: Registration) -> Registration:
        """Store (or update) a registration; refused ones raise a ``TailorError``."""
        ...

    async def record_health(self, deltas: Sequence[HealthDelta]) -> None:
        """Add calls and failures since the last flush."""
        ...


class ObservationSink(Protocol):
    """Where the plugin runtime hands its observations in batches
    (``core/store/observations.py``'s ``ObservationStore`` implements it)."""

    async def record(self, deltas: Sequence[ObservationDelta]) -> None: ...
