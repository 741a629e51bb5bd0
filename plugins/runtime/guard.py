"""Deadlines and the circuit breaker: why a customization's call ended, in one place.

* **Deadline.** A request's hook calls share one budget (``hook_timeout``
  seconds), counted from when the request arrived (:func:`start_request`,
  called by the HTTP layer; outside a request, per batch), waiting for a
  worker included. The call running when it passes is ended by killing its
  worker process (``plugins.runtime.process``); the failure names that
  customization and hook, and the value falls back to the non-customized one.
* **Circuit breaker.** A customization that fails ``threshold`` times in a row
  for a tenant is skipped for that tenant for ``cooldown`` seconds; the
  response says so. After the cool-down one call is let through: success closes
  the breaker, failure opens it again.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass

#: monotonic time by which this request's hook calls must be over
_DEADLINE: ContextVar[float | None] = ContextVar("tailor_hook_deadline", default=None)


def start_request(budget: float, arrived: float | None = None) -> None:
    """Called by the HTTP layer when a request arrives: its hooks share ``budget``."""
    _DEADLINE.set((arrived if arrived is not None else time.monotonic()) + budget)


def request_deadline(budget: float) -> float:
    """This request's deadline; outside a request (the CLI, a script) each
    batch gets the whole budget from now."""
    deadline = _DEADLINE.get()
    return deadline if deadline is not None else time.monotonic() + budget


def timeout_message(budget: float) -> str:
    return (
        f"did not return within the request's {budget:g}s budget: its worker process "
        "was stopped (the value falls back to the non-customized one)"
    )


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0


class CircuitBreaker:
    def __init__(self, threshold: int = 5, cooldown: float = 30.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._states: dict[tuple[str, str], _State] = {}

    def skipped(self, customization: str, tenant: str) -> str | None:
        """Why ``customization`` is skipped for ``tenant`` now, or None."""
        state = self._states.get((customization, tenant))
        if state is None or state.open_until == 0.0:
            return None
        left = state.open_until - time.monotonic()
        if left <= 0:
            state.open_until = 0.0  # half-open: one call goes through
            state.failures = self.threshold - 1
            return None
        return (
            f"skipped for {left:.0f}s more: it failed {state.failures} times in a row "
            "for this tenant (circuit breaker; it is retried after the cool-down)"
        )

    def succeeded(self, customization: str, tenant: str) -> None:
        self._states.pop((customization, tenant), None)

    def failed(self, customization: str, tenant: str) -> None:
        state = self._states.setdefault((customization, tenant), _State())
        state.failures += 1
        if state.failures >= self.threshold:
            state.open_until = time.monotonic() + self.cooldown
