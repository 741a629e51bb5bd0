"""The fault suite: real customization packages on disk that misbehave the way a
hostile or careless consultant's code would, served by the real app over HTTP.

Expected, for every fault (written before the runtime was): the victim tenant's
request answers within its budget (+ a margin for process start-up), names the
faulty customization and hook, falls back to the non-customized value, and its
other customization (``tryfirst``) still applies; another tenant, asked at the
same time, gets its customized value with no error and answers before the
victim; the failure is charged to the faulty customization alone; the server
answers afterwards (``/healthz``) and the victim's next request works again.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tests.conftest import ADMIN
from tests.plugins.conftest import publish_enable

#: a request's budget: generous, because it also covers the server's own work
#: for the healthy tenant on a loaded 2-core machine (on PostgreSQL, with a
#: 1,000-setting answer)
BUDGET = 3.0
#: process start-up and scheduling on a loaded 2-core CI machine
MARGIN = 1.5
DUE = "billing.invoice.due_days"

QUERY = """query($t: String!) { settings(tenant: $t) {
  ... on Settings { items { key value source } customizationErrors { customization hook message } }
  ... on Error { code message }
} }"""

STEADY = """
@hookimpl
def tailor_resolve_settings(values):
    return {"billing.invoice.due_days": 77}
"""

FINE = """
@hookimpl(tryfirst=True)
def tailor_resolve_settings(values):
    return {"ui.theme.mode": "dark"}
"""

FAULTS = {
    "sys-exit": "import sys\n    sys.exit(3)",
    "os-exit": "import os\n    os._exit(7)",
    "keyboard-interrupt": "raise KeyboardInterrupt",
    "segfault": "import faulthandler\n    faulthandler._sigsegv()",
    "hang": "import time\n    time.sleep(60)",
    "cpu-loop-in-c": 'import re\n    re.match(r"(a+)+$", "a" * 64 + "b")',
    "memory-bomb": "blob = bytearray(8 * 1024 ** 3)",
    "raises": 'raise LookupError("customer_id")',
}


def faulty(body: str) -> str:
    return f"""
@hookimpl
def tailor_resolve_settings(values):
    {body}
    return {{"billing.invoice.due_days": 1}}
"""


async def _ask(api, tenant: str, token: str = "admin") -> tuple[dict, float]:
    started = time.monotonic()
    body = await api.gql(QUERY, {"t": tenant}, token)
    return body["data"]["settings"], time.monotonic() - started


def _items(result: dict) -> dict:
    return {i["key"]: (i["value"], i["source"]) for i in result["items"]}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_fault_ends_that_call_only(
    plugin_api, write_customization, two_tenants, services, fault
):
    acme, other = two_tenants
    write_customization("faulty", faulty(FAULTS[fault]), tenants=(acme,))
    write_customization("fine", FINE, tenants=(acme,))
    write_customization("steady", STEADY, tenants=(other,))
    api, runtime = await plugin_api(hook_timeout=BUDGET, worker_memory_mb=768)
    await publish_enable(services, runtime, acme, "faulty", "fine")
    await services.registry.set_enabled(ADMIN, other, "steady", True)
    baseline, _ = await _ask(api, other)  # warm: the other tenant's worker exists
    assert _items(baseline)[DUE] == (77, "CUSTOMIZATION:steady")

    victim_task = asyncio.create_task(_ask(api, acme))
    others = []
    while not victim_task.done() and len(others) < 5:
        others.append(await _ask(api, other))
    victim, elapsed = await victim_task

    assert elapsed < BUDGET + MARGIN, f"{fault}: the victim waited {elapsed:.2f}s"
    items = _items(victim)
    assert items[DUE] == (30, "DEFAULT")
    assert items["ui.theme.mode"] == ("dark", "CUSTOMIZATION:fine")
    errors = victim["customizationErrors"]
    assert [(e["customization"], e["hook"]) for e in errors] == [
        ("faulty", "tailor_resolve_settings")
    ], errors
    assert others, "the other tenant was never answered while the fault lasted"
    for result, _took in others:
        assert result["customizationErrors"] == []
        assert _items(result)[DUE] == (77, "CUSTOMIZATION:steady")

    await runtime.flush_health()
    health = {r.name: r.health for r in await services.registry.list_all(ADMIN)}
    assert health["faulty"].failures == 1
    assert health["fine"].failures == 0 and health["steady"].failures == 0
    assert (await api.client.get("/healthz")).status_code == 200
    again, _ = await _ask(api, acme)
    assert _items(again)["ui.theme.mode"] == ("dark", "CUSTOMIZATION:fine")


async def test_twenty_requests_for_a_hanging_tenant_each_end_by_their_deadline(
    plugin_api, write_customization, two_tenants, services
):
    acme, other = two_tenants
    write_customization("hanger", faulty(FAULTS["hang"]), tenants=(acme,))
    write_customization("steady", STEADY, tenants=(other,))
    api, runtime = await plugin_api(hook_timeout=BUDGET, breaker_threshold=1000)
    await publish_enable(services, runtime, acme, "hanger")
    await services.registry.set_enabled(ADMIN, other, "steady", True)
    await _ask(api, other)
    started = time.monotonic()
    victims = [asyncio.create_task(_ask(api, acme)) for _ in range(20)]
    healthy, took = await _ask(api, other)
    results = await asyncio.gather(*victims)
    total = time.monotonic() - started
    # concurrently, not one after another (20 x 1.5 s would be 30 s)
    assert total < BUDGET + MARGIN + 1.0, f"20 requests took {total:.2f}s"
    for result, elapsed in results:
        assert elapsed < BUDGET + MARGIN + 1.0
        assert _items(result)[DUE] == (30, "DEFAULT")
        assert result["customizationErrors"][0]["customization"] == "hanger"
    assert healthy["customizationErrors"] == []
    assert took < BUDGET, "the other tenant waited for the hanging one"


async def test_a_customization_that_keeps_failing_is_skipped_for_a_cool_down(
    plugin_api, write_customization, two_tenants, services
):
    acme, _ = two_tenants
    write_customization("flaky", faulty(FAULTS["raises"]), tenants=(acme,))
    api, runtime = await plugin_api(breaker_threshold=2, breaker_cooldown=60)
    await publish_enable(services, runtime, acme, "flaky")
    messages = []
    for _ in range(3):
        result, _ = await _ask(api, acme)
        messages.append(result["customizationErrors"][0]["message"])
    assert "LookupError" in messages[0] and "LookupError" in messages[1]
    assert "circuit breaker" in messages[2]
    await runtime.flush_health()
    [reg] = await services.registry.list_all(ADMIN)
    assert reg.health.failures == 2  # a skipped call is not run, not charged again


SPY = """
import gc, os, socket

def attempt(what, fn):
    try:
        return f"{what}: GOT {fn()!r}"[:200]
    except BaseException as exc:
        return f"{what}: refused ({type(exc).__name__})"

@hookimpl
def tailor_resolve_settings(values):
    report = [
        attempt("env", lambda: {k: v for k, v in os.environ.items()
                                 if "TAILOR" in k or "DATABASE" in k} or None),
        attempt("db-socket", lambda: socket.create_connection(("127.0.0.1", 5432), 1)),
        attempt("kill-parent", lambda: os.kill(os.getppid(), 9)),
        attempt("read-passwd", lambda: open("/etc/passwd").read(20)),
        attempt("write-file", lambda: open("/tmp/tailor-spy.txt", "w").write("x")),
        attempt("subprocess", lambda: os.system("true")),
        attempt("ctypes", lambda: __import__("ctypes").CDLL(None)),
        attempt("engines", lambda: [
            type(o).__name__ for o in gc.get_objects()
            if type(o).__name__ in ("AsyncEngine", "Engine", "ApiToken")
        ] or None),
    ]
    values["billing.currency.rounding_rules"]["JPY"]["decimals"] = 99  # its own copy
    return {"billing.payment.methods": report}
"""


async def test_a_customization_cannot_reach_what_it_was_not_handed(
    plugin_api, write_customization, two_tenants, services, database_url
):
    acme, other = two_tenants
    write_customization("spy", SPY, tenants=(acme,))
    os.environ["TAILOR_SECRET_PROBE"] = "do-not-leak"
    try:
        api, runtime = await plugin_api()
        await publish_enable(services, runtime, acme, "spy")
        result, _ = await _ask(api, acme)
    finally:
        del os.environ["TAILOR_SECRET_PROBE"]
    assert result["customizationErrors"] == []
    report = _items(result)["billing.payment.methods"][0]
    assert report[0] == "env: GOT None"  # a scrubbed environment
    for line in report[1:-1]:
        assert "refused" in line, line
    assert report[-1] == "engines: GOT None"  # nothing of the server's in its memory
    assert not os.path.exists("/tmp/tailor-spy.txt")  # noqa: ASYNC240
    # the mutation stayed in the spy's own copy
    theirs, _ = await _ask(api, other)
    assert _items(theirs)["billing.currency.rounding_rules"][0]["JPY"] == {"decimals": 0}
    mine, _ = await _ask(api, acme)
    assert _items(mine)["billing.currency.rounding_rules"][0]["JPY"] == {"decimals": 0}


async def test_start_up_refuses_customizations_that_kill_or_hang_their_importer(
    write_customization, make_runtime
):
    write_customization("killer", "import os\nos._exit(9)\n", header=True)
    write_customization("sleeper", "import time\ntime.sleep(60)\n", header=True)
    write_customization("good", STEADY)
    started = time.monotonic()
    runtime = make_runtime(import_timeout=1.0)
    took = time.monotonic() - started
    assert [c.name for c in runtime.sources()] == ["good"]
    reasons = {r.name: " ".join(str(p) for p in r.problems) for r in runtime.refused()}
    assert "exited with status 9" in reasons["killer"]
    assert "did not finish within 1s" in reasons["sleeper"]
    assert took < 1.0 + MARGIN + 1.0


BREAKOUT = """
import gc, os, socket

def attempt(what, fn):
    try:
        return f"{what}: GOT {fn()!r}"[:200]
    except BaseException as exc:
        return f"{what}: refused ({type(exc).__name__})"

def disarm():
    # the audit hook is a Python object: a hostile customization finds it and
    # switches it off; what is left must be the kernel's confinement
    for obj in gc.get_objects():
        if type(obj).__name__ == "Confinement":
            obj.active = False
            obj.roots = ("/",)
            return "disarmed"
    return "not found"

def unix_db():
    s = socket.socket(socket.AF_UNIX)
    s.connect("/var/run/postgresql/.s.PGSQL.5432")
    return "connected"

@hookimpl
def tailor_resolve_settings(values):
    report = [
        disarm(),
        attempt("tcp-db", lambda: socket.create_connection(("127.0.0.1", 5432), 1)),
        attempt("unix-db", unix_db),
        attempt("passwd", lambda: open("/etc/passwd").read(20)),
        attempt("server-environ", lambda: open(f"/proc/{os.getppid()}/environ").read(20)),
        attempt("kill-server", lambda: os.kill(os.getppid(), 9)),
        attempt("fork", lambda: os.fork()),
        attempt("exec", lambda: os.execv("/bin/true", ["true"])),
        attempt("write", lambda: open("/tmp/tailor-breakout.txt", "w").write("x")),
    ]
    return {"billing.payment.methods": report}
"""


async def test_a_customization_that_disarms_the_audit_hook_is_still_confined(
    plugin_api, write_customization, two_tenants, services
):
    acme, _ = two_tenants
    write_customization("breakout", BREAKOUT, tenants=(acme,))
    api, runtime = await plugin_api()
    await publish_enable(services, runtime, acme, "breakout")
    result, _ = await _ask(api, acme)
    kernel = [c for c in runtime.confinement if c.startswith(("landlock", "seccomp"))]
    if len(kernel) < 2:
        pytest.skip(f"this kernel offers only {runtime.confinement}: no Landlock or seccomp")
    assert result["customizationErrors"] == []
    report = _items(result)["billing.payment.methods"][0]
    assert report[0] == "disarmed"
    for line in report[1:]:
        assert "refused" in line, line
    assert (await api.client.get("/healthz")).status_code == 200
    assert not os.path.exists("/tmp/tailor-breakout.txt")  # noqa: ASYNC240
