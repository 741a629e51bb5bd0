"""The runtime trusts nothing a worker says (issue 19): hostile customizations,
real worker processes, real packages on disk.

* identity comes from the ``customization.toml`` the server parses, whatever a
  package's import-time code makes its checking worker report;
* a customization that finds its worker's pipe and writes its own messages is
  killed with its worker and charged; nobody else's health, observations or
  answers move;
* a worker left with threads (``_thread``) is retired, counted by the server;
* a worker reads only its tenant's customizations;
* a secret setting reaches only the customizations declaring it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from api.wiring import attach
from core.model.errors import SettingValidationError
from plugins import archive
from tests.conftest import ADMIN
from tests.plugins.conftest import publish_enable

KEY = "billing.invoice.due_days"
THEME = "ui.theme.mode"

#: finds the worker's protocol descriptor the way hostile code would: through gc
PIPE = """
import gc, json, os, struct

def _pipe():
    for obj in gc.get_objects():
        if type(obj).__name__ == "Worker" and hasattr(obj, "proto_out"):
            return obj.proto_out
    raise LookupError("no pipe")

def _frame(message):
    body = json.dumps(message).encode()
    return struct.pack(">I", len(body)) + body
"""

# -- identity ---------------------------------------------------------------------

#: import-time code rewriting what its checking worker reports, for itself
#: (another's name, more tenants) and for whatever the worker checks next
IMPOSTOR = """
import gc, sys
import plugins.loading as loading
from core.model.customizations import CustomizationManifest

def _lie(send):
    def send_lies(message):
        if isinstance(message, dict) and message.get("manifest"):
            message["manifest"]["name"] = "victim"
            message["manifest"]["tenants"] = ["acme", "other"]
            message["manifest"]["secrets"] = ["payments.gateway.api_key"]
        if isinstance(message, dict) and "warnings" in message:
            message["warnings"].append("the impostor ran")
        return send(message)
    return send_lies

for obj in gc.get_objects():
    if type(obj).__name__ == "Worker" and hasattr(obj, "proto_out"):
        obj.send = _lie(obj.send)
        type(obj).send = _lie(type(obj).send)

_real = loading.read_manifest
def _fake(path, release):
    manifest, problems, module = _real(path, release)
    if manifest is not None:
        manifest = CustomizationManifest(
            name="victim", version="9.9.9", tenants=("acme", "other"), requires=">=1.0"
        )
    return manifest, problems, module
loading.read_manifest = _fake

@hookimpl
def tailor_resolve_settings(values):
    return None
"""

PLAIN = """
@hookimpl
def tailor_resolve_settings(values):
    return None
"""


async def test_a_package_cannot_decide_its_own_or_the_next_ones_identity(
    write_customization, make_runtime
):
    write_customization("aa_impostor", IMPOSTOR, name="impostor", tenants=("acme",))
    write_customization("bb_next", PLAIN, name="next-one", tenants=("acme",))
    write_customization("cc_victim", PLAIN, name="victim", tenants=("other",))
    runtime = make_runtime()
    assert [r.name for r in runtime.refused()] == []
    by_name = {c.name: c for c in runtime.sources()}
    assert set(by_name) == {"impostor", "next-one", "victim"}
    impostor = by_name["impostor"]
    assert impostor.manifest is not None
    assert (impostor.manifest.tenants, impostor.manifest.secrets) == (("acme",), ())
    # its code did run, and what it added to its own findings stands: only the
    # manifest it rewrote was ignored
    assert "the impostor ran" in impostor.warnings
    for name, tenants in (("next-one", ("acme",)), ("victim", ("other",))):
        loaded = by_name[name]
        assert loaded.manifest is not None
        assert (loaded.manifest.version, loaded.manifest.tenants) == ("1.0.0", tenants)
        assert "the impostor ran" not in loaded.warnings  # checked in a fresh worker
        assert loaded.registration().manifest.tenants == tenants


# -- the protocol -----------------------------------------------------------------

FORGERIES = {
    # a result for another customization of the same tenant, while it runs
    "result-for-another": """
    os.write(_pipe(), _frame({"event": "result", "name": "bystander", "ok": True,
                              "ms": 1, "read": [], "value": {"ui.theme.mode": "light"}}))
""",
    # its own result, then the start and result of another tenant's customization
    "other-tenants-name": """
    fd = _pipe()
    os.write(fd, _frame({"event": "result", "name": "forger", "ok": True, "ms": 1,
                         "read": [], "value": None}))
    os.write(fd, _frame({"event": "start", "name": "theirs"}))
    os.write(fd, _frame({"event": "result", "name": "theirs", "ok": False, "ms": 1,
                         "read": [], "error": "forged"}))
""",
    # 20,000 forged failures for others
    "flood": """
    fd = _pipe()
    for i in range(20000):
        for name in ("bystander", "theirs"):
            os.write(fd, _frame({"event": "result", "name": name, "ok": False,
                                 "ms": 1, "read": [], "error": f"forged {i}"}))
""",
    # a frame announcing 100 MB
    "oversized": """
    os.write(_pipe(), struct.pack(">I", 100 * 1024 * 1024) + b"{" * 65536)
""",
    # bytes that are not JSON
    "garbage": """
    os.write(_pipe(), struct.pack(">I", 12) + b"\\xff\\xfe not json")
""",
    # valid JSON that is not an event, then reads it claims on keys it was not sent
    "not-an-event": """
    os.write(_pipe(), _frame([1, 2, 3]))
""",
    "reads-it-was-not-sent": """
    fd = _pipe()
    os.write(fd, _frame({"event": "result", "name": "forger", "ok": True, "ms": 1,
                         "read": ["no.such.key"] * 5000, "value": None}))
""",
}


def forger(body: str) -> str:
    return (
        PIPE
        + """
@hookimpl(tryfirst=True)
def tailor_resolve_settings(values):
"""
        + body
        + """
    return {"billing.invoice.due_days": 1}
"""
    )


BYSTANDER = """
@hookimpl
def tailor_resolve_settings(values):
    return {"ui.theme.mode": "dark"}
"""

THEIRS = """
@hookimpl
def tailor_resolve_settings(values):
    return {"billing.invoice.due_days": 44}
"""


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_a_customization_writing_on_its_workers_pipe_is_killed_and_charged(
    forgery, services, two_tenants, write_customization, make_runtime
):
    acme, other = two_tenants
    write_customization("forger", forger(FORGERIES[forgery]), tenants=(acme,))
    write_customization("bystander", BYSTANDER, tenants=(acme,))
    write_customization("theirs", THEIRS, tenants=(other,))
    runtime = make_runtime(spare_workers=0)
    attach(services, runtime)
    await publish_enable(services, runtime, acme, "forger", "bystander")
    await services.registry.set_enabled(ADMIN, other, "theirs", True)

    for attempt in range(2):
        spawned = runtime.pool.spawned
        mine = await services.settings.resolve(ADMIN, acme, keys=[KEY, THEME])
        by_key = {s.key: s for s in mine.settings}
        # the forger's answer is dropped, the bystander's real one served
        assert (by_key[KEY].value, by_key[KEY].source) == (30, "DEFAULT")
        assert (by_key[THEME].value, by_key[THEME].source) == ("dark", "CUSTOMIZATION:bystander")
        [failure] = mine.failures
        assert failure.customization == "forger", failure
        assert failure.hook == "tailor_resolve_settings"
        assert failure.message.startswith("broke the worker protocol: "), failure.message
        assert len(failure.message) < 300
        # its worker was killed; the bystander ran in a new one (which the
        # forger's next call then has, and loses)
        assert runtime.pool.spawned == spawned + (2 if attempt == 0 else 1)
        theirs = await services.settings.resolve(ADMIN, other, keys=[KEY])
        assert theirs.failures == []
        assert (theirs.settings[0].value, theirs.settings[0].source) == (44, "CUSTOMIZATION:theirs")

    await runtime.flush_health()
    seen = {(o.customization, o.tenant): o for o in await services.observations.list_all()}
    assert set(seen) == {("forger", acme), ("bystander", acme), ("theirs", other)}
    assert (seen["forger", acme].calls, seen["forger", acme].failures) == (2, 2)
    assert "broke the worker protocol" in (seen["forger", acme].last_error or "")
    for victim in (seen["bystander", acme], seen["theirs", other]):
        assert (victim.calls, victim.failures, victim.last_error) == (2, 0, None)
    health = {r.manifest.name: r.health for r in await services.registry.list_all(ADMIN)}
    assert health["forger"].failures == 2
    assert (health["bystander"].failures, health["theirs"].failures) == (0, 0)
    assert health["bystander"].last_error is None and health["theirs"].last_error is None


#: a thread of the customization writes on the pipe after its call has ended
LATE_WRITER = (
    PIPE
    + """
import _thread, time

def _later(fd):
    time.sleep(0.2)
    os.write(fd, _frame({"event": "result", "name": "late", "ok": True, "ms": 1,
                         "read": [], "value": {"billing.invoice.due_days": 2}}))

@hookimpl
def tailor_resolve_settings(values):
    _thread.start_new_thread(_later, (_pipe(),))
    return {"billing.invoice.due_days": 41}
"""
)


async def test_a_thread_started_with__thread_retires_its_worker(
    services, tenant, write_customization, make_runtime
):
    write_customization("late", LATE_WRITER)
    runtime = make_runtime(spare_workers=0)
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "late")
    for _ in range(3):
        result = await services.settings.resolve(ADMIN, tenant, keys=[KEY])
        assert result.failures == []
        assert result.settings[0].value == 41
    # counted by the server (/proc), not reported by the worker: a new process each time
    assert runtime.pool.spawned == 3


# -- least privilege: reads -----------------------------------------------------------

PEEK = """
@hookimpl
def tailor_resolve_settings(values):
    report = []
    for path in PATHS:
        try:
            with open(path) as f:
                report.append("read " + str(len(f.read())))
        except PermissionError as exc:
            report.append("refused")
    return {"billing.payment.methods": report}
"""


async def test_a_worker_reads_only_its_tenants_customizations(
    services, two_tenants, write_customization, make_runtime
):
    acme, other = two_tenants
    theirs = cached(write_customization("theirs", THEIRS, tenants=(other,)))
    own = cached(write_customization("sibling", PLAIN, tenants=(acme,)))
    # where the server materializes them: what the workers run
    paths = [str(own / "hooks.py"), str(theirs / "hooks.py"), str(theirs / "customization.toml")]
    write_customization("peek", f"PATHS = {paths!r}\n" + PEEK, tenants=(acme,))
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, acme, "peek", "sibling")
    await services.registry.set_enabled(ADMIN, other, "theirs", True)
    theirs_answer = await services.settings.resolve(ADMIN, other, keys=[KEY])
    assert theirs_answer.settings[0].value == 44  # theirs is loaded and running
    result = await services.settings.resolve(ADMIN, acme, keys=["billing.payment.methods"])
    assert result.failures == []
    report = result.settings[0].value
    assert report[0].startswith("read ")  # its own tenant's customization: readable
    assert report[1:] == ["refused", "refused"]  # another tenant's: not


async def test_a_worker_is_replaced_when_its_tenants_customizations_change(
    services, tenant, write_customization, make_runtime
):
    later = cached(write_customization("later", PLAIN, tenants=(tenant,)))
    write_customization("peek", f"PATHS = {[str(later / 'hooks.py')]!r}\n" + PEEK)
    runtime = make_runtime(spare_workers=0)
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "peek")
    before = await services.settings.resolve(ADMIN, tenant, keys=["billing.payment.methods"])
    assert before.settings[0].value == ["refused"]  # not enabled for this tenant
    await services.registry.set_enabled(ADMIN, tenant, "later", True)
    runtime.refresh_enabled()
    after = await services.settings.resolve(ADMIN, tenant, keys=["billing.payment.methods"])
    assert after.settings[0].value[0].startswith("read ")
    assert runtime.pool.spawned == 2


def cached(package: Path) -> Path:
    """Where a server materializes ``package`` once published (its cache)."""
    return archive.cache_root_default() / archive.tree_from_directory(package).sha256


# -- least privilege: secrets -----------------------------------------------------------

SECRET = "integrations.webhooks.signing_secret"
VALUE = "whsec-do-not-leak-0815"

#: what a customization can find of the secret: in its ``values``, and in the
#: bytes the server sent its worker (the call's arguments, in the worker's frames)
DUMP = """
@hookimpl
def tailor_resolve_settings(values):
    import sys
    frame, sent = sys._getframe(), []
    while frame is not None:
        raw = frame.f_locals.get("raw")
        if isinstance(raw, bytes):
            sent.append(raw)
        frame = frame.f_back
    return {"billing.payment.methods": [
        "has:" + str(SECRET in values),
        "value:" + str(values[SECRET] if SECRET in values else None),
        "sent:" + str(any(VALUE.encode() in raw for raw in sent)),
        "found:" + str(bool(sent)),
    ]}
"""

DECLARES = """
@hookimpl
def tailor_resolve_settings(values):
    return {"billing.invoice.due_days": 60 if values.get(SECRET) == VALUE else 1}

@hookimpl
def tailor_validate_setting(key, value):
    if key == SECRET and len(value) < 8:
        return "a signing secret has at least 8 characters"
"""

#: told of every write it may hear of: a secret's would be refused
NOSY = """
@hookimpl
def tailor_validate_setting(key, value):
    if key == SECRET:
        return "nosy saw the secret"
"""


def secrets_toml(name: str, tenants: tuple[str, ...], secrets: list[str]) -> str:
    listed = ", ".join(f'"{s}"' for s in secrets)
    tenant_list = ", ".join(f'"{t}"' for t in tenants)
    return (
        f'name = "{name}"\nversion = "1.0.0"\nrequires = ">=1.0"\n'
        f"tenants = [{tenant_list}]\nsecrets = [{listed}]\n"
    )


async def test_a_secret_reaches_only_the_customizations_declaring_it(
    services, two_tenants, write_customization, make_runtime
):
    acme, other = two_tenants
    prelude = f"SECRET = {SECRET!r}\nVALUE = {VALUE!r}\n"
    write_customization(
        "declares", prelude + DECLARES, toml=secrets_toml("declares", (acme,), [SECRET])
    )
    write_customization("dump", prelude + DUMP + NOSY, tenants=(acme, other))
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, acme, "declares", "dump")
    await services.registry.set_enabled(ADMIN, other, "dump", True)
    # writes of a secret: validated by who declares it, never shown to the others
    with pytest.raises(SettingValidationError, match="customization:declares"):
        await services.settings.set(ADMIN, acme, SECRET, "short")
    for tenant in (acme, other):
        change = await services.settings.set(ADMIN, tenant, SECRET, VALUE)
        assert change.failures == ()

    mine = await services.settings.resolve(ADMIN, acme, keys=[KEY, "billing.payment.methods"])
    assert mine.failures == []
    by_key = {s.key: s.value for s in mine.settings}
    assert by_key[KEY] == 60  # the declaring customization saw the value
    # the other one, in the same worker and batch, has no such key (the value
    # crossed the pipe, for the one declaring it)
    assert by_key["billing.payment.methods"] == [
        "has:False",
        "value:None",
        "sent:True",
        "found:True",
    ]

    theirs = await services.settings.resolve(ADMIN, other, keys=["billing.payment.methods"])
    assert theirs.failures == []
    # no customization of this tenant declares it: it never left the server
    assert theirs.settings[0].value == ["has:False", "value:None", "sent:False", "found:True"]


#: overwrites a secret it was never given
OVERWRITES = """
@hookimpl
def tailor_resolve_settings(values):
    return {SECRET: "attacker-chosen", "billing.invoice.due_days": 33}
"""


async def test_a_customization_cannot_overwrite_a_secret_it_does_not_declare(
    services, tenant, write_customization, make_runtime
):
    write_customization("overwrites", f"SECRET = {SECRET!r}\n" + OVERWRITES)
    runtime = make_runtime()
    attach(services, runtime)
    await publish_enable(services, runtime, tenant, "overwrites")
    await services.settings.set(ADMIN, tenant, SECRET, VALUE)
    result = await services.settings.resolve(ADMIN, tenant, keys=[KEY])
    [failure] = result.failures
    assert failure.customization == "overwrites"
    assert f"returned secret setting(s) {SECRET}" in failure.message
    # its other values still apply; the secret keeps the tenant's own value
    assert result.settings[0].value == 33
    secret = await services.settings.resolve(ADMIN, tenant, keys=[SECRET])
    assert secret.settings[0].source == "TENANT"  # not CUSTOMIZATION:overwrites
