"""Source text of a customization's hook implementation, read from its package
on disk (never imported), for the fold-back page's side-by-side evidence."""

from __future__ import annotations

import ast
from pathlib import Path

#: longest source shown per implementation
MAX_LINES = 80


def hook_source(package_dir: Path, location: str) -> str | None:
    """The source of ``module:function`` (``location`` as introspection records it)
    found in any module of ``package_dir``; None when it cannot be found."""
    _module, _, function = location.rpartition(":")
    if not function:
        return None
    for path in sorted(package_dir.rglob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
                segment = ast.get_source_segment(text, node, padded=True) or ""
                lines = segment.splitlines()
                if len(lines) > MAX_LINES:
                    lines = [*lines[:MAX_LINES], "    ..."]
                return "\n".join(lines)
    return None
