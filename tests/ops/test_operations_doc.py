"""docs/operations.md's commands, run: the backup and restore lines (pg_dump,
pg_restore into a new database, `tailor db upgrade`: the same answers), and the
systemd unit deploy/tailor.service (`systemd-analyze verify` where installed, its
ExecStart run directly until the node is ready, stopped with its KillSignal)."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from api.http.app import AppOptions, create_app
from core.model.auth import Role
from core.store.services import Services
from plugins.runtime import RuntimeOptions
from tests.conftest import ADMIN, fresh_runtime
from tests.plugins.conftest import HEADER, manifest
from tests.sample import ACME
from tests.servers import clean_env, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent.parent
OPERATIONS = ROOT / "docs" / "operations.md"
UNIT = ROOT / "deploy" / "tailor.service"
BIN = Path(sys.executable).parent
THEME = '    return {"ui.theme.mode": "dark"}\n'
SETTINGS = """{ settings(tenant: "acme") { ... on Settings { release
  items { key value source revision } customizationErrors { message } } } }"""


def doc_block(marker: str) -> str:
    """The shell block that follows ``<!-- tested: marker -->`` in the doc."""
    doc = OPERATIONS.read_text(encoding="utf-8")
    found = re.search(rf"<!-- tested: {re.escape(marker)} -->\n```sh\n(.*?)```", doc, re.S)
    assert found, f"docs/operations.md has no tested block for {marker}"
    return found.group(1)


async def answers(url: str, token: str, cache: Path) -> dict:
    services = Services.from_url(url)
    runtime = fresh_runtime(ACME, RuntimeOptions(cache_dir=cache))
    app = create_app(services, AppOptions(plugins=runtime), product=ACME)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            r = await client.post(
                "/graphql", json={"query": SETTINGS}, headers={"Authorization": f"Bearer {token}"}
            )
        assert r.status_code == 200, r.text
        return r.json()
    finally:
        await runtime.close()
        await services.close()


async def test_backup_and_restore_as_documented_give_the_same_answers(
    services, database_url, is_postgres, tmp_path
):
    if not is_postgres:
        pytest.skip("backups with pg_dump: PostgreSQL")
    for tool in ("pg_dump", "pg_restore", "createdb"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (postgresql-client)")
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    await services.settings.set(ADMIN, "acme", "billing.invoice.due_days", 45)
    package = tmp_path / "src" / "theme"
    package.mkdir(parents=True)
    (package / "customization.toml").write_text(manifest("theme", ["acme"]))
    (package / "hooks.py").write_text(
        HEADER + "@hookimpl\ndef tailor_resolve_settings(values):\n" + THEME
    )
    source = fresh_runtime(
        ACME, RuntimeOptions(directories=[package.parent], path_env="", use_entry_points=False)
    )
    await services.registry.publish(ADMIN, source.sources()[0].registration())
    await services.registry.set_enabled(ADMIN, "acme", "theme", True)
    token, _ = await services.tokens.create(Role.ADMIN)
    before = await answers(database_url, token, tmp_path / "cache-a")
    items = {i["key"]: i for i in before["data"]["settings"]["items"]}
    assert items["billing.invoice.due_days"]["value"] == 45
    assert items["ui.theme.mode"]["source"] == "CUSTOMIZATION:theme"

    url = make_url(database_url)
    restored = f"tailor_restored_{uuid.uuid4().hex[:8]}"
    env = clean_env(
        PGHOST=url.host or "127.0.0.1",
        PGPORT=str(url.port or 5432),
        PGUSER=url.username or "postgres",
        DB=url.database or "",
        RESTORED=restored,
        TAILOR_SECRET_KEY=os.environ["TAILOR_SECRET_KEY"],
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    admin = create_async_engine(
        url.set(drivername="postgresql+asyncpg"), isolation_level="AUTOCOMMIT"
    )
    try:
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            doc_block("tests/ops/test_operations_doc.py"),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 300)
        assert process.returncode == 0, out.decode()
        assert "database is at head" in out.decode()
        copy = url.set(database=restored).render_as_string(hide_password=False)
        after = await answers(copy, token, tmp_path / "cache-b")
        assert after == before
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)'))
        await admin.dispose()


def unit_with_this_checkout(tmp_path: Path) -> tuple[Path, list[str]]:
    """deploy/tailor.service with its tailor the one of this virtualenv, and the
    ExecStart command line (as systemd splits it)."""
    unit = UNIT.read_text(encoding="utf-8")
    (line,) = re.findall(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    argv = shlex.split(line)
    assert argv[0] == "/opt/tailor/venv/bin/tailor" and argv[1] == "serve"
    argv[0] = str(BIN / "tailor")
    local = tmp_path / "tailor.service"
    local.write_text(unit.replace("/opt/tailor/venv/bin/tailor", argv[0]), encoding="utf-8")
    return local, argv


async def test_the_systemd_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit, _argv = unit_with_this_checkout(tmp_path)
    process = await asyncio.create_subprocess_exec(
        analyze,
        "verify",
        str(unit),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out.decode()


async def test_the_units_exec_start_serves_and_stops_cleanly(
    services, database_url, is_postgres, tmp_path
):
    if not is_postgres:
        pytest.skip("the unit runs --workers 4: PostgreSQL")
    unit = UNIT.read_text(encoding="utf-8")
    kill = re.search(r"^KillSignal=(\w+)$", unit, re.MULTILINE)
    assert kill
    _unit, argv = unit_with_this_checkout(tmp_path)
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    home = tmp_path / "var-lib-tailor"
    home.mkdir()
    # what /etc/tailor/tailor.env would hold
    env = clean_env(
        TAILOR_DATABASE_URL=database_url, TAILOR_SECRET_KEY=os.environ["TAILOR_SECRET_KEY"]
    )
    log = home / "journal"
    with log.open("w") as journal:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=home, env=env, stdout=journal, stderr=journal
        )
    from tests.servers import Node

    node = Node(f"http://127.0.0.1:{port}", port, process, log, log, home)
    try:
        await wait_until(node, "/readyz", limit=180)
    finally:
        status = await node.stop(getattr(signal, kill.group(1)), limit=60)
    assert status == 0, log.read_text()
