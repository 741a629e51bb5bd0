"""Real customization packages written to temporary directories, and a plugin
runtime (and app) loading them."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from api.http.app import AppOptions, create_app
from core.model.auth import Role
from core.store.services import Services
from plugins.runtime import PluginRuntime, RuntimeOptions
from tests.conftest import ADMIN, Api
from tests.sample import ACME_CATALOG

HEADER = 'import pluggy\n\nhookimpl = pluggy.HookimplMarker("tailor")\n\n'


def manifest(name: str, tenants: list[str], **fields: str) -> str:
    data = {"version": "1.0.0", "requires": ">=1.0", "capability": None, **fields}
    lines = [f'name = "{name}"', f"tenants = {tenants!r}".replace("'", '"')]
    lines += [f'{k} = "{v}"' for k, v in data.items() if v is not None]
    return "\n".join(lines) + "\n"


WriteCustomization = Callable[..., Path]


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    root = tmp_path / "customizations"
    root.mkdir()
    return root


@pytest.fixture
def write_customization(plugin_dir: Path) -> WriteCustomization:
    """write_customization("dir", code, name=..., tenants=[...], toml=None, **fields)"""

    def write(
        dirname: str,
        code: str,
        *,
        name: str | None = None,
        tenants: tuple[str, ...] = ("acme",),
        toml: str | None = None,
        header: bool = True,
        **fields: str,
    ) -> Path:
        path = plugin_dir / dirname
        path.mkdir()
        (path / "__init__.py").write_text("")
        text = (
            toml
            if toml is not None
            else manifest(name or dirname.replace("_", "-"), list(tenants), **fields)
        )
        (path / "customization.toml").write_text(text)
        (path / "hooks.py").write_text((HEADER if header else "") + textwrap.dedent(code))
        return path

    return write


def load_runtime(plugin_dir: Path, **options: object) -> PluginRuntime:
    defaults: dict[str, object] = {
        "directories": [plugin_dir],
        "path_env": "",
        "use_entry_points": False,
        "health_flush_seconds": 0,
        "hook_timeout": 2.0,
    }
    return PluginRuntime.load(RuntimeOptions(**{**defaults, **options}), ACME_CATALOG)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def make_runtime(plugin_dir: Path) -> AsyncIterator[Callable[..., PluginRuntime]]:
    made: list[PluginRuntime] = []

    def make(**options: object) -> PluginRuntime:
        runtime = load_runtime(plugin_dir, **options)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.close()


async def publish_enable(services: Services, runtime: PluginRuntime, tenant: str, *names: str):
    """Publish every installed customization and enable ``names`` for ``tenant``."""
    for loaded in runtime.sources():
        await services.registry.publish(ADMIN, loaded.registration())
    for name in names:
        await services.registry.set_enabled(ADMIN, tenant, name, True)


@pytest_asyncio.fixture
async def two_tenants(services: Services, tenant: str) -> tuple[str, str]:
    await services.tenants.create(ADMIN, "other", "Other Inc", "2.0")
    return tenant, "other"


@pytest_asyncio.fixture
async def plugin_api(
    services: Services, two_tenants: tuple[str, str], plugin_dir: Path
) -> AsyncIterator[Callable[[], object]]:
    """Build the real app over httpx with a runtime loading ``plugin_dir`` (call
    the fixture after writing the customizations)."""
    clients: list[httpx.AsyncClient] = []
    runtimes: list[PluginRuntime] = []

    async def build(**options: object) -> tuple[Api, PluginRuntime]:
        """``options``: the runtime's."""
        runtime = load_runtime(plugin_dir, **options)
        tokens = {}
        acme, _other = two_tenants
        for role, scope in (
            (Role.ADMIN, ()),
            (Role.RELEASE_MANAGER, ()),
            (Role.CONSULTANT, (acme,)),
            (Role.APP, (acme,)),
        ):
            tokens[role.value], _ = await services.tokens.create(role, scope, label=f"{role}")
        runtimes.append(runtime)
        app = create_app(services, AppOptions(plugins=runtime))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://tailor.test"
        )
        clients.append(client)
        return Api(client, tokens), runtime

    yield build
    for client in clients:
        await client.aclose()
    for runtime in runtimes:
        await runtime.close()
