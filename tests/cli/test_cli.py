"""The real ``tailor`` command, as a subprocess."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

TAILOR = str(Path(sys.executable).with_name("tailor"))


def tailor(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120):
    full_env = {k: v for k, v in os.environ.items() if k != "TAILOR_DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [TAILOR, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def test_help_teaches_the_commands(tmp_path):
    result = tailor("--help", cwd=tmp_path)
    assert result.returncode == 0
    for verb in ("serve", "db", "demo", "token"):
        assert verb in result.stdout


def test_db_upgrade_then_demo_seed_then_token(tmp_path):
    result = tailor("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tailor.db").exists()
    assert "1.0, 1.5, 2.0" in result.stdout
    again = tailor("db", "upgrade", cwd=tmp_path)
    assert again.returncode == 0 and "added: none" in again.stdout

    seeded = tailor("demo", "seed", cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "northwind" in seeded.stdout
    reseeded = tailor("demo", "seed", cwd=tmp_path)
    assert "tenants added: none" in reseeded.stdout

    token = tailor("token", "create", "--role", "app", "--tenant", "northwind", cwd=tmp_path)
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"tlr_[\w-]{20,}\n", token.stdout)

    bad = tailor("token", "create", "--role", "app", "--tenant", "ghost", cwd=tmp_path)
    assert bad.returncode == 2 and "ghost" in bad.stderr


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql+asyncpg://nobody@127.0.0.1:1/none", "cannot connect"),
        ("mysql://x@y/z", "unsupported database driver"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_database_urls_exit_2(tmp_path, url, fragment):
    result = tailor("db", "upgrade", cwd=tmp_path, env={"TAILOR_DATABASE_URL": url})
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path):
    result = tailor("serve", "--port", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "tailor db upgrade" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_demo_over_http(tmp_path):
    port = _free_port()
    # no TAILOR_SECRET_KEY: --demo makes and keeps a key for its own database
    env = {
        k: v for k, v in os.environ.items() if k not in ("TAILOR_DATABASE_URL", "TAILOR_SECRET_KEY")
    }
    proc = subprocess.Popen(
        [TAILOR, "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Uvicorn running" in line or "Application startup complete" in line:
                break
        output = "".join(lines)
        admin = re.search(r"^\s+admin\s.*?(tlr_\S+)", output, re.M)
        app = re.search(r"^\s+app\s+northwind\s+(tlr_\S+)", output, re.M)
        assert admin and app, output
        base = f"http://127.0.0.1:{port}"
        query = {
            "query": '{ settings(tenant: "northwind", environment: "production") {'
            " ... on Settings { items { key source } } } }"
        }
        r = httpx.post(
            f"{base}/graphql",
            json=query,
            headers={"Authorization": f"Bearer {app.group(1)}"},
            timeout=10,
        )
        items = r.json()["data"]["settings"]["items"]
        assert len(items) >= 40
        assert {"DEFAULT", "TENANT", "ENVIRONMENT"} <= {i["source"] for i in items}
        denied = httpx.post(f"{base}/graphql", json={"query": "{ tenants { slug } }"}, timeout=10)
        assert denied.status_code == 401
        secret = httpx.post(
            f"{base}/graphql",
            json={
                "query": 'mutation { setSetting(input: {tenant: "northwind", '
                'key: "integrations.webhooks.signing_secret", value: "whsec-demo"})'
                " { __typename } }"
            },
            headers={"Authorization": f"Bearer {admin.group(1)}"},
            timeout=10,
        )
        assert secret.json()["data"]["setSetting"]["__typename"] == "SettingChanged"
        key_file = tmp_path / "tailor.db.secret-key"
        assert key_file.stat().st_mode & 0o777 == 0o600
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stdout.close()
