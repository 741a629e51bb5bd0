"""The hook path: customizations run in worker processes, never in the server.

Modules, in the order a call goes through them:

* :mod:`plugins.runtime.runner` — :class:`PluginRuntime`, the runner ``core``
  calls (``core.model.hooks.HookRunner``) and the host product's extension points;
* :mod:`plugins.runtime.guard` — the request's deadline and the circuit breaker
  (why a call ended: read this one);
* :mod:`plugins.runtime.pool` — the bounded pool of worker processes, one tenant
  per worker at a time;
* :mod:`plugins.runtime.process` — one worker process: spawn, talk, kill;
* :mod:`plugins.runtime.protocol` — the messages;
* :mod:`plugins.runtime.worker` — the worker's side (runs in the child);
* :mod:`plugins.runtime.sandbox` — what a worker may do;
* :mod:`plugins.runtime.install` — checking packages (in a worker) at start-up,
  publish and ``tailor customization check``;
* :mod:`plugins.runtime.observe` — health and observations, written in batches;
* :mod:`plugins.runtime.trial` — one package's hook called once on a tenant's
  values, as the server calls it (``tailor customization run``);
* :mod:`plugins.runtime.rehearsal` — recorded inputs replayed through
  customization versions, one worker per version (``tailor upgrade rehearse``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugins.runtime.runner import PluginRuntime, RuntimeOptions

__all__ = ["PluginRuntime", "RuntimeOptions"]


def __getattr__(name: str) -> Any:
    # lazily: a worker process imports this package without the server's half
    # (SQLAlchemy, the registry), which would only slow its start-up
    if name in __all__:
        from plugins.runtime import runner

        return getattr(runner, name)
    raise AttributeError(name)
