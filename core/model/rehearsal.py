"""Upgrade rehearsal as values: the calls a rehearsal makes and what they did,
and the protocol of what replays them (the plugin runtime's workers,
``plugins/runtime/rehearsal.py``, bound by ``api/wiring.py``).

A rehearsal replays recorded hook inputs (:mod:`core.model.samples`) through a
customization version twice, as the tenant's current release hands them and
translated to the target's catalog; :mod:`core.analysis.rehearsal` builds the
calls and judges the answers. Nothing here runs code or reads a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.model.customizations import Pin

#: the two sides of a replay
CURRENT = "current"
TARGET = "target"


@dataclass(frozen=True, slots=True)
class Replay:
    """One call: ``hook`` with ``kwargs`` (by value, secrets injected)."""

    #: ``<sample id>:current`` or ``<sample id>:target``
    id: str
    hook: str
    kwargs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReplayBatch:
    """Every call for one customization version: one worker runs them all."""

    pin: Pin
    replays: tuple[Replay, ...]


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    ok: bool
    value: Any = None
    error: str | None = None
    #: why it failed: "raised", "timed_out" or "killed" (the runtime's words)
    failure: str | None = None


@dataclass(frozen=True)
class ReplayStats:
    """What a replay session used: worker processes started (one per version,
    plus one after each call that killed its worker and had a successor), and
    the versions that could not be loaded at all: (name, version) -> why."""

    workers: int = 0
    unloadable: Mapping[tuple[str, str], str] = field(default_factory=dict)


class ReplaySession(Protocol):
    """Workers kept across the replays of one rehearsal: one per version,
    started at its first batch, reused by every later one."""

    async def replay(self, batches: Sequence[ReplayBatch]) -> dict[str, ReplayOutcome]:
        """Each call's outcome by replay id."""
        ...

    async def close(self) -> ReplayStats: ...


class Replayer(Protocol):
    """Runs replay batches in confined workers, one worker per version."""

    def session(self) -> ReplaySession: ...
