"""Two `tailor serve --workers 2` nodes, each in its own directory on its own
port, sharing nothing but PostgreSQL, behind Debian's nginx running the shipped
deploy/nginx.conf (issue 25): the same answers, the same published
customizations, the same console sessions, a change through one read through the
other at once; and a rolling restart under load from 8 clients loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import re

import httpx
import pytest

from core.model.auth import Role
from plugins import archive
from tests.conftest import ADMIN
from tests.ops.cluster import (
    LOAD_ENV,
    REQUIRE_NGINX,
    SETTINGS,
    Load,
    nginx,
    nginx_missing,
    rolling_restart,
    steady_load,
)
from tests.plugins.conftest import HEADER, manifest
from tests.servers import start_node

WORKERS = ("--workers", "2")
DUE = "billing.invoice.due_days"
PUBLISH = """mutation($archive: Upload!) { publishCustomization(archive: $archive, enable: true) {
  __typename ... on Customization { name } } }"""
SET = """mutation($v: JSON!) { setSetting(input: {tenant: "acme",
  key: "billing.invoice.due_days", value: $v}) { __typename ... on Error { message } } }"""


@pytest.fixture
async def cluster(services, database_url, is_postgres, tmp_path):
    """(nodes, proxy, admin token): two nodes behind nginx, tenant acme."""
    if not is_postgres:
        pytest.skip("nodes share one database on PostgreSQL only")
    missing = nginx_missing()
    if missing:
        if os.environ.get(REQUIRE_NGINX) == "1":
            pytest.fail(f"{REQUIRE_NGINX}=1 but {missing}")
        pytest.skip(missing)
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    admin, _ = await services.tokens.create(Role.ADMIN, label="operator")
    a, b = await asyncio.gather(
        start_node(
            tmp_path / "a", database_url, *WORKERS, probe="/readyz", limit=120, env=LOAD_ENV
        ),
        start_node(
            tmp_path / "b", database_url, *WORKERS, probe="/readyz", limit=120, env=LOAD_ENV
        ),
    )
    nodes = [a, b]
    try:
        async with nginx([a.port, b.port], tmp_path / "nginx") as proxy:
            yield nodes, proxy, admin
    finally:
        for node in nodes:
            await node.stop(limit=60)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def due_days(client: httpx.AsyncClient, url: str, token: str) -> dict:
    response = await client.post(f"{url}/graphql", json=SETTINGS, headers=bearer(token))
    assert response.status_code == 200, response.text
    (item,) = response.json()["data"]["settings"]["items"]
    return item


async def test_two_nodes_behind_nginx_serve_as_one(cluster, tmp_path):
    (a, b), proxy, admin = cluster
    async with httpx.AsyncClient(timeout=30) as client:
        # the same answers, through either node and through the proxy
        first = await due_days(client, a.url, admin)
        assert (
            first
            == await due_days(client, b.url, admin)
            == {
                "key": DUE,
                "value": 30,
                "source": "DEFAULT",
            }
        )
        for _ in range(4):
            assert await due_days(client, proxy.url, admin) == first

        # a change through one is read through the other at once
        for value in (41, 42, 43):
            r = await client.post(
                f"{a.url}/graphql",
                json={"query": SET, "variables": {"v": value}},
                headers=bearer(admin),
            )
            assert r.json()["data"]["setSetting"]["__typename"] == "SettingChanged", r.text
            assert (await due_days(client, b.url, admin))["value"] == value

        # a customization published through one node is run by the other
        package = tmp_path / "due77"
        package.mkdir()
        (package / "customization.toml").write_text(manifest("due-77", ["acme"]))
        (package / "hooks.py").write_text(
            HEADER + "@hookimpl\ndef tailor_resolve_settings(values):\n"
            f'    return {{"{DUE}": 77}}\n'
        )
        data = archive.build_zip(archive.tree_from_directory(package))
        r = await client.post(
            f"{a.url}/graphql",
            data={
                "operations": json.dumps({"query": PUBLISH, "variables": {"archive": None}}),
                "map": '{"0": ["variables.archive"]}',
            },
            files={"0": ("package.zip", data, "application/zip")},
            headers=bearer(admin),
        )
        assert r.json()["data"]["publishCustomization"]["__typename"] == "Customization", r.text
        assert await due_days(client, b.url, admin) == {
            "key": DUE,
            "value": 77,
            "source": "CUSTOMIZATION:due-77",
        }
        sha = archive.tree_from_directory(package).sha256
        assert (b.home / ".tailor-cache" / "customizations" / sha).is_dir()

        # a console session signed in through one node is good on the other
        async with httpx.AsyncClient(timeout=30) as browser:
            page = await browser.get(f"{a.url}/console/sign-in")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf, page.text
            signed = await browser.post(
                f"{a.url}/console/sign-in", data={"csrf": csrf.group(1), "token": admin}
            )
            assert signed.status_code == 303, signed.text
            session = dict(signed.cookies.items())
        assert session
        async with httpx.AsyncClient(timeout=30, cookies=session) as browser:
            fleet = await browser.get(f"{b.url}/console/fleet")
            assert fleet.status_code == 200 and "acme" in fleet.text.lower()
            # and through the proxy (whichever node answers)
            for _ in range(4):
                assert (await browser.get(f"{proxy.url}/console/fleet")).status_code == 200
        async with httpx.AsyncClient(timeout=30) as stranger:
            signed_out = await stranger.get(f"{b.url}/console/fleet")
            assert signed_out.status_code == 303  # the session, not luck, let us in

        # the proxy's request id is the node's
        r = await client.post(f"{proxy.url}/graphql", json=SETTINGS, headers=bearer(admin))
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


async def test_a_rolling_restart_under_load_loses_no_request(cluster, database_url):
    nodes, proxy, admin = cluster
    load = Load()
    stop = asyncio.Event()
    clients = asyncio.create_task(steady_load(proxy.url, admin, 8, stop, load))
    try:
        for _ in range(300):  # the load is steady before the first node stops
            if load.sent >= 40:
                break
            await asyncio.sleep(0.1)
        before = load.sent
        await rolling_restart(nodes, database_url, *WORKERS)
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await clients
    assert before >= 40, load
    assert load.sent > before + 100, load
    assert load.failed == 0, load.failures[:10]
    for node in nodes:
        assert node.process.returncode is None  # the restarted nodes serve
