"""``os.stat`` is no oracle for the server's files: a customization asking about a
path outside what its worker may read learns nothing (issue 21).

Landlock has no right for ``stat`` and seccomp cannot see paths, so a worker
either sees a private mount namespace holding only its roots (where the kernel
allows a user namespace) or has the stat guard; start-up names which one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.conftest import ADMIN
from tests.plugins.test_invoke_extension import INVOKE

NEIGHBOUR = """
@hookimpl
def acme_invoice_footer(invoice):
    return "the other tenant's footer"
"""

SPY = """
import os
import pathlib

def attempt(fn):
    try:
        return f"GOT {fn()!r}"[:300]
    except BaseException as exc:
        return f"refused ({type(exc).__name__})"

@hookimpl
def acme_invoice_footer(invoice):
    probe = invoice["probe"]
    here = os.path.dirname(os.path.abspath(__file__))
    return {
        "shadow": attempt(lambda: os.stat("/etc/shadow").st_size),
        "shadow-exists": attempt(lambda: os.path.exists("/etc/shadow") or None),
        "database": attempt(lambda: os.stat(probe["database"]).st_size),
        "server-file": attempt(lambda: os.lstat(probe["server_file"]).st_mode),
        "server-file-pathlib": attempt(lambda: pathlib.Path(probe["server_file"]).exists() or None),
        "neighbour": attempt(lambda: os.path.exists(probe["neighbour"]) or None),
        "neighbour-isdir": attempt(lambda: os.path.isdir(probe["neighbour"]) or None),
        "root": attempt(lambda: os.listdir("/")),
        "root-scandir": attempt(lambda: [e.name for e in os.scandir("/etc")]),
        "own": attempt(lambda: sorted(os.listdir(here))),
        "own-stat": attempt(lambda: os.stat(os.path.join(here, "hooks.py")).st_size > 0),
    }
"""


async def test_a_customization_cannot_stat_what_it_may_not_read(
    services, plugin_api, write_customization, two_tenants, database_url, tmp_path
):
    acme, other = two_tenants
    write_customization("spy", SPY, tenants=(acme,))
    write_customization("neighbour", NEIGHBOUR, tenants=(other,))
    server_file = tmp_path / "server-secret.txt"
    server_file.write_text("the server's")
    database = make_url(database_url).database or ""
    if not database.startswith("/"):  # PostgreSQL: a file of the server's instead
        database = str(server_file)
    api, runtime = await plugin_api()
    for loaded in runtime.sources():
        await services.registry.publish(ADMIN, loaded.registration())
    await services.registry.set_enabled(ADMIN, acme, "spy", True)
    await services.registry.set_enabled(ADMIN, other, "neighbour", True)
    # the other tenant runs first: its package is materialized in the cache
    theirs = await api.gql(INVOKE, {"t": other, "h": "acme_invoice_footer", "a": {"invoice": {}}})
    assert theirs["data"]["invokeExtension"]["results"][0]["customization"] == "neighbour"
    (neighbour,) = [c for c in runtime.installed() if c.name == "neighbour"]
    assert neighbour.source.path.is_dir()
    probe = {"database": database, "server_file": str(server_file)}
    probe["neighbour"] = str(neighbour.source.path)
    body = await api.gql(
        INVOKE, {"t": acme, "h": "acme_invoice_footer", "a": {"invoice": {"probe": probe}}}
    )
    call = body["data"]["invokeExtension"]
    assert call["failures"] == [], call
    report = call["results"][0]["result"]
    for what in ("shadow", "database", "server-file", "root", "root-scandir"):
        assert report[what].startswith("refused"), (what, report[what])
    for what in ("shadow-exists", "neighbour", "neighbour-isdir"):
        assert report[what] == "GOT None", (what, report[what])
    # pathlib's exists() lets a PermissionError through (the stat guard's answer)
    pathlib_answer = report["server-file-pathlib"]
    assert pathlib_answer == "GOT None" or pathlib_answer.startswith("refused"), pathlib_answer
    # its own package still works
    assert "'hooks.py'" in report["own"] and "'customization.toml'" in report["own"], report
    assert report["own-stat"] == "GOT True"
    # start-up says which applied: one of the two, never neither
    confinement = runtime.confinement
    assert ("mount namespace" in confinement) != ("stat guard" in confinement), confinement


GUARDED = """
import os, pathlib, sys
from plugins.runtime import sandbox

root = sys.argv[1]
confinement = sandbox.Confinement([*sandbox.default_roots(), root])
confinement.active = True
sys.addaudithook(confinement)
sandbox.guard_stat(confinement)

def attempt(fn):
    try:
        return f"GOT {fn()!r}"
    except BaseException as exc:
        return f"refused ({type(exc).__name__}: {exc})"

import json  # the import system still works: it stats through the guard
print(json.dumps({
    "shadow": attempt(lambda: os.stat("/etc/shadow").st_size),
    "shadow-lstat": attempt(lambda: os.lstat("/etc/shadow").st_size),
    "shadow-access": attempt(lambda: os.access("/etc/shadow", os.R_OK)),
    "shadow-keyword": attempt(lambda: os.stat(path="/etc/shadow").st_size),
    "shadow-exists": attempt(lambda: os.path.exists("/etc/shadow")),
    "pathlib": attempt(lambda: pathlib.Path("/etc/passwd").exists()),
    "escape": attempt(lambda: os.stat(os.path.join(root, "link"))),
    "root": attempt(lambda: os.listdir("/")),
    "own": attempt(lambda: os.stat(os.path.join(root, "mine.txt")).st_size),
    "own-exists": attempt(lambda: os.path.exists(os.path.join(root, "mine.txt"))),
}))
"""


def test_the_stat_guard_refuses_paths_outside_the_roots(tmp_path: Path) -> None:
    """Where no mount namespace can be made: the guard, in a real interpreter."""
    (tmp_path / "mine.txt").write_text("mine")
    (tmp_path / "link").symlink_to("/etc/shadow")  # a link out of the roots
    done = subprocess.run(
        [sys.executable, "-I", "-c", textwrap.dedent(GUARDED), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for what in ("shadow", "shadow-lstat", "shadow-access", "shadow-keyword", "escape"):
        assert report[what].startswith("refused (PermissionError"), (what, report[what])
        assert "outside their roots" in report[what], report[what]
    assert report["shadow-exists"] == "GOT False", report
    # pathlib's exists() lets the PermissionError through: refused, not answered
    assert report["pathlib"].startswith("refused (PermissionError"), report
    assert report["root"] == "refused (PermissionError: customizations may not list /)"
    assert report["own"] == "GOT 4" and report["own-exists"] == "GOT True", report
