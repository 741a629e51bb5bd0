"""Codemods: rewrite what a target release renames in a customization package,
and nothing else (``tailor customization fix PATH --release V``).

What is renamed comes from the target's manifest and the releases before it
(``renamed``, ``renamed_hooks``, ``renamed_params``, followed through the
history); where the package uses it comes from the one key and hook finder,
:mod:`plugins.evidence`. The rewrite is done with libcst, so formatting and
comments survive:

- a setting key in a plain string literal (also a dict key, or the value of a
  module constant the code uses: the constant's value is rewritten);
- a hook implementation's function name (and the module's uses of it), or the
  ``specname="..."`` string of its marker;
- a renamed hook parameter in the implementation's signature and every use of
  it in the body (scope-aware: a nested function's own name of it is not touched);
- with ``bump``, ``requires`` / ``tested_up_to`` of ``customization.toml`` so
  they admit the target (only those two lines change).

What it cannot rewrite safely is listed with the reason instead: a key built at
run time (f-string, concatenation, format, a function argument), a key in a data
file, a setting the target removes, a setting whose type changes, a hook removed
or replaced by one of another shape, a parameter removed.
"""

from __future__ import annotations

import difflib
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider, ScopeProvider
from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from core.analysis.readiness.evaluation import check_customization
from core.analysis.readiness.vocabulary import Code
from core.model.definitions import SettingDefinition
from core.model.manifest import ReleaseManifest, Renames
from plugins import archive
from plugins.evidence import HookDefinition, StaticPackage, read_package
from plugins.manifest import MANIFEST_FILE

#: how the key finder spells a key it found as one plain string literal
_LITERAL_HOWS = frozenset({"literal", "dict key"})


@dataclass(frozen=True)
class Unfixable:
    """Something the target breaks that no rename fixes."""

    #: file:line inside the package (or customization.toml)
    location: str
    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.what}: {self.reason}"


@dataclass(frozen=True)
class FileChange:
    #: path inside the package
    path: str
    before: str
    after: str


@dataclass(frozen=True)
class FixPlan:
    """The rewrite of one package for one target: its file changes (a unified
    diff), the renames applied, and what could not be fixed."""

    root: Path
    target: str
    changes: tuple[FileChange, ...] = ()
    applied: tuple[str, ...] = ()
    unfixable: tuple[Unfixable, ...] = ()

    def diff(self) -> str:
        """A unified diff (``a/`` and ``b/`` paths inside the package)."""
        parts: list[str] = []
        for c in self.changes:
            parts.extend(
                difflib.unified_diff(
                    c.before.splitlines(keepends=True),
                    c.after.splitlines(keepends=True),
                    f"a/{c.path}",
                    f"b/{c.path}",
                )
            )
        return "".join(
            p if p.endswith("\n") else p + "\n\\ No newline at end of file\n" for p in parts
        )

    def write(self, root: Path | None = None) -> None:
        """Write the changed files under ``root`` (default: the package itself)."""
        base = Path(root) if root is not None else self.root
        for c in self.changes:
            (base / c.path).write_text(c.after, encoding="utf-8")


@dataclass
class _FileEdits:
    #: (line, old key) -> new key, for plain string literals
    strings: dict[tuple[int, str], str] = field(default_factory=dict)
    #: (line of the def, old hook name) -> new name: a function renamed
    functions: dict[tuple[int, str], str] = field(default_factory=dict)
    #: (line of the def, old param) -> new param
    params: dict[tuple[int, str], str] = field(default_factory=dict)
    #: (first decorator line, def line, old hook name) -> new: a specname string
    specnames: dict[tuple[int, int, str], str] = field(default_factory=dict)
    #: what each edit means, for the report: key -> description
    labels: dict[tuple[str, object], str] = field(default_factory=dict)


def plan_fix(
    root: Path,
    target: ReleaseManifest,
    history: Iterable[ReleaseManifest],
    *,
    categories: Iterable[str] = (),
    product: str | None = None,
    bump: bool = False,
) -> FixPlan:
    """The rewrite of the package at ``root`` for ``target`` (nothing is written)."""
    root = Path(root)
    history = tuple(m for m in history if m.version != target.version)
    renames = Renames.up_to(target, history)
    package = read_package(root, categories=frozenset(categories), product=product)
    unfixable: list[Unfixable] = []
    edits: dict[str, _FileEdits] = {}
    for ref in package.evidence.references:
        if ref.is_prefix or ref.key not in renames.keys:
            continue
        new = renames.keys[ref.key]
        what = f"setting key {ref.key} (renamed {new})"
        if not ref.file.endswith(".py"):
            unfixable.append(Unfixable(ref.location, what, "a key in a data file: rename it there"))
        elif ref.how in _LITERAL_HOWS or ref.how.startswith("constant "):
            e = edits.setdefault(ref.file, _FileEdits())
            e.strings[(ref.line, ref.key)] = new
            e.labels[("s", (ref.line, ref.key))] = f"{ref.location}: {ref.key} -> {new}"
        else:
            unfixable.append(
                Unfixable(
                    ref.location,
                    what,
                    f"the key is built at run time ({ref.how}): rewrite it by hand as {new!r}",
                )
            )
    for h in package.evidence.hooks:
        _plan_hook(h, renames, target, edits, unfixable)
    changes: list[FileChange] = []
    applied: list[str] = []
    for file, e in sorted(edits.items()):
        path = root / file
        try:
            before = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            unfixable.append(Unfixable(file, "the module", f"cannot be read as UTF-8: {exc}"))
            continue
        after, done, missed = _rewrite(before, e)
        applied.extend(done)
        unfixable.extend(Unfixable(f"{file}:{line}", what, why) for line, what, why in missed)
        if after != before:
            changes.append(FileChange(file, before, after))
    unfixable.extend(_beyond_renames(package, target, history, renames))
    if bump and package.registration is not None:
        manifest = root / MANIFEST_FILE
        before = manifest.read_text(encoding="utf-8")
        after = bump_manifest(before, target.version)
        if after != before:
            changes.append(FileChange(MANIFEST_FILE, before, after))
            applied.append(f"{MANIFEST_FILE}: admit {target.version} (requires, tested_up_to)")
    return FixPlan(
        root,
        target.version,
        tuple(sorted(changes, key=lambda c: c.path)),
        tuple(applied),
        tuple(sorted(set(unfixable), key=lambda u: (u.location, u.what))),
    )


def plan_fix_archive(
    data: bytes,
    target: ReleaseManifest,
    history: Iterable[ReleaseManifest],
    *,
    categories: Iterable[str] = (),
    product: str | None = None,
) -> FixPlan:
    """:func:`plan_fix` of a stored package (its zip, validated by
    :func:`plugins.archive.read_zip`), written to a scratch folder for the time of
    the analysis: the console's proposed diff of a registered version."""
    tree = archive.read_zip(data, len(data))
    with tempfile.TemporaryDirectory(prefix="tailor-fix-") as scratch:
        root = Path(scratch) / "package"
        for name in tree.paths:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tree.get(name) or b"")
        return plan_fix(root, target, history, categories=categories, product=product)


def _plan_hook(
    h: HookDefinition,
    renames: Renames,
    target: ReleaseManifest,
    edits: dict[str, _FileEdits],
    unfixable: list[Unfixable],
) -> None:
    spec = h.use.hook
    new_hook = renames.hooks.get(spec)
    name = new_hook or spec
    params = {p: n for p, n in renames.params.get(name, {}).items() if p in h.use.params}
    if new_hook is None and not params:
        return
    e = edits.setdefault(h.file, _FileEdits())
    where = f"{h.file}:{h.line}"
    if new_hook is not None:
        if h.node.name == spec:
            e.functions[(h.line, spec)] = new_hook
            e.labels[("f", (h.line, spec))] = f"{where}: hook {spec} -> {new_hook}"
        else:
            first = min((d.lineno for d in h.node.decorator_list), default=h.line)
            e.specnames[(first, h.line, spec)] = new_hook
            e.labels[("n", (first, h.line, spec))] = (
                f"{where}: hook {spec} -> {new_hook} (specname of {h.qualname})"
            )
    for old, new in params.items():
        e.params[(h.line, old)] = new
        e.labels[("p", (h.line, old))] = f"{where}: {name} parameter {old} -> {new}"


def _beyond_renames(
    package: StaticPackage,
    target: ReleaseManifest,
    history: tuple[ReleaseManifest, ...],
    renames: Renames,
) -> list[Unfixable]:
    """What the target breaks that no rename fixes: readiness's findings on the
    package, less the ones a rename answers, plus the settings whose type changes."""
    if package.registration is None:
        return []
    out = []
    result = check_customization(target, package.registration, history)
    for f in result.findings:
        static = f.evidence.get("static") or [MANIFEST_FILE]
        location = str(static[0]).split(" ", 1)[0]
        if f.code is Code.SETTING_REMOVED and f.evidence.get("setting") not in renames.keys:
            replacement = f.evidence.get("replacement")
            out.append(
                Unfixable(
                    location,
                    f"setting {f.evidence.get('setting')}",
                    f"{target.version} removes it"
                    + (
                        f" (its replacement {replacement} is not a rename: port by hand)"
                        if replacement
                        else ": stop using it"
                    ),
                )
            )
        elif f.code is Code.HOOK_REMOVED and not f.evidence.get("renamed_to"):
            replacement = f.evidence.get("replacement")
            out.append(
                Unfixable(
                    location,
                    f"hook {f.evidence.get('hook')}",
                    f"{target.version} removes it"
                    + (
                        f"; its replacement {replacement} has another shape (not a rename): "
                        "port the implementation by hand"
                        if replacement
                        else ": remove the implementation"
                    ),
                )
            )
        elif f.code is Code.HOOK_PARAM_REMOVED:
            renamed = f.evidence.get("renamed_params") or {}
            gone = [p for p in f.evidence.get("missing", ()) if p not in renamed]
            if gone:
                out.append(
                    Unfixable(
                        location,
                        f"hook {f.evidence.get('hook')} parameter(s) {', '.join(gone)}",
                        f"the {target.version} hookspec lacks them: drop them by hand",
                    )
                )
    last: dict[str, SettingDefinition] = {}
    for m in sorted(history, key=lambda m: m.parsed):
        if m.parsed < target.parsed:
            last.update({d.key: d for d in m.settings})
    now = {d.key: d for d in target.settings}
    old_of = {new: old for old, new in renames.keys.items()}
    for ref in package.evidence.references:
        if ref.is_prefix:
            continue
        key = renames.keys.get(ref.key, ref.key)
        definition = now.get(key)
        before = last.get(old_of.get(key, key)) or last.get(key)
        if definition is None or before is None or before.type is definition.type:
            continue
        conversion = (
            f"; {target.version} converts stored values with {definition.conversion!r}, "
            "not your code"
            if definition.conversion
            else ""
        )
        out.append(
            Unfixable(
                ref.location,
                f"setting {key}",
                f"its type changes from {before.type.value} to {definition.type.value}"
                f"{conversion}: check what the code reads and returns by hand",
            )
        )
    return out


# -- the rewrite ----------------------------------------------------------------------


class _Collect(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self) -> None:
        self.functions: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)


class _Rename(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, strings: Mapping[tuple[int, str], str], names: Mapping[int, str]) -> None:
        self.strings = strings
        self.names = names
        self.done: set[tuple[int, str]] = set()

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.BaseExpression:
        line = self.get_metadata(PositionProvider, original_node).start.line
        value = original_node.evaluated_value
        if isinstance(value, bytes):
            return updated_node
        new = self.strings.get((line, value))
        if new is None or not _plain(new):
            return updated_node
        self.done.add((line, value))
        text = original_node.value
        prefix = text[: len(text) - len(text.lstrip("rRuUbBfF"))]
        quote = original_node.quote
        return updated_node.with_changes(value=f"{prefix}{quote}{new}{quote}")

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        new = self.names.get(id(original_node))
        return updated_node.with_changes(value=new) if new is not None else updated_node


def _plain(text: str) -> bool:
    """A dotted identifier: safe between any quotes, with any prefix."""
    return re.fullmatch(r"[A-Za-z0-9_.]+", text) is not None


def _rewrite(source: str, e: _FileEdits) -> tuple[str, list[str], list[tuple[int, str, str]]]:
    """(new source, labels of the edits made, (line, what, why) of those missed)."""
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError as exc:
        return source, [], [(1, "the module", f"libcst cannot parse it: {exc.message}")]
    positions = wrapper.resolve(PositionProvider)
    scopes = wrapper.resolve(ScopeProvider)
    collect = _Collect()
    wrapper.visit(collect)
    by_line = {positions[f.name].start.line: f for f in collect.functions}
    names: dict[int, str] = {}
    strings = dict(e.strings)
    done: list[str] = []
    missed: list[tuple[int, str, str]] = []

    def rename_binding(scope_of: cst.CSTNode, node: cst.CSTNode, old: str, new: str) -> None:
        scope = scopes.get(scope_of)
        if scope is None:
            return
        for assignment in scope.assignments[old]:
            if getattr(assignment, "node", None) is node:
                for access in assignment.references:
                    if isinstance(access.node, cst.Name):
                        names[id(access.node)] = new

    for (line, old), new in e.functions.items():
        function = by_line.get(line)
        label = e.labels[("f", (line, old))]
        if function is None or function.name.value != old:
            missed.append((line, f"hook {old}", "its definition was not found by libcst"))
            continue
        if _uses_name(wrapper.module, new):
            missed.append((line, f"hook {old}", f"the module already uses the name {new}"))
            continue
        names[id(function.name)] = new
        rename_binding(function, function, old, new)
        done.append(label)
    for (first, line, old), new in e.specnames.items():
        function = by_line.get(line)
        found = False
        if function is not None:
            for decorator in function.decorators:
                for node in _strings(decorator):
                    if node.evaluated_value == old:
                        strings[(positions[node].start.line, old)] = new
                        found = True
        if found:
            done.append(e.labels[("n", (first, line, old))])
        else:
            missed.append(
                (
                    line,
                    f"hook {old}",
                    "its specname is not a plain string in the decorator: rename it by hand",
                )
            )
    for (line, old), new in e.params.items():
        function = by_line.get(line)
        param = None
        if function is not None:
            param = next((p for p in _all_params(function) if p.name.value == old), None)
        if function is None or param is None:
            missed.append((line, f"parameter {old}", "its definition was not found by libcst"))
            continue
        if _uses_name(function, new):
            missed.append(
                (
                    line,
                    f"parameter {old}",
                    f"the function already uses the name {new}: rename by hand",
                )
            )
            continue
        names[id(param.name)] = new
        rename_binding(param, param, old, new)
        done.append(e.labels[("p", (line, old))])
    transformer = _Rename(strings, names)
    after = wrapper.visit(transformer)
    for (line, key), new in e.strings.items():
        if (line, key) in transformer.done:
            done.append(e.labels[("s", (line, key))])
        else:
            missed.append(
                (
                    line,
                    f"setting key {key} (renamed {new})",
                    "not a plain string literal on that line: rewrite it by hand",
                )
            )
    return after.code, done, missed


def _all_params(function: cst.FunctionDef) -> list[cst.Param]:
    p = function.params
    star = [p.star_arg] if isinstance(p.star_arg, cst.Param) else []
    rest = [p.star_kwarg] if p.star_kwarg is not None else []
    return [*p.posonly_params, *p.params, *star, *p.kwonly_params, *rest]


def _uses_name(node: cst.CSTNode, name: str) -> bool:
    """Does ``node`` (a module or a function) use ``name`` anywhere as a name?"""
    found = False

    class Finder(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            nonlocal found
            found = found or n.value == name

    node.visit(Finder())
    return found


def _strings(node: cst.CSTNode) -> list[cst.SimpleString]:
    out: list[cst.SimpleString] = []

    class Finder(cst.CSTVisitor):
        def visit_SimpleString(self, n: cst.SimpleString) -> None:
            out.append(n)

    node.visit(Finder())
    return out


# -- customization.toml ---------------------------------------------------------------


def bump_manifest(text: str, version: str) -> str:
    """``customization.toml`` with ``requires`` widened and ``tested_up_to`` raised
    to admit ``version``; only those two lines change (``tested_up_to`` is added
    after ``requires`` when it is absent)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return text  # the check reports it
    target = Version(version)
    requires = data.get("requires")
    if isinstance(requires, str):
        widened = widen_requires(requires, target)
        if widened != requires:
            text = _set_top_level(text, "requires", widened)
    tested = data.get("tested_up_to")
    try:
        below = not isinstance(tested, str) or Version(tested) < target
    except InvalidVersion:
        below = True
    if below:
        text = _set_top_level(text, "tested_up_to", version, after="requires")
    return text


def widen_requires(requires: str, target: Version) -> str:
    """``requires`` with the specifiers that exclude ``target`` dropped (an exact
    or compatible-release pin becomes its lower bound): unchanged when it already
    admits the target."""
    try:
        spec = SpecifierSet(requires)
    except InvalidSpecifier:
        return f">={target}"
    if spec.contains(target, prereleases=True):
        return requires
    kept: list[str] = []
    for s in spec:
        if Specifier(str(s)).contains(target, prereleases=True):
            kept.append(str(s))
        elif s.operator in ("~=", "==", "===") and not s.version.endswith(".*"):
            kept.append(f">={s.version}")
        elif s.operator == "==" and s.version.endswith(".*"):
            kept.append(f">={s.version[:-2]}")
    widened = ",".join(dict.fromkeys(kept))
    try:
        ok = bool(widened) and SpecifierSet(widened).contains(target, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        ok = False
    return widened if ok else f">={target}"


_TABLE = re.compile(r"^\s*\[")


def _set_top_level(text: str, name: str, value: str, after: str | None = None) -> str:
    lines = text.splitlines(keepends=True)
    pattern = re.compile(rf"^(\s*{re.escape(name)}\s*=\s*)(\"[^\"\n]*\"|'[^'\n]*')(.*)$", re.S)
    anchor = None
    end = len(lines)
    for i, line in enumerate(lines):
        if _TABLE.match(line):
            end = i
            break
        m = pattern.match(line)
        if m:
            lines[i] = f'{m.group(1)}"{value}"{m.group(3)}'
            return "".join(lines)
        if after is not None and re.match(rf"^\s*{re.escape(after)}\s*=", line):
            anchor = i
    at = anchor + 1 if anchor is not None else end
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, f'{name} = "{value}"\n')
    return "".join(lines)
