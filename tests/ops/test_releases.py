"""Tailor's own releases (RELEASES.toml; docs/operations.md, "Upgrading Tailor
itself"): the record tells the truth about this tree, `tailor --version` prints it,
and a node of the previous release (its code taken from git at the recorded
commit, run with this venv) does on this release's schema what the record says:
on PostgreSQL, when the record lists it as compatible, it is ready and answers as
this release does; on SQLite, or when it is not listed, it refuses to start with
the documented reason."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.version import Version
from typer.testing import CliRunner

from api.cli.main import app
from core.model.auth import Role
from core.model.version import VERSION
from core.store.bootstrap import sync_product_releases
from core.store.db import compatible_heads, head_revision, upgrade
from core.store.services import Services
from plugins.catalog import tailor_extension_points
from tests.conftest import ADMIN, _base_url, scratch_postgres_database
from tests.sample import ACME
from tests.servers import TAILOR, clean_env, start_node

ROOT = Path(__file__).resolve().parent.parent.parent
RECORD = ROOT / "RELEASES.toml"
#: set by CI (.ci/run): a checkout without the previous release's commit (no git,
#: a shallow clone) fails the test instead of skipping it
REQUIRE_GIT_HISTORY = "TAILOR_REQUIRE_GIT_HISTORY"

DUE = "billing.invoice.due_days"
SETTINGS = """{ settings(tenant: "acme") { ... on Settings { release
  items { key value source revision } customizationErrors { message } } } }"""
SET = """mutation { setSetting(input: {tenant: "acme", key: "billing.invoice.due_days",
  value: 50}) { __typename ... on SettingChanged { auditId } } }"""
AUDIT = """{ auditLog(key: "billing.invoice.due_days") {
  ... on AuditLog { entries { id new requestId } } } }"""


def releases() -> list[dict[str, Any]]:
    with RECORD.open("rb") as f:
        return list(tomllib.load(f)["release"])


def test_the_record_starts_with_this_tree_and_tells_the_truth():
    current, *earlier = releases()
    assert current["version"] == VERSION, "RELEASES.toml starts with core/model/version.py"
    assert current["head"] == head_revision(), (
        f"RELEASES.toml: release {VERSION}'s head is {head_revision()} (migrations/versions/)"
    )
    assert "commit" not in current, "the release this tree is gets its commit when tagged"
    versions = [Version(r["version"]) for r in releases()]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    assert earlier, "RELEASES.toml records the previous release"
    for release in earlier:
        assert re.fullmatch(r"[0-9a-f]{40}", release["commit"]), release
        assert release["head"] and release["date"], release
    # compatible_with is what the migrations marked tailor_compatible make true
    admitted = set(compatible_heads())
    for release in earlier:
        listed = release["version"] in current["compatible_with"]
        assert listed == (release["head"] in admitted), (
            f"RELEASES.toml: {release['version']} (head {release['head']}) "
            + ("is listed" if listed else "is not listed")
            + f" as compatible with {VERSION}, but the migrations since its head are "
            + ("not all" if listed else "all")
            + " marked tailor_compatible"
        )
    known = {r["version"] for r in earlier}
    assert set(current["compatible_with"]) <= known


def test_tailor_version_prints_the_version_and_schema():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"tailor {VERSION} (schema {head_revision()})"


# -- the previous release's code on this release's schema --------------------------


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_GIT_HISTORY) == "1":
        pytest.fail(f"{reason} ({REQUIRE_GIT_HISTORY}=1)")
    pytest.skip(reason)


def materialize(release: dict[str, Any], into: Path) -> Path:
    """The tree of ``release``'s commit (``git archive``), in ``into``."""
    git = shutil.which("git")
    if git is None:
        _unavailable("git is not installed: the previous release's code comes from git")
    commit = release["commit"]
    found = subprocess.run(
        [git, "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        _unavailable(
            f"commit {commit} (release {release['version']}) is not in this checkout's "
            "history (not a git checkout, or a shallow clone: git fetch --unshallow)"
        )
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_old(tree: Path, home: Path, code: str) -> str:
    """``code`` run by this interpreter with only ``tree`` importable as Tailor."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=home,
        env=clean_env(PYTHONPATH=str(tree)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@contextlib.asynccontextmanager
async def fresh_database(tmp_path: Path):
    """A new database migrated to this release's head by this release's code."""
    base = _base_url()
    if base and base.startswith("postgresql"):
        async with scratch_postgres_database(base, "tailor_release") as (url, _name):
            yield url
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'tailor.db'}"
    await upgrade(url)
    yield url


async def _seed(url: str) -> str:
    services = Services.from_url(url)
    try:
        await sync_product_releases(services, ACME, tailor_extension_points)
        await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
        await services.settings.set(ADMIN, "acme", "billing.invoice.due_days", 45)
        token, _ = await services.tokens.create(Role.ADMIN)
        return token
    finally:
        await services.close()


async def _gql(client: httpx.AsyncClient, url: str, token: str, query: str, **headers: str):
    response = await client.post(
        f"{url}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}", **headers},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_a_node_of_the_previous_release_on_this_schema(tmp_path):
    current, previous = releases()[:2]
    tree = materialize(previous, tmp_path / f"tailor-{previous['version']}")
    home = tmp_path / "old"
    home.mkdir()
    # the tree is the release recorded, and the old node imports it, not this checkout
    imported = run_old(
        tree,
        home,
        "import core, api.cli.main\nfrom core.store.db import head_revision\n"
        "print(core.__file__)\nprint(head_revision())",
    ).splitlines()
    assert Path(imported[0]).is_relative_to(tree), imported
    assert imported[1] == previous["head"], f"RELEASES.toml: {previous['version']}'s head"

    async with fresh_database(tmp_path) as url:
        token = await _seed(url)
        rolling = url.startswith("postgresql") and previous["version"] in current["compatible_with"]
        if not rolling:
            # SQLite keeps no record of compatible heads (one node, no rolling
            # deploy), and a release not listed compatible is not: the previous
            # release refuses to start, saying why (docs/operations.md)
            done = await asyncio.to_thread(
                subprocess.run,
                [*TAILOR, "serve", "--host", "127.0.0.1", "--port", "9"],
                cwd=home,
                env=clean_env(
                    PYTHONPATH=str(tree),
                    TAILOR_DATABASE_URL=url,
                    TAILOR_SECRET_KEY=os.environ["TAILOR_SECRET_KEY"],
                ),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 2, done.stdout + done.stderr
            assert (
                f"the database is at revision {current['head']}, but this Tailor needs "
                f"revision {previous['head']}"
            ) in done.stderr
            return

        new = await start_node(tmp_path / "new", url, probe="/readyz")
        old = await start_node(home, url, probe="/readyz", env={"PYTHONPATH": str(tree)})
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                ready = await client.get(f"{old.url}/readyz")
                assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
                before = await _gql(client, new.url, token, SETTINGS)
                assert await _gql(client, old.url, token, SETTINGS) == before
                # a write through the old node is read through the new one at once
                services = Services.from_url(url)
                head = await services.feed.head()
                changed = await _gql(client, old.url, token, SET, **{"X-Request-Id": "old-1"})
                audit_id = changed["setSetting"]["auditId"]
                after = await _gql(client, new.url, token, SETTINGS)
                assert after != before
                assert await _gql(client, old.url, token, SETTINGS) == after
                entries = (await _gql(client, new.url, token, AUDIT))["auditLog"]["entries"]
                assert (entries[0]["id"], entries[0]["new"]) == (audit_id, 50)
                # both nodes' changes reach one feed, in order: the old node appends
                # under the feed lock, the new one leaves its change pending for the
                # settler, which takes the same lock (core.store.feed)
                await _gql(client, new.url, token, SET.replace("50", "51"))
                events = await services.feed.since(head)
                await services.close()
                assert [e.keys for e in events] == [(DUE,), (DUE,)]
                assert events[0].audit_id == audit_id
                assert events[0].sequence < events[1].sequence
        finally:
            assert await old.stop() == 0, await old.output()
            assert await new.stop() == 0, await new.output()
