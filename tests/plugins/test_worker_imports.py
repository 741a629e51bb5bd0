"""The worker process holds no database: loading what it loads imports no SQLAlchemy
(import-linter checks the static graph; this checks what Python actually loads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# the modules plugins.runtime.worker.main() imports before the confinement starts
PROBE = """
import json, sys
import plugins.runtime.worker
import plugins.catalog, plugins.hookspecs, plugins.introspection, plugins.loading
print(json.dumps(sorted(sys.modules)))
"""


def test_worker_loads_no_sqlalchemy_and_no_store():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    assert "plugins.runtime.worker" in loaded
    forbidden = [
        m
        for m in loaded
        if m.split(".")[0] in ("sqlalchemy", "aiosqlite", "asyncpg")
        or m in ("core.store.db", "core.store.models", "core.store.releases", "core.store.services")
    ]
    assert forbidden == []
