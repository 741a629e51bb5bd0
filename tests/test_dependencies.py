"""Every third-party package the shipped code imports is declared in
pyproject.toml's dependencies (not only installed because another package needs it)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the packages that ship (tests, benches and docs use the test and dev extras)
SHIPPED = ("api", "core", "plugins", "products", "customizations", "migrations")
FIRST_PARTY = {*SHIPPED, "tests", "bench", "docs"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], path)
    return found


def test_every_imported_third_party_package_is_declared():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {
        _normalized(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0])
        for spec in pyproject["project"]["dependencies"]
    }
    distributions = importlib.metadata.packages_distributions()
    modules = _imported_top_level_modules()
    assert "strawberry" in modules and "markupsafe" in modules  # the scan sees imports
    undeclared = {}
    for module, path in modules.items():
        if module in FIRST_PARTY or module in sys.stdlib_module_names:
            continue
        owners = {_normalized(d) for d in distributions.get(module, ())}
        if not owners:
            # a module no installed distribution provides (a customization's own
            # package, an optional import guarded at run time): not ours to declare
            continue
        if not owners & declared:
            undeclared[module] = (sorted(owners), str(path.relative_to(ROOT)))
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
