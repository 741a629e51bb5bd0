"""Two real `tailor serve` processes, each in its own directory, sharing nothing
but the PostgreSQL database: a consultant publishes with the CLI to the first
(`--url`, token in TAILOR_TOKEN); the second serves the new version, from its own
cache, without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.model.auth import Role
from plugins import archive
from tests.conftest import ADMIN
from tests.plugins.conftest import HEADER, manifest

THEME = (
    HEADER
    + '@hookimpl\ndef tailor_resolve_settings(values):\n    return {"ui.theme.mode": "dark"}\n'
)
SETTINGS = """{ settings(tenant: "acme", keys: ["ui.theme.mode"]) {
  ... on Settings { items { value source } customizationErrors { message } } } }"""
TAILOR = (sys.executable, "-m", "api.cli.main")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This machine's environment without any TAILOR_ setting, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}
    return {**env, **values}


async def wait_healthy(client: httpx.AsyncClient, url: str, log: Path, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if (await client.get(f"{url}/healthz", timeout=1.0)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    output = await asyncio.to_thread(log.read_text)
    raise AssertionError(f"{url} did not start within {limit}s: {output}")


@pytest.fixture
async def two_servers(services, database_url, is_postgres, tmp_path):
    if not is_postgres:
        pytest.skip("two server processes share one database on PostgreSQL only")
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    env = clean_env(
        TAILOR_DATABASE_URL=database_url, TAILOR_SECRET_KEY=os.environ["TAILOR_SECRET_KEY"]
    )
    started = []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        port = free_port()
        log = home / "serve.log"
        with log.open("w") as out:
            process = await asyncio.create_subprocess_exec(
                *TAILOR,
                *("serve", "--host", "127.0.0.1", "--port", str(port)),
                cwd=home,
                env=env,
                stdout=out,
                stderr=out,
            )
        started.append((f"http://127.0.0.1:{port}", process, log))
    try:
        async with httpx.AsyncClient() as client:
            for url, _process, log in started:
                await wait_healthy(client, url, log, 60.0)
            yield client, [url for url, _, _ in started]
    finally:
        for _url, process, _log in started:
            with contextlib.suppress(ProcessLookupError):  # it may have ended already
                process.terminate()
        for _url, process, _log in started:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def test_a_version_published_to_one_server_is_served_by_the_other(
    two_servers, services, tmp_path
):
    client, (first, second) = two_servers
    consultant, _ = await services.tokens.create(Role.CONSULTANT, ["acme"], label="dana")
    app, _ = await services.tokens.create(Role.APP, ["acme"], label="front-end")
    package = tmp_path / "work" / "theme"
    package.mkdir(parents=True)
    (package / "customization.toml").write_text(manifest("theme", ["acme"]))
    (package / "hooks.py").write_text(THEME)

    # the consultant's machine: no database, a token in the environment, a
    # relative path as anyone types it
    publish = await asyncio.create_subprocess_exec(
        *TAILOR,
        *("customization", "publish", "theme", "--enable", "--url", first),
        cwd=package.parent,
        env=clean_env(TAILOR_TOKEN=consultant),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(publish.communicate(), 120)
    assert publish.returncode == 0, (out + err).decode()
    assert "pinned: acme@1.0.0" in out.decode()

    # the second server, which never saw the package, serves it
    deadline = time.monotonic() + 30
    items = None
    while time.monotonic() < deadline:
        response = await client.post(
            f"{second}/graphql",
            json={"query": SETTINGS},
            headers={"Authorization": f"Bearer {app}"},
            timeout=10,
        )
        items = response.json()["data"]["settings"]["items"]
        if items[0]["source"] != "DEFAULT":
            break
        await asyncio.sleep(0.2)
    assert items == [{"value": "dark", "source": "CUSTOMIZATION:theme"}]
    sha = archive.tree_from_directory(package).sha256
    assert archive.verify(tmp_path / "b" / ".tailor-cache" / "customizations" / sha, sha)
