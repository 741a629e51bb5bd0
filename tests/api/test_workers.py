"""Scale-out: stateless workers on one PostgreSQL database. A write committed
through one worker is read through another at once (the other's cached
enablement map is invalidated by LISTEN/NOTIFY), through the ASGI factory and
through ``tailor serve --workers 2``. On SQLite, more than one worker is refused."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from api.http.app import AppOptions, create_app
from api.http.asgi import create_app_from_env
from core.model.auth import Role
from core.model.errors import InvalidInputError
from core.store.services import Services
from plugins.runtime import PluginRuntime, RuntimeOptions
from tests.cli.test_cli import TAILOR, _free_port
from tests.conftest import ADMIN
from tests.sample import ACME_CATALOG

NAME = "due-days-77"
TOML = f"""name = "{NAME}"
version = "1.0.0"
tenants = ["acme"]
requires = ">=1.0"
"""
HOOKS = """import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(values):
    return {"billing.invoice.due_days": 77}
"""
QUERY = {
    "query": '{ settings(tenant: "acme", keys: ["billing.invoice.due_days"]) '
    "{ ... on Settings { items { value source } } } }"
}


def write_customization(root: Path) -> Path:
    package = root / "workers_customizations" / "due_days_77"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "customization.toml").write_text(TOML)
    (package / "hooks.py").write_text(HOOKS)
    return package.parent


def runtime_for(directory: Path) -> PluginRuntime:
    return PluginRuntime.load(
        RuntimeOptions(directories=[directory], path_env="", use_entry_points=False),
        ACME_CATALOG,
    )


async def due_days(client: httpx.AsyncClient, token: str) -> tuple[int, str]:
    r = await client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"})
    (item,) = r.json()["data"]["settings"]["items"]
    return item["value"], item["source"]


async def toggle(client: httpx.AsyncClient, token: str, enabled: bool) -> None:
    r = await client.post(
        "/graphql",
        json={
            "query": 'mutation($e: Boolean!) { setCustomizationEnabled(tenant: "acme", '
            f'name: "{NAME}", enabled: $e) {{ __typename }} }}',
            "variables": {"e": enabled},
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.json()["data"]["setCustomizationEnabled"]["__typename"] == "Customization", r.text


@contextlib.asynccontextmanager
async def worker(database_url: str, directory: Path):
    """One worker: its own engine, plugin runtime and caches, running its lifespan
    (which listens for the other workers' changes)."""
    app = create_app(Services.from_url(database_url), AppOptions(plugins=runtime_for(directory)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
            yield client


async def test_a_write_through_one_worker_is_read_through_the_other_at_once(
    services, tenant, database_url, is_postgres, tmp_path
):
    if not is_postgres:
        pytest.skip("several workers need PostgreSQL")
    directory = write_customization(tmp_path)
    loaded = runtime_for(directory).sources()[0]
    await services.registry.publish(ADMIN, loaded.registration())
    await services.registry.set_enabled(ADMIN, tenant, NAME, True)
    admin, _ = await services.tokens.create(Role.ADMIN)
    async with worker(database_url, directory) as a, worker(database_url, directory) as b:
        assert await due_days(b, admin) == (77, f"CUSTOMIZATION:{NAME}")  # b caches enablement
        assert await due_days(a, admin) == (77, f"CUSTOMIZATION:{NAME}")
        for enabled in (False, True, False):
            await toggle(a, admin, enabled)
            expected = (77, f"CUSTOMIZATION:{NAME}") if enabled else (30, "DEFAULT")
            assert await due_days(b, admin) == expected  # at once, not after a TTL
            assert await due_days(a, admin) == expected
        await toggle(b, admin, True)
        assert await due_days(a, admin) == (77, f"CUSTOMIZATION:{NAME}")


@pytest.fixture
def tailor_logger():
    """The factory configures Tailor's JSON request log: put the logger back."""
    logger = logging.getLogger("tailor")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


async def test_the_asgi_factory_reads_its_configuration_from_the_environment(
    services, tenant, database_url, monkeypatch, tailor_logger
):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    monkeypatch.setenv("TAILOR_PRODUCT", "acme_erp")
    monkeypatch.setenv("TAILOR_INTROSPECTION", "off")
    monkeypatch.setenv("TAILOR_WORKERS", "1")
    app = create_app_from_env()
    token, _ = await services.tokens.create(Role.APP, [tenant])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:
            assert await due_days(client, token) == (30, "DEFAULT")
            r = await client.post(
                "/graphql",
                json={"query": "{ __schema { queryType { name } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert "introspection" in r.text.lower()  # turned off by the environment
    monkeypatch.setenv("TAILOR_INTROSPECTION", "perhaps")
    with pytest.raises(InvalidInputError, match="TAILOR_INTROSPECTION"):
        create_app_from_env()


async def test_the_factory_refuses_several_workers_on_sqlite(monkeypatch, tmp_path):
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("TAILOR_WORKERS", "3")
    with pytest.raises(InvalidInputError, match="--workers 3 needs PostgreSQL"):
        create_app_from_env()


def start_workers(
    args: list[str], env: dict[str, str], cwd: Path, workers: int = 2
) -> tuple[subprocess.Popen, str]:
    """Start ``tailor serve ARGS``; return once every worker has started."""
    proc = subprocess.Popen(
        [TAILOR, "serve", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if sum("Application startup complete" in x for x in lines) >= workers:
            break
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    return proc, "".join(lines)


async def test_tailor_serve_with_two_workers(services, tenant, database_url, is_postgres, tmp_path):
    """The real command: two worker processes behind one port; every read after a
    write, whichever worker answers it, sees the write."""
    if not is_postgres:
        pytest.skip("several workers need PostgreSQL")
    directory = write_customization(tmp_path)
    loaded = runtime_for(directory).sources()[0]
    await services.registry.publish(ADMIN, loaded.registration())
    await services.registry.set_enabled(ADMIN, tenant, NAME, True)
    admin, _ = await services.tokens.create(Role.ADMIN)
    port = _free_port()
    env = {
        **os.environ,
        "TAILOR_DATABASE_URL": database_url,
        "TAILOR_CUSTOMIZATIONS_PATH": str(directory),
        "TAILOR_PRODUCT": "acme_erp",
    }
    proc, output = start_workers(["--workers", "2", "--port", str(port)], env, tmp_path)
    try:
        pids = set(re.findall(r"Started server process \[(\d+)\]", output))
        assert len(pids) == 2, output
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert await due_days(client, admin) == (77, f"CUSTOMIZATION:{NAME}")
            for enabled in (False, True, False, True):
                await toggle(client, admin, enabled)
                expected = (77, f"CUSTOMIZATION:{NAME}") if enabled else (30, "DEFAULT")
                # new connections: the kernel spreads them over both workers
                for _ in range(6):
                    async with httpx.AsyncClient(
                        base_url=f"http://127.0.0.1:{port}", timeout=10
                    ) as fresh:
                        assert await due_days(fresh, admin) == expected
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
