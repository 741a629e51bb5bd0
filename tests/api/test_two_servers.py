"""Two real `tailor serve` processes, each in its own directory, sharing nothing
but the PostgreSQL database: a consultant publishes with the CLI to the first
(`--url`, token in TAILOR_TOKEN); the second serves the new version, from its own
cache, without a restart."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from core.model.auth import Role
from plugins import archive
from tests.conftest import ADMIN
from tests.plugins.conftest import HEADER, manifest
from tests.servers import TAILOR, clean_env, tailor_serve

THEME = (
    HEADER
    + '@hookimpl\ndef tailor_resolve_settings(values):\n    return {"ui.theme.mode": "dark"}\n'
)
SETTINGS = """{ settings(tenant: "acme", keys: ["ui.theme.mode"]) {
  ... on Settings { items { value source } customizationErrors { message } } } }"""


@pytest.fixture
async def two_servers(services, database_url, is_postgres, tmp_path):
    if not is_postgres:
        pytest.skip("two server processes share one database on PostgreSQL only")
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    async with (
        tailor_serve(tmp_path / "a", database_url) as first,
        tailor_serve(tmp_path / "b", database_url) as second,
        httpx.AsyncClient() as client,
    ):
        yield client, [first, second]


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
