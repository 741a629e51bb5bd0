"""The small protocol through which the domain calls customization hooks.

``core`` never imports pluggy: the plugin runtime (``plugins/``) implements
:class:`HookRunner`, and the app hands it to the services. Every method is
called once per batch (one resolution, one write), never once per setting.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.definitions import SettingDefinition

log = logging.getLogger("tailor.hooks")


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
        self, tenant: str, environment: str | None, values: Mapping[str, Any]
    ) -> ResolveOutcome: ...

    async def validate_setting(
        self, tenant: str, environment: str | None, key: str, value: Any
    ) -> ValidationOutcome: ...

    async def setting_changed(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        old: Any,
        new: Any,
        actor: str,
    ) -> Sequence[HookFailure]: ...


class NoHooks:
    """A :class:`HookRunner` for a product without customizations."""

    async def register_settings(self, tenant: str) -> DefinitionsOutcome:
        return DefinitionsOutcome()

    async def resolve_settings(
        self, tenant: str, environment: str | None, values: Mapping[str, Any]
    ) -> ResolveOutcome:
        return ResolveOutcome()

    async def validate_setting(
        self, tenant: str, environment: str | None, key: str, value: Any
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
    ) -> Sequence[HookFailure]:
        return ()


#: what :class:`HookFailure.customization` names when the runner as a whole failed
#: (raised, timed out, answered nonsense) and could not say which customization
ALL_CUSTOMIZATIONS = "*"
#: default time budget, in seconds, for one batch call into a tenant's hooks
DEFAULT_HOOK_TIMEOUT = 2.0

#: ``on_failure(tenant, failure)``: a plain function, or a coroutine function (awaited
#: inside the request, e.g. to write health counters). It may answer a more precise
#: :class:`HookFailure` for a failure of the whole batch (customization ``"*"``): the
#: plugin runtime knows whose hook was running when the budget ran out.
FailureListener = Callable[[str, HookFailure], Awaitable[HookFailure | None] | HookFailure | None]


class GuardedHooks:
    """A :class:`HookRunner` around another that never lets a customization harm
    more than its own tenant's request.

    Each call gets a time budget (``timeout`` seconds); a call that raises, runs
    over budget or answers with the wrong type becomes a :class:`HookFailure`
    and the caller serves the non-customized value. Every failure, including the
    ones the runner reports itself, goes to ``on_failure(tenant, failure)`` so the
    registry can record the customization's health. For a failure of the whole
    batch the listener may answer the customization it is attributable to; the
    caller then sees that failure instead of the ``"*"`` one.

    The budget is enforced on the awaitable: runners must not block the event
    loop (synchronous hook code belongs in a worker thread).
    """

    def __init__(
        self,
        runner: HookRunner,
        timeout: float = DEFAULT_HOOK_TIMEOUT,
        on_failure: FailureListener | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("the hook time budget must be positive")
        self.runner = runner
        self.timeout = timeout
        self.on_failure = on_failure

    async def register_settings(self, tenant: str) -> DefinitionsOutcome:
        hook = "tailor_register_settings"
        outcome = await self._call(tenant, hook, lambda: self.runner.register_settings(tenant))
        if isinstance(outcome, HookFailure):
            return DefinitionsOutcome(failures=(outcome,))
        if not isinstance(outcome, DefinitionsOutcome) or not all(
            isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], SettingDefinition)
            for item in outcome.definitions
        ):
            failure = await self._wrong_type(tenant, hook, outcome, "DefinitionsOutcome")
            return DefinitionsOutcome(failures=(failure,))
        await self._report(tenant, outcome.failures)
        return outcome

    async def resolve_settings(
        self, tenant: str, environment: str | None, values: Mapping[str, Any]
    ) -> ResolveOutcome:
        hook = "tailor_resolve_settings"
        outcome = await self._call(
            tenant, hook, lambda: self.runner.resolve_settings(tenant, environment, values)
        )
        if isinstance(outcome, HookFailure):
            return ResolveOutcome(failures=(outcome,))
        if not isinstance(outcome, ResolveOutcome) or not all(
            isinstance(v, CustomizedValue) for v in outcome.values
        ):
            failure = await self._wrong_type(tenant, hook, outcome, "ResolveOutcome")
            return ResolveOutcome(failures=(failure,))
        await self._report(tenant, outcome.failures)
        return outcome

    async def validate_setting(
        self, tenant: str, environment: str | None, key: str, value: Any
    ) -> ValidationOutcome:
        hook = "tailor_validate_setting"
        outcome = await self._call(
            tenant, hook, lambda: self.runner.validate_setting(tenant, environment, key, value)
        )
        if isinstance(outcome, HookFailure):
            return ValidationOutcome(failures=(outcome,))
        if not isinstance(outcome, ValidationOutcome):
            failure = await self._wrong_type(tenant, hook, outcome, "ValidationOutcome")
            return ValidationOutcome(failures=(failure,))
        await self._report(tenant, outcome.failures)
        return outcome

    async def setting_changed(
        self,
        tenant: str,
        environment: str | None,
        key: str,
        old: Any,
        new: Any,
        actor: str,
    ) -> Sequence[HookFailure]:
        hook = "tailor_setting_changed"
        outcome = await self._call(
            tenant,
            hook,
            lambda: self.runner.setting_changed(tenant, environment, key, old, new, actor),
        )
        if isinstance(outcome, HookFailure):
            return (outcome,)
        if not isinstance(outcome, Sequence) or not all(
            isinstance(f, HookFailure) for f in outcome
        ):
            return (await self._wrong_type(tenant, hook, outcome, "a sequence of HookFailure"),)
        await self._report(tenant, outcome)
        return tuple(outcome)

    async def _call(self, tenant: str, hook: str, call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await asyncio.wait_for(call(), self.timeout)
        except TimeoutError:
            message = f"did not answer within its {self.timeout:g}s time budget"
        except Exception as exc:  # a customization's own bug, whatever it is
            message = f"raised {type(exc).__name__}: {exc}"
        return await self._failed(tenant, HookFailure(ALL_CUSTOMIZATIONS, hook, message))

    async def _wrong_type(self, tenant: str, hook: str, outcome: Any, expected: str) -> HookFailure:
        message = f"answered {type(outcome).__name__} instead of {expected}"
        return await self._failed(tenant, HookFailure(ALL_CUSTOMIZATIONS, hook, message))

    async def _failed(self, tenant: str, failure: HookFailure) -> HookFailure:
        """Report a failure of the whole batch; the listener may attribute it."""
        attributed = await self._notify(tenant, failure)
        return attributed if isinstance(attributed, HookFailure) else failure

    async def _report(self, tenant: str, failures: Sequence[HookFailure]) -> None:
        if self.on_failure is None:
            return
        for failure in failures:
            await self._notify(tenant, failure)

    async def _notify(self, tenant: str, failure: HookFailure) -> HookFailure | None:
        if self.on_failure is None:
            return None
        try:
            answer = self.on_failure(tenant, failure)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception:  # recording health must never break the request
            log.exception("recording a hook failure for tenant %r failed", tenant)
            return None
        return answer if isinstance(answer, HookFailure) else None


def chain_listeners(*listeners: FailureListener | None) -> FailureListener | None:
    """One listener calling each of ``listeners`` in turn; the last attribution wins."""
    present = [listener for listener in listeners if listener is not None]
    if len(present) <= 1:
        return present[0] if present else None

    async def chained(tenant: str, failure: HookFailure) -> HookFailure | None:
        attributed = None
        for listener in present:
            answer = listener(tenant, failure)
            if inspect.isawaitable(answer):
                answer = await answer
            if isinstance(answer, HookFailure):
                attributed = answer
        return attributed

    return chained
