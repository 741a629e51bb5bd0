"""Generate the per-hook reference in docs/hooks.md from the real hookspecs.

The part of docs/hooks.md between the two GENERATED markers is rebuilt from
``plugins/hookspecs.py`` (Tailor's hooks) and ``products/acme_erp/hookspecs.py``
(the sample host product's, "Acme ERP"): signature, lifecycle and the docstring's
sections, plus what the planned release (``products/acme_erp/planned/3.0.toml``)
changes. The
rest of the file is written by hand.

    python docs/gen_hooks.py            # rewrite docs/hooks.md
    python docs/gen_hooks.py --check    # exit 1 when docs/hooks.md is out of date

``tests/test_docs.py`` runs the check, so a changed hookspec without regenerated
docs fails the tests.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from packaging.version import Version  # noqa: E402

from core.model.extension_points import ExtensionPoint  # noqa: E402
from core.model.manifest import ReleaseManifest  # noqa: E402
from core.model.manifest_io import load_file  # noqa: E402
from plugins import hookspecs  # noqa: E402
from plugins.catalog import extension_point, spec_functions, with_hook_api  # noqa: E402

HOOKS_MD = ROOT / "docs" / "hooks.md"
from products.acme_erp import hookspecs as acme_hookspecs  # noqa: E402

PLANNED_MANIFEST = ROOT / "products" / "acme_erp" / "planned" / "3.0.toml"
BEGIN = "<!-- BEGIN GENERATED: hook reference (python docs/gen_hooks.py) -->"
END = "<!-- END GENERATED -->"

#: (source name as release manifests record it, module, file) in reference order
SPEC_MODULES: tuple[tuple[str, ModuleType, str], ...] = (
    ("tailor", hookspecs, "plugins/hookspecs.py"),
    ("acme_erp", acme_hookspecs, "products/acme_erp/hookspecs.py"),
)
#: Tailor's hooks in the order a reader meets them (then any others, by name)
ORDER = hookspecs.TAILOR_HOOKS
_SECTION = re.compile(r"^(Parameters|Returns|Example|Lifecycle):(:?)\s*(.*)$")


def _sections(doc: str) -> tuple[str, dict[str, str]]:
    """Split a hookspec docstring into its summary and its ``Name:`` sections."""
    summary: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] = summary
    for line in doc.splitlines():
        match = _SECTION.match(line)
        if match and not line.startswith(" "):
            current = sections.setdefault(match.group(1), [])
            if match.group(3):
                current.append(match.group(3))
            continue
        current.append(line)
    return (
        "\n".join(summary).strip(),
        {name: inspect.cleandoc("\n".join(lines)) for name, lines in sections.items()},
    )


def _signature(function: Callable[..., Any]) -> str:
    sig = inspect.signature(function)
    params = ", ".join(
        f"{p.name}: {p.annotation}" if p.annotation is not p.empty else p.name
        for p in sig.parameters.values()
    )
    returns = "" if sig.return_annotation is sig.empty else f" -> {sig.return_annotation}"
    return f"def {function.__name__}({params}){returns}"


def _parameters(text: str) -> str:
    """``name: description`` lines (continuations indented) as a Markdown list."""
    if text.strip().lower() in ("none", "none."):
        return "none"
    items: list[str] = []
    for line in text.splitlines():
        if line.startswith(" ") and items:
            items[-1] += " " + _md(line.strip())
        elif ":" in line:
            name, rest = line.split(":", 1)
            items.append(f"- `{name.strip()}`: {_md(rest.strip())}")
        elif line.strip():
            items.append(f"- {_md(line.strip())}")
    return "\n".join(items)


def _md(text: str) -> str:
    """reST inline literals (``x``) as Markdown code spans (`x`)."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _flow(text: str) -> str:
    """Re-flow a docstring paragraph into one Markdown line per paragraph."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(_md(" ".join(p.split())) for p in paragraphs)


def _numbered(point: ExtensionPoint, value: str | None) -> str:
    """A lifecycle number as the reference shows it: Tailor's hooks count in hook
    APIs ("API 2"), a product's hooks in its versions."""
    if value is None:
        return "-"
    return f"API {value}" if point.is_tailor else value


def _in_planned(point: ExtensionPoint, planned: ReleaseManifest) -> tuple[str, str]:
    """What the planned release does to ``point``: (short, with details). Tailor's
    hooks compare the running hook API with the one the planned release names."""
    target = {p.name: p for p in planned.extension_points}.get(point.name)
    if point.is_tailor and planned.tailor_hook_api is not None:
        return _in_planned_api(point, target, planned.tailor_hook_api)
    if target is None:
        short = "**removed**" if point.removed else "**not in the manifest**"
        return short, short
    notes = []
    gone = [p for p in point.params if p not in target.params]
    new = [p for p in target.params if p not in point.params]
    if gone:
        notes.append("parameters removed: " + ", ".join(f"`{p}`" for p in gone))
    if new:
        notes.append("parameters added: " + ", ".join(f"`{p}`" for p in new))
    if target.stability != point.stability:
        notes.append(f"stability {point.stability} -> {target.stability}")
    if target.deprecated and not point.deprecated:
        notes.append(
            f"deprecated in {target.deprecated}"
            + (f", use `{target.replacement}`" if target.replacement else "")
        )
    if target.removed and not point.removed:
        notes.append(f"removal planned in {target.removed}")
    if not notes:
        return "unchanged", "unchanged"
    short = "; ".join(notes)
    if gone or new:
        return short, f"{short} ({target.description})"
    return short, short


def _in_planned_api(
    point: ExtensionPoint, target: ExtensionPoint | None, api: str
) -> tuple[str, str]:
    running, planned = Version(hookspecs.HOOK_API), Version(api)
    if target is None:
        short = f"**removed** (hook API {api})"
        return short, short
    if not point.defined_in(running):
        short = f"**new** in hook API {api} (not implementable yet)"
        return short, short
    if target.deprecated_in(planned) and not point.deprecated_in(running):
        short = f"deprecated in hook API {target.deprecated}" + (
            f", use `{target.replacement}`" if target.replacement else ""
        )
        return short, short
    return "unchanged", "unchanged"


def _hook_section(
    function: Callable[..., Any], source: str, file: str, planned: ReleaseManifest
) -> str:
    point = extension_point(function, source)
    summary, sections = _sections(inspect.getdoc(function) or "")
    dash = "-"
    rows = [
        ("declared in", f"`{file}` (source `{source}`)"),
        ("added", _numbered(point, point.added)),
        ("deprecated", _numbered(point, point.deprecated)),
        ("removed", _numbered(point, point.removed)),
        ("replacement", f"`{point.replacement}`" if point.replacement else dash),
        ("stability", point.stability),
        ("firstresult", "yes" if point.firstresult else "no (every implementation is called)"),
        (f"in planned {planned.version}", _in_planned(point, planned)[1]),
    ]
    out = [
        f"### `{point.name}`",
        "",
        _flow(summary),
        "",
        "```python",
        _signature(function),
        "```",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        "**Parameters**",
        "",
        _parameters(sections.get("Parameters", "none")),
        "",
        "**Returns**: " + _flow(sections.get("Returns", "nothing")),
        "",
    ]
    example = sections.get("Example")
    if example:
        out += ["**Example**", "", "```python", example, "```", ""]
    if "Lifecycle" in sections:
        out += ["**Lifecycle and calls**: " + _flow(sections["Lifecycle"]), ""]
    return "\n".join(out)


def _ordered(functions: Iterable[Callable[..., Any]]) -> list[Callable[..., Any]]:
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(functions, key=lambda f: (rank.get(f.__name__, len(rank)), f.__name__))


def _overview(planned: ReleaseManifest) -> str:
    lines = [
        "| hook | declared by | added | deprecated | removed | stability "
        f"| in planned {planned.version} |",
        "|---|---|---|---|---|---|---|",
    ]
    for source, module, _file in SPEC_MODULES:
        for function in _ordered(spec_functions(module)):
            p = extension_point(function, source)
            lines.append(
                f"| [`{p.name}`](#{p.name}) | {source} | {_numbered(p, p.added)} | "
                f"{_numbered(p, p.deprecated)} | {_numbered(p, p.removed)} | {p.stability} | "
                f"{_in_planned(p, planned)[0]} |"
            )
    return "\n".join(lines)


def _planned_new(planned: ReleaseManifest) -> str:
    known = {f.__name__ for _s, m, _f in SPEC_MODULES for f in spec_functions(m)}
    new = [p for p in planned.extension_points if p.name not in known]
    if not new:
        return ""
    lines = [
        f"### New in planned {planned.version} (not implementable yet)",
        "",
        f"The {planned.version} manifest "
        f"(`products/acme_erp/planned/{PLANNED_MANIFEST.name}`) adds these hooks. "
        "The running code has no hookspec for them yet, so "
        "`tailor customization check` refuses an implementation as an unknown hook until "
        f"{planned.version} is deployed.",
        "",
        "| hook | parameters | stability | description |",
        "|---|---|---|---|",
    ]
    for p in new:
        lines.append(
            f"| `{p.name}` | {', '.join(f'`{x}`' for x in p.params)} | {p.stability} "
            f"| {p.description} |"
        )
    return "\n".join(lines) + "\n"


def render(planned: ReleaseManifest | None = None) -> str:
    """The generated part of docs/hooks.md (markers included)."""
    planned = planned or with_hook_api(load_file(PLANNED_MANIFEST))
    parts = [
        BEGIN,
        "",
        "<!-- Do not edit by hand: change the hookspec docstrings, then run "
        "`python docs/gen_hooks.py`. -->",
        "",
        "## Hook reference",
        "",
        _overview(planned),
        "",
    ]
    for source, module, file in SPEC_MODULES:
        title = "Tailor's hooks" if source == "tailor" else f"Host product hooks ({source})"
        parts += [f"## {title}", ""]
        if module.__doc__:
            parts += [_flow(module.__doc__), ""]
        for function in _ordered(spec_functions(module)):
            parts.append(_hook_section(function, source, file, planned))
    new = _planned_new(planned)
    if new:
        parts.append(new)
    parts.append(END)
    return "\n".join(parts) + "\n"


def updated(current: str, generated: str) -> str:
    """``current`` with its generated part replaced (appended when missing)."""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _old, tail = rest.split(END, 1)
        return head + generated.rstrip("\n") + tail
    return current.rstrip("\n") + "\n\n" + generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when out of date")
    args = parser.parse_args(argv)
    current = HOOKS_MD.read_text(encoding="utf-8") if HOOKS_MD.exists() else ""
    wanted = updated(current, render())
    if args.check:
        if wanted != current:
            print(f"{HOOKS_MD} is out of date: run python docs/gen_hooks.py", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        HOOKS_MD.write_text(wanted, encoding="utf-8")
        print(f"wrote {HOOKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
