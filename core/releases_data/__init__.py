"""Planned release manifests shipped with the demo (``3.0.toml``): loaded by
``tailor demo seed`` and ``tailor serve --demo`` so readiness has a target."""

from __future__ import annotations

from importlib.resources import files

from core.manifest_io import loads
from core.releases import ReleaseManifest


def bundled_manifests() -> list[ReleaseManifest]:
    """Every ``*.toml`` manifest of this package, parsed and validated."""
    found = []
    for entry in sorted(files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            found.append(loads(entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.parsed)
