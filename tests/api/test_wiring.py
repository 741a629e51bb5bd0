"""Services are built once, in one place (``Services.from_engine``): the server
(``create_app`` attaching its runtime) and the CLI (``run_with_services``, on the
code the database stores) wire the services they built, and build none again."""

from __future__ import annotations

import dataclasses
import typing
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from api.cli.main import app as cli
from api.http.app import AppOptions, create_app
from core.store.readiness_service import CodeSource
from core.store.services import Services
from tests.conftest import fresh_runtime
from tests.sample import ACME


def _service_classes() -> list[type]:
    """The class of every service ``Services`` holds (not the engine, sessions, keys)."""
    hints = typing.get_type_hints(Services)
    classes = [hints[f.name] for f in dataclasses.fields(Services)]
    return [
        c for c in classes if c.__module__.startswith("core.store.") and c.__name__ != "AsyncEngine"
    ]


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How many times each service class is constructed while the test runs."""
    counts: Counter[str] = Counter()
    for cls in _service_classes():
        original = cls.__init__

        def counting(self, *args, __original=original, __name=cls.__name__, **kwargs):
            counts[__name] += 1
            __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    yield counts


def test_the_counted_classes_are_the_services():
    names = {c.__name__ for c in _service_classes()}
    assert {"SettingsService", "ReadinessService", "RegistryRegistrations"} <= names
    assert {"FoldbackService", "RoadmapService", "ChangeRequestService"} <= names
    assert len(names) == len(dataclasses.fields(Services)) - 3  # engine, sessions, secrets


async def test_the_server_builds_each_service_once(built, database_url):
    runtime = fresh_runtime(ACME)
    services = Services.from_url(database_url)
    app = create_app(services, AppOptions(plugins=runtime), product=ACME)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tailor.test") as c:
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await runtime.close()
        await services.close()
    assert set(built) == {c.__name__ for c in _service_classes()}
    assert {name: n for name, n in built.items() if n != 1} == {}
    # the services given are the server's, wired in place
    assert services.settings.hooks is runtime
    assert services.registrations.code is CodeSource.STORED
    assert services.rehearsal.replayer is not None


def test_the_cli_builds_each_service_once_on_the_stored_code(
    built, database_url, monkeypatch, services
):
    """``roadmap list`` reads readiness as the servers see it (the stored code)."""
    seen: list[Services] = []
    original = Services.from_engine.__func__  # type: ignore[attr-defined]

    def spy(cls, *args, **kwargs):
        made = original(cls, *args, **kwargs)
        seen.append(made)
        return made

    monkeypatch.setattr(Services, "from_engine", classmethod(spy))
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    built.clear()  # the services fixture's own construction
    result = CliRunner().invoke(cli, ["roadmap", "list", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert [s.registrations.code for s in seen] == [CodeSource.STORED]
    assert set(built) == {c.__name__ for c in _service_classes()}
    assert {name: n for name, n in built.items() if n != 1} == {}
