"""The CLI against a real `tailor serve` over HTTP (`--url` / TAILOR_URL, the token
from TAILOR_TOKEN or --token-file): a consultant publishing, listing versions,
pinning, yanking and listing from their own machine, and the refusals."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from core.model.auth import Role
from tests.conftest import ADMIN
from tests.plugins.conftest import HEADER, manifest
from tests.servers import tailor_serve

THEME = HEADER + (
    '@hookimpl\ndef tailor_resolve_settings(values):\n    return {"ui.theme.mode": "MODE"}\n'
)


@pytest.fixture
async def server(services, database_url, tmp_path):
    """A real server on the test database, and a consultant's token."""
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    consultant, _ = await services.tokens.create(Role.CONSULTANT, ["acme"], label="dana")
    async with tailor_serve(tmp_path / "server", database_url) as url:
        yield url, consultant


def write(root, dirname: str, name: str, version: str, mode: str, tenants=("acme",)):
    path = root / dirname
    path.mkdir(parents=True)
    (path / "customization.toml").write_text(manifest(name, list(tenants), version=version))
    (path / "hooks.py").write_text(THEME.replace("MODE", mode))
    return path


async def cli(*args: str, env: dict[str, str]):
    """The real CLI in this process (it talks to the server over HTTP)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_a_consultant_publishes_pins_and_yanks_from_their_machine(
    server, tmp_path, monkeypatch
):
    url, token = server
    work = tmp_path / "laptop"
    write(work, "theme", "theme", "1.0.0", "dark")
    write(work / "next", "theme", "theme", "1.1.0", "light")
    monkeypatch.chdir(work)
    env = {"TAILOR_URL": url, "TAILOR_TOKEN": token, "TAILOR_DATABASE_URL": "sqlite:///nowhere.db"}

    first = await cli("customization", "publish", "theme", "--enable", env=env)
    assert first.exit_code == 0, first.output
    assert "pinned: acme@1.0.0" in first.stdout
    second = await cli("customization", "publish", "next/theme", "--enable", env=env)
    assert second.exit_code == 0, second.output
    assert "pinned: acme@1.0.0" in second.stdout  # publishing moves nobody

    moved = await cli("customization", "pin", "theme", "1.1.0", "--tenant", "acme", env=env)
    assert moved.exit_code == 0, moved.output
    assert "acme: theme@1.1.0" in moved.stdout
    yanked = await cli("customization", "yank", "theme", "1.1.0", "--reason", "too bright", env=env)
    assert yanked.exit_code == 0, yanked.output
    assert "still running it: acme" in yanked.stdout
    back = await cli("customization", "pin", "theme", "1.0.0", "-t", "acme", env=env)
    assert back.exit_code == 0, back.output

    versions = await cli("customization", "versions", "theme", "--format", "json", env=env)
    assert versions.exit_code == 0, versions.output
    import json

    rows = {r["version"]: r for r in json.loads(versions.stdout)}
    assert rows["1.1.0"]["yanked"] == "too bright" and rows["1.1.0"]["pinned_for"] == []
    assert rows["1.0.0"]["pinned_for"] == ["acme"]
    listed = await cli("customization", "list", "--format", "json", env=env)
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["pins"], row["installed"]) == ("theme", {"acme": "1.0.0"}, True)

    # the same version with other content: refused with the reason, exit 2
    (work / "theme" / "hooks.py").write_text(THEME.replace("MODE", "system"))
    changed = await cli("customization", "publish", "theme", env=env)
    assert changed.exit_code == 2
    assert "theme 1.0.0 is already published with other content" in changed.stderr


async def test_refusals_are_clear_and_change_nothing(server, tmp_path, monkeypatch):
    url, token = server
    write(tmp_path, "shared", "shared", "1.0.0", "dark", tenants=("acme", "other"))
    monkeypatch.chdir(tmp_path)
    env = {"TAILOR_URL": url, "TAILOR_TOKEN": token}
    beyond = await cli("customization", "publish", "shared", env=env)
    assert beyond.exit_code == 2
    assert "PERMISSION_DENIED" in beyond.stderr and "other" not in beyond.stderr
    wrong = await cli("customization", "versions", "shared", env={**env, "TAILOR_TOKEN": "nope"})
    assert wrong.exit_code == 2
    assert "error:" in wrong.stderr
    no_token = await cli("customization", "list", env={"TAILOR_URL": url, "TAILOR_TOKEN": ""})
    assert no_token.exit_code == 2
    assert "TAILOR_TOKEN" in no_token.output
    (tmp_path / "token").write_text(token + "\n")
    from_file = await cli(
        "customization", "list", "--url", url, "--token-file", str(tmp_path / "token"), env={}
    )
    assert from_file.exit_code == 0, from_file.output
    flag = await cli("customization", "list", "--url", url, "--token", token, env={})
    assert flag.exit_code == 0
    assert "shows in 'ps'" in flag.stderr
    local_only = await cli("db", "upgrade", env={"TAILOR_URL": url})
    assert local_only.exit_code == 2
    assert "unset TAILOR_URL" in local_only.stderr
    unreachable = await cli(
        "customization", "list", env={"TAILOR_URL": "http://127.0.0.1:9", "TAILOR_TOKEN": token}
    )
    assert unreachable.exit_code == 2
    assert "cannot reach" in unreachable.stderr


async def test_run_a_hook_locally_on_the_values_a_server_holds(
    server, services, tmp_path, monkeypatch
):
    """`run --url`: the tenant's layered values come from the server (an override
    set there is seen), the code runs here, confined; nothing is stored."""
    url, token = server
    await services.settings.set(ADMIN, "acme", "ui.theme.mode", "system")
    path = write(tmp_path, "theme", "theme", "1.0.0", "dark")
    monkeypatch.chdir(tmp_path)
    env = {"TAILOR_URL": url, "TAILOR_TOKEN": token}
    ran = await cli(
        "customization",
        "run",
        "theme",
        "--hook",
        "tailor_resolve_settings",
        "--tenant",
        "acme",
        env=env,
    )
    assert ran.exit_code == 0, ran.output
    assert '"system" -> "dark"' in ran.stdout.replace("'", '"'), ran.stdout
    assert (await services.registry.list_all(ADMIN)) == []  # nothing published
    unknown = await cli(
        "customization",
        "run",
        str(path),
        "--hook",
        "tailor_resolve_settings",
        "--tenant",
        "other",
        env=env,
    )
    assert unknown.exit_code == 2


async def test_check_against_a_release_only_the_server_knows(server, services, tmp_path):
    """A planned release imported on the server (not in this machine's product, no
    database here): `check --release 3.0 --url` judges the package on the server's
    3.0, which removes the per-setting hook; a typo in a key is found against the
    server's catalog too."""
    from core.store.bootstrap import register_planned_releases
    from tests.sample import ACME

    await register_planned_releases(services, ACME)
    url, token = server
    path = tmp_path / "legacy"
    path.mkdir()
    (path / "customization.toml").write_text(manifest("legacy", ["acme"]))
    (path / "hooks.py").write_text(
        HEADER
        + "@hookimpl\ndef tailor_resolve_setting(key, value):\n"
        + '    return value if key != "ui.theme.mdoe" else "dark"\n'
    )
    env = {"TAILOR_TOKEN": token, "TAILOR_DATABASE_URL": "sqlite:///nowhere.db"}
    checked = await cli(
        "customization", "check", str(path), "--release", "3.0", "--url", url, env=env
    )
    assert checked.exit_code == 2, checked.output  # the typo is a problem
    assert "unknown setting key 'ui.theme.mdoe'" in checked.stdout
    assert "did you mean 'ui.theme.mode'" in checked.stdout
    assert "HOOK_REMOVED" in checked.stdout  # what the server's 3.0 says
    missing = await cli(
        "customization", "check", str(path), "--release", "9.9", "--url", url, env=env
    )
    assert missing.exit_code == 2
    assert "release '9.9' is not registered on" in missing.stderr


async def test_check_uses_the_servers_observations_where_only_they_can_tell(
    server, services, tmp_path
):
    """A hook that picks its keys at run time is clean statically; `check --url`
    reads the fleet's observations of it (in the token's scope) and blocks on the
    key 3.0 removes that the fleet saw it return, as fleet readiness does."""
    from datetime import UTC, datetime

    from core.model.customizations import ObservationDelta
    from core.store.bootstrap import register_planned_releases
    from plugins.evidence import read_package
    from tests.corpus.score import CORPUS
    from tests.sample import ACME

    await register_planned_releases(services, ACME)
    url, token = server
    path = tmp_path / "urls"
    path.mkdir()
    (path / "customization.toml").write_text(manifest("urls", ["acme"]))
    (path / "hooks.py").write_text((CORPUS / "c14_observed" / "hooks.py").read_text())
    env = {"TAILOR_TOKEN": token, "TAILOR_DATABASE_URL": "sqlite:///nowhere.db"}
    args = ("customization", "check", str(path), "--release", "3.0", "--url", url)

    unknown = await cli(*args, env=env)  # not published: the fleet has seen nothing
    assert unknown.exit_code == 0, unknown.output
    assert "0 observation(s) of urls in the fleet" in unknown.stdout

    registration = read_package(path).registration
    assert registration is not None
    await services.registry.publish_many(ADMIN, [registration])
    seen = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    await services.observations.record(
        [
            ObservationDelta(
                "urls",
                "acme",
                "tailor_resolve_settings",
                calls=3,
                first_seen=seen,
                last_seen=seen,
                keys={("security.sso.metadata_url", "returned"): 3, ("*", "scanned"): 3},
            )
        ]
    )
    checked = await cli(*args, env=env)
    assert checked.exit_code == 1, checked.output
    assert "1 observation(s) of urls in the fleet (3 call(s))" in checked.stdout
    assert "blocker: SETTING_REMOVED" in checked.stdout
    assert "security.sso.metadata_url" in checked.stdout


async def test_publish_enable_over_http_says_which_change_requests_it_made(
    server, services, tmp_path
):
    url, _consultant = server
    await services.changes.protect(ADMIN, "other", "production", True)
    admin, _ = await services.tokens.create(Role.ADMIN, [], label="ops")
    path = write(tmp_path / "laptop", "theme", "theme", "1.0.0", "dark", ("acme", "other"))
    env = {"TAILOR_URL": url, "TAILOR_TOKEN": admin, "TAILOR_DATABASE_URL": "sqlite:///nowhere.db"}
    published = await cli("customization", "publish", str(path), "--enable", env=env)
    assert published.exit_code == 0, published.output
    assert "pinned: acme@1.0.0" in published.stdout
    (request,) = [r for r in await services.changes.list(ADMIN, "other") if r.customization]
    assert (
        f"change request {request.id} to enable it for other (a protected environment)"
        in published.stdout
    ), published.stdout
