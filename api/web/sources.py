"""Source text of a customization's hook implementation, read from its package
on disk (never imported), for the fold-back page's side-by-side evidence."""

from __future__ import annotations

import ast
from pathlib import Path

from plugins.introspection import parse_python

#: longest source shown per implementation
MAX_LINES = 80


def hook_source(package_dir: Path, location: str) -> str | None:
    """The source of ``module:function`` or ``file.py:line`` (``location`` as
    introspection records it) found in ``package_dir``; None when it cannot be found."""
    module, _, function = location.rpartition(":")
    if not function:
        return None
    line = int(function) if function.isdigit() else None
    paths = [package_dir / module] if line is not None else sorted(package_dir.rglob("*.py"))
    for path in paths:
        if line is not None and not path.resolve().is_relative_to(package_dir.resolve()):
            return None
        try:
            text = path.read_text(encoding="utf-8")
            tree = parse_python(text)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (node.lineno == line) if line is not None else (node.name == function):
                segment = ast.get_source_segment(text, node, padded=True) or ""
                lines = segment.splitlines()
                if len(lines) > MAX_LINES:
                    lines = [*lines[:MAX_LINES], "    ..."]
                return "\n".join(lines)
    return None
