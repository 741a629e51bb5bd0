"""The worker pool is bounded: many tenants share a few processes, one tenant at
a time per process, and a tenant's answers never carry another's values."""

from __future__ import annotations

from api.wiring import attach
from core.store.services import Services
from tests.conftest import ADMIN
from tests.plugins.conftest import publish_enable

KEY = "billing.invoice.due_days"

ECHO = """
SEEN = []

@hookimpl
def tailor_resolve_settings(tenant, values):
    SEEN.append(tenant)  # module state: lives as long as the worker
    return {"billing.invoice.due_days": 10 + len(set(SEEN))}
"""


async def test_many_tenants_share_a_bounded_pool_without_mixing(
    services, write_customization, make_runtime
):
    tenants = [f"t{i}" for i in range(6)]
    for slug in tenants:
        await services.tenants.create(ADMIN, slug, slug.upper(), "2.0")
    write_customization("echo", ECHO, tenants=tuple(tenants))
    runtime = make_runtime(workers=2, spare_workers=0, workers_per_tenant=1)
    attach(services, runtime)
    await publish_enable(services, runtime, tenants[0], "echo")
    for slug in tenants[1:]:
        await services.registry.set_enabled(ADMIN, slug, "echo", True)
    live = set()
    for _round in range(2):
        for slug in tenants:
            result = await services.settings.resolve(ADMIN, slug, keys=[KEY])
            assert result.failures == []
            # expected 11: the worker has only ever seen this tenant (a worker that
            # had served another tenant would count 2 and answer 12)
            assert result.settings[0].value == 11, slug
            live.update(w.pid for w in runtime.pool.workers() if w.alive)
            assert len([w for w in runtime.pool.workers() if w.alive]) <= 2
    assert runtime.pool.spawned >= len(tenants)  # switching tenants replaced processes


BIG = """
@hookimpl
def tailor_resolve_settings(values):
    return {"billing.invoice.due_days": "x" * (10 * 1024 * 1024)}
"""

THREADED = """
import threading, time

@hookimpl
def tailor_resolve_settings(values):
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    return {"billing.invoice.due_days": 41}
"""


async def test_an_oversized_result_fails_that_call_only(
    services, tenant, write_customization, make_runtime
):
    write_customization("big", BIG)
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "big")
    result = await services.settings.resolve(ADMIN, tenant, keys=[KEY])
    assert result.settings[0].value == 30
    [failure] = result.failures
    assert failure.customization == "big" and "more than" in failure.message


async def test_a_worker_whose_customization_left_a_thread_is_retired(
    services, tenant, write_customization, make_runtime
):
    write_customization("threaded", THREADED)
    runtime = make_runtime(spare_workers=0)
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "threaded")
    for _ in range(3):
        result = await services.settings.resolve(ADMIN, tenant, keys=[KEY])
        assert result.failures == []
        assert result.settings[0].value == 41
    # expected: every call found a thread left behind, so each used a new process
    assert runtime.pool.spawned == 3


async def test_code_published_through_another_server_process_is_picked_up(
    services, tenant, write_customization, make_runtime, database_url
):
    first = make_runtime()
    second = make_runtime()  # another server process: started before the code existed
    attach(services, second)
    # the first server process: its own services on the same database
    first_server = Services.from_url(database_url)
    try:
        attach(first_server, first)
        path = write_customization("late", THEME_LATE)
        await first.publish(ADMIN, path)
    finally:
        await first_server.close()
    await services.registry.set_enabled(ADMIN, tenant, "late", True)
    result = await services.settings.resolve(ADMIN, tenant, keys=["ui.theme.mode"])
    assert result.failures == []
    assert (result.settings[0].value, result.settings[0].source) == ("dark", "CUSTOMIZATION:late")


THEME_LATE = """
@hookimpl
def tailor_resolve_settings(values):
    return {"ui.theme.mode": "dark"}
"""
