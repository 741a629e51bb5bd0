"""Readiness reports (the model of :mod:`api.report`) as tables, JSON,
Markdown or HTML, streamed; release diffs as tables, Markdown or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import orjson
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape
from rich.console import Console
from rich.table import Table
from rich.text import Text

from api.report import FULL_OPTION, Column, ReadinessView, Section
from core.analysis.readiness.vocabulary import Severity
from core.analysis.release_diff import ReleaseDiff

STATUS_STYLE = {
    "ready": "green",
    "ready_with_warnings": "yellow",
    "blocked": "bold red",
    "compatible": "green",
    "needs_update": "yellow",
    "incompatible": "bold red",
    "obsolete": "cyan",
    "unknown": "magenta",
}
SEVERITY_STYLE = {
    Severity.BLOCKER: "bold red",
    Severity.WARNING: "yellow",
    Severity.INFO: "cyan",
    Severity.UNKNOWN: "magenta",
}


#: sections longer than this are printed as plain aligned text, not rich tables
#: (rich measures every cell of a table before printing it: ~1 ms a row)
RICH_MAX_ROWS = 200
#: rows per block of plain text (column widths are measured per block)
BLOCK_ROWS = 500


def render_readiness(view: ReadinessView, fmt: str, out: TextIO, console: Console) -> None:
    """Write ``view`` to ``out`` as ``table`` (``console`` prints the short
    tables), ``json``, ``markdown`` or ``html``, row by row: nothing holds the
    whole rendered text."""
    if fmt == "json":
        readiness_json(view, out)
    elif fmt == "markdown":
        readiness_markdown(view, out)
    elif fmt == "html":
        readiness_html(view, out)
    else:
        readiness_table(view, console, out)


# -- JSON ----------------------------------------------------------------------------


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def readiness_json(view: ReadinessView, out: TextIO) -> None:
    """The summary as one indented document; the full report (``full``) in the
    shape of ``TriagedReport.to_dict``, one tenant, customization or step a line."""
    if not view.full:
        out.write(orjson.dumps(view.summary_dict(), option=orjson.OPT_INDENT_2).decode())
        out.write("\n")
        return
    out.write("{")
    first = True
    for key, value in view.full_parts():
        out.write("" if first else ",")
        first = False
        out.write(f"\n  {_json(key)}: ")
        if isinstance(value, Iterator):
            out.write("[")
            sep = "\n    "
            for item in value:
                out.write(sep + _json(item))
                sep = ",\n    "
            out.write("\n  ]" if sep != "\n    " else "]")
        else:
            out.write(_json(value))
    out.write("\n}\n")


# -- table -----------------------------------------------------------------------------


def _cell(column: Column, value: Any) -> Text | str:
    if column.key == "status":
        return Text(str(value), style=STATUS_STYLE.get(str(value), ""))
    if column.key == "severity":
        return Text(str(value), style=SEVERITY_STYLE.get(Severity(value), ""))
    return str(value)


def _rich_section(section: Section, console: Console) -> None:
    table = Table(title=section.title)
    for column in section.columns:
        if column.long:
            table.add_column(column.title, overflow="fold")
        else:
            table.add_column(column.title, no_wrap=True)
    for row in section.rows():
        table.add_row(*(_cell(c, v) for c, v in zip(section.columns, row, strict=True)))
    console.print(table)


def _plain_section(section: Section, out: TextIO) -> None:
    """A long section as aligned plain text, block by block (bounded memory)."""
    out.write(f"{section.title} ({section.size} rows)\n")
    header = tuple(c.title for c in section.columns)
    rows = section.rows()
    while True:
        block = [tuple(str(v) for v in row) for row in islice(rows, BLOCK_ROWS)]
        if not block:
            break
        widths = [
            max(len(header[i]), *(len(r[i]) for r in block)) if not c.long else 0
            for i, c in enumerate(section.columns)
        ]
        lines = [header, tuple("-" * max(w, len(h)) for w, h in zip(widths, header, strict=True))]
        for line in (*lines, *block):
            out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
            out.write("\n")
    out.write("\n")


def readiness_table(view: ReadinessView, console: Console, out: TextIO | None = None) -> None:
    console.print(view.headline(), highlight=False)
    console.print(view.customization_line(), highlight=False)
    for section in view.sections():
        if not section.size:
            continue
        if section.size <= RICH_MAX_ROWS or out is None:
            _rich_section(section, console)
        else:
            console.file.flush()
            _plain_section(section, out)
        if section.omitted:
            console.print(
                f"... and {section.omitted} more row(s) of {section.title.lower()} ({FULL_OPTION})",
                highlight=False,
                markup=False,
            )
    for line in view.notes():
        console.print(line, highlight=False, markup=False)
    note = view.omitted_note()
    if note:
        console.print(note, highlight=False, markup=False)


# -- Markdown --------------------------------------------------------------------------


def _md_row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    return [_md_row(header), _md_row("---" for _ in header), *(_md_row(r) for r in rows)]


def _md_value(column: Column, value: Any) -> str:
    if column.key == "code" and value:
        return f"`{value}`"
    if column.key == "fix":
        kind, _, subject = str(value).partition(" ")
        return f"{kind} `{subject}`"
    return str(value)


def readiness_markdown(view: ReadinessView, out: TextIO) -> None:
    out.write(f"# Upgrade readiness: {view.target}\n\n{view.headline()}\n\n")
    out.write(view.customization_line() + "\n")
    for section in view.sections():
        if not section.size:
            continue
        out.write(f"\n## {section.title}\n\n")
        out.write(_md_row(c.title for c in section.columns) + "\n")
        out.write(_md_row("---" for _ in section.columns) + "\n")
        for row in section.rows():
            cells = (_md_value(c, v) for c, v in zip(section.columns, row, strict=True))
            out.write(_md_row(cells) + "\n")
        if section.omitted:
            out.write(f"\n... and {section.omitted} more row(s) ({FULL_OPTION})\n")
    notes = view.notes()
    note = view.omitted_note()
    if notes or note:
        out.write("\n## Triage and changes\n\n")
        out.write("".join(f"- {n}\n" for n in (*notes, *([note] if note else []))))


# -- HTML ------------------------------------------------------------------------------

_TEMPLATES = Path(__file__).parents[1] / "web" / "templates"


def html_rows(section: Section) -> Iterator[Markup]:
    """A section's ``<tr>`` rows, escaped, in blocks of BLOCK_ROWS: status and
    severity cells carry their value as class, numbers the class ``n``."""
    classed = [c.key in ("status", "severity") for c in section.columns]
    rows = section.rows()
    while block := list(islice(rows, BLOCK_ROWS)):
        lines = []
        for row in block:
            cells = []
            for is_classed, value in zip(classed, row, strict=True):
                text = escape(value)
                if is_classed:
                    cells.append(f'<td class="{text}">{text}</td>')
                elif isinstance(value, int):
                    cells.append(f'<td class="n">{text}</td>')
                else:
                    cells.append(f"<td>{text}</td>")
            lines.append("<tr>" + "".join(cells) + "</tr>\n")
        yield Markup("".join(lines))


def readiness_html(view: ReadinessView, out: TextIO) -> None:
    """A standalone HTML document (no script, inline style), streamed."""
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=True)
    template = env.get_template("readiness_report.html")
    context = {
        "view": view,
        "sections": view.sections(),
        "full_option": FULL_OPTION,
        "html_rows": html_rows,
    }
    for chunk in template.generate(**context):
        out.write(chunk)


def diff_json(d: ReleaseDiff) -> str:
    return json.dumps(d.to_dict(), indent=2)


def diff_markdown(d: ReleaseDiff) -> str:
    lines = [f"# Changes from {d.from_version} to {d.to_version}", ""]
    lines += _md_table(
        ("kind", "name", "change", "details", "breaking"),
        (
            (c.kind, f"`{c.name}`", c.change, "; ".join(c.details), "yes" if c.breaking else "")
            for c in d.changes
        ),
    )
    if d.supersedes_added:
        lines += ["", f"Supersedes (folded into the product): {', '.join(d.supersedes_added)}"]
    return "\n".join(lines) + "\n"


def diff_table(d: ReleaseDiff, console: Console) -> None:
    table = Table(title=f"Changes from {d.from_version} to {d.to_version}")
    for col in ("kind", "name", "change", "details", "breaking"):
        table.add_column(col, overflow="fold")
    style = {"removed": "red", "renamed": "red", "changed": "yellow", "deprecated": "yellow"}
    for c in d.changes:
        table.add_row(
            c.kind,
            c.name,
            Text(c.change, style=style.get(c.change, "green")),
            "; ".join(c.details),
            Text("yes", style="bold red") if c.breaking else "",
        )
    console.print(table)
    if d.supersedes_added:
        console.print(f"supersedes (folded into the product): {', '.join(d.supersedes_added)}")
