"""Lifecycle metadata attached to hookspec functions, read back as
:class:`core.model.extension_points.ExtensionPoint`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from core.model.extension_points import EXPERIMENTAL, STABLE

F = TypeVar("F", bound=Callable[..., Any])

#: attribute a hookspec function carries its :class:`HookLifecycle` under
ATTRIBUTE = "tailor_lifecycle"


@dataclass(frozen=True)
class HookLifecycle:
    added: str
    deprecated: str | None = None
    removed: str | None = None
    replacement: str | None = None
    stability: str = STABLE

    def __post_init__(self) -> None:
        if self.stability not in (STABLE, EXPERIMENTAL):
            raise ValueError(f"stability must be {STABLE!r} or {EXPERIMENTAL!r}")


def lifecycle(
    added: str,
    *,
    deprecated: str | None = None,
    removed: str | None = None,
    replacement: str | None = None,
    stability: str = STABLE,
) -> Callable[[F], F]:
    """Record when an extension point appeared, was deprecated or will be removed.

    Put it under ``@hookspec``::

        @hookspec
        @lifecycle(added="1.5")
        def tailor_resolve_settings(tenant, environment, values): ...
    """
    meta = HookLifecycle(added, deprecated, removed, replacement, stability)

    def mark(function: F) -> F:
        setattr(function, ATTRIBUTE, meta)
        return function

    return mark


def lifecycle_of(function: Callable[..., Any]) -> HookLifecycle | None:
    return getattr(function, ATTRIBUTE, None)
