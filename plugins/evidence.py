"""Static evidence from a customization package, read as source and never imported.

Consultant code is untrusted: the server must be able to analyze it without
running a line of it. :func:`analyze_package` parses every ``.py`` file of the
package (``ast``) and finds:

- the **hooks**: functions, and methods of classes, decorated with a
  ``pluggy.HookimplMarker("tailor")`` marker (however it is imported, aliased or
  kept in a sibling module), with ``specname``, the parameter names pluggy passes
  (``self``/``cls`` and parameters with defaults are not hook arguments), and
  the file and line inside the package;
- the **setting keys** the code refers to, with file and line: string literals
  and dict keys, module constants (also imported from sibling modules, ``from
  .keys import X`` or ``from . import keys; keys.X``), f-strings and
  concatenations whose parts are constants, ``str.format`` / ``%`` / ``join`` of
  constants, and **prefixes** (``key.startswith("security.sso.")``, or an
  f-string or concatenation whose constant head ends with a dot).

A module constant counts where it is defined, and only when some module uses
its name (a constant kept "for the notes" is not a reference). Which strings are
setting keys is decided against a catalog of known keys when given, else by the
product's categories.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from core.model.customizations import HookUse, KeyReference, Registration
from core.model.definitions import KEY_PATTERN
from core.model.hooks import REGISTER_SETTINGS
from plugins.introspection import fingerprint_node, parse_python, returns_constant
from plugins.manifest import MANIFEST_FILE, Problem, parse_manifest, product_problem
from plugins.similarity import NO_VALUE, behaviour

PROJECT = "tailor"
#: the hook whose definitions add setting keys of the customization's own
#: at most this many files and bytes per file are read (a package is small)
MAX_FILES = 500
MAX_FILE_BYTES = 1_000_000
#: rounds of constant propagation between modules (imports of imports)
ROUNDS = 6
#: longer computed strings are not setting keys (and constant folding of
#: untrusted code must not build huge strings)
MAX_VALUE = 512
#: a width or precision in a format string could allocate without bound
_FORMAT_WIDTH = re.compile(r"\{[^}]*:[^}]*[\d*]")
_PERCENT_WIDTH = re.compile(r"%[-+ #0]*[\d*.]")


@dataclass(frozen=True)
class HookDefinition:
    """A hook implementation found in the source, with its AST (for fingerprints)."""

    use: HookUse
    file: str
    line: int
    #: "function" or "Class.method"
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef = field(compare=False, repr=False)
    module: str = ""


@dataclass(frozen=True)
class PackageEvidence:
    hooks: tuple[HookDefinition, ...]
    references: tuple[KeyReference, ...]
    #: files that could not be parsed: (file, message)
    problems: tuple[tuple[str, str], ...] = ()
    #: setting keys the package defines itself (its ``tailor_register_settings``)
    registered: tuple[str, ...] = ()
    #: hooks that choose setting keys at run time (``values[key]`` with a key
    #: computed from data, a result keyed by a scan of ``values``): which keys
    #: they use only observed evidence can tell
    run_time_keys: tuple[str, ...] = ()

    @property
    def hook_uses(self) -> tuple[HookUse, ...]:
        return tuple(h.use for h in self.hooks)

    @property
    def keys(self) -> tuple[str, ...]:
        """Full keys referenced (prefixes excluded), sorted, once each."""
        return tuple(sorted({r.key for r in self.references if not r.is_prefix}))

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(sorted({r.key for r in self.references if r.is_prefix}))


# -- values the analysis can know about a name ----------------------------------


class _Module:
    """A reference to one of the package's modules (``from . import keys``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Module) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("module", self.name))


class _Namespace:
    """A class's constant attributes (``self.KEY``, ``cls.KEY``, ``Rules.KEY``)."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, object]) -> None:
        self.values = values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Namespace) and other.values == self.values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.values)))


PLUGGY = "<pluggy>"
MARKER_CLASS = "<HookimplMarker>"
MARKER = "<tailor marker>"
_SENTINELS = (PLUGGY, MARKER_CLASS, MARKER)

Value = str | tuple | _Module


@dataclass
class _Source:
    file: str  # relative path, "/" separated
    module: str  # dotted name inside the package; "" for the package's __init__
    is_package: bool
    tree: ast.Module
    env: dict[str, object] = field(default_factory=dict)
    #: name -> (module, function) of the package's functions visible here
    funcs: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: names imported from outside the package -> their dotted origin
    externals: dict[str, str] = field(default_factory=dict)
    #: this module's top-level functions
    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)

    @property
    def package(self) -> str:
        """The dotted package relative imports start from."""
        if self.is_package:
            return self.module
        return self.module.rpartition(".")[0]


def _is_string(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value not in _SENTINELS


def _module_name(relative: Path) -> tuple[str, bool]:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _read_sources(root: Path) -> tuple[list[_Source], list[tuple[str, str]]]:
    sources: list[_Source] = []
    problems: list[tuple[str, str]] = []
    base = root.resolve()
    files = sorted(
        p
        for p in root.rglob("*.py")
        if p.is_file()
        and not p.is_symlink()  # never read outside the package
        and p.resolve().is_relative_to(base)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for path in files[:MAX_FILES]:
        relative = path.relative_to(root)
        name = relative.as_posix()
        try:
            data = path.read_bytes()[:MAX_FILE_BYTES]
            tree = parse_python(data, filename=name)
        except RecursionError:
            problems.append((name, "too deeply nested to analyze"))
            continue
        except (SyntaxError, ValueError, OSError) as exc:
            line = getattr(exc, "lineno", None)
            problems.append((f"{name}:{line}" if line else name, str(exc).split(" (")[0]))
            continue
        module, is_package = _module_name(relative)
        sources.append(_Source(name, module, is_package, tree))
    return sources, problems


# -- expression evaluation (constants only) --------------------------------------


class _Evaluator:
    def __init__(self, modules: dict[str, _Source], package_name: str) -> None:
        self.modules = modules
        self.package_name = package_name

    def value(self, node: ast.AST | None, env: dict[str, object]) -> object:
        value = self._value(node, env)
        if isinstance(value, str) and len(value) > MAX_VALUE:
            return None
        return value

    def _value(self, node: ast.AST | None, env: dict[str, object]) -> object:
        """The constant value of ``node`` (str, tuple of values, a module or a
        marker sentinel), or None when it is not a constant."""
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return None
            return node.value if isinstance(node.value, str | int | float) else None
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.value(node.value, env)
            if isinstance(base, _Module):
                source = self.modules.get(base.name)
                if source is not None:
                    return source.env.get(node.attr)
                return self.modules_child(base.name, node.attr)
            if isinstance(base, _Namespace):
                return base.values.get(node.attr)
            if base == PLUGGY and node.attr == "HookimplMarker":
                return MARKER_CLASS
            return None
        if isinstance(node, ast.Tuple | ast.List):
            items = tuple(self.value(e, env) for e in node.elts)
            return items if all(i is not None for i in items) else None
        if isinstance(node, ast.JoinedStr):
            return self._fstring(node, env)
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left, env), self.value(node.right, env)
            if isinstance(node.op, ast.Add) and _is_string(left) and _is_string(right):
                return left + right
            if (
                isinstance(node.op, ast.Mod)
                and _is_string(left)
                and right is not None
                and not _PERCENT_WIDTH.search(left)
            ):
                try:
                    return left % right
                except (TypeError, ValueError):
                    return None
            return None
        if isinstance(node, ast.Subscript):
            base = self.value(node.value, env)
            index = self.value(node.slice, env)
            if (
                isinstance(base, tuple)
                and isinstance(index, int)
                and -len(base) <= index < len(base)
            ):
                return base[index]
            return None
        if isinstance(node, ast.Call):
            return self._call(node, env)
        return None

    def modules_child(self, package: str, attr: str) -> object:
        child = f"{package}.{attr}" if package else attr
        return _Module(child) if child in self.modules else None

    def _fstring(self, node: ast.JoinedStr, env: dict[str, object]) -> str | None:
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
                continue
            if not isinstance(part, ast.FormattedValue) or part.format_spec is not None:
                return None
            value = self.value(part.value, env)
            if not _is_string(value) and not isinstance(value, int | float):
                return None
            out.append(str(value))
        return "".join(out)

    def _call(self, node: ast.Call, env: dict[str, object]) -> object:
        func = self.value(node.func, env) if not isinstance(node.func, ast.Attribute) else None
        if func == MARKER_CLASS:
            project = self.value(node.args[0], env) if node.args else None
            if project is None:
                for kw in node.keywords:
                    if kw.arg == "project_name":
                        project = self.value(kw.value, env)
            return MARKER if project == PROJECT else None
        if isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr == "HookimplMarker":
                base = self.value(node.func.value, env)
                if base == PLUGGY:
                    project = self.value(node.args[0], env) if node.args else None
                    return MARKER if project == PROJECT else None
                return None
            base = self.value(node.func.value, env)
            if not _is_string(base):
                return None
            if attr == "format" and not _FORMAT_WIDTH.search(base):
                args = [self.value(a, env) for a in node.args]
                kwargs = {kw.arg: self.value(kw.value, env) for kw in node.keywords if kw.arg}
                if any(a is None for a in args) or any(v is None for v in kwargs.values()):
                    return None
                try:
                    return base.format(*args, **kwargs)
                except (IndexError, KeyError, ValueError, AttributeError):
                    return None
            if attr == "join" and len(node.args) == 1:
                items = self.value(node.args[0], env)
                if isinstance(items, tuple) and all(_is_string(i) for i in items):
                    return base.join(items)
            if attr in ("lower", "strip") and not node.args:
                return getattr(base, attr)()
        return None

    def head(self, node: ast.AST, env: dict[str, object]) -> str | None:
        """The constant leading part of an f-string or concatenation whose tail is
        not constant (``f"notifications.email.{name}"``)."""
        if isinstance(node, ast.JoinedStr):
            out = []
            for part in node.values:
                if isinstance(part, ast.Constant):
                    out.append(str(part.value))
                    continue
                value = (
                    self.value(part.value, env) if isinstance(part, ast.FormattedValue) else None
                )
                if not _is_string(value):
                    break
                out.append(str(value))
            return "".join(out) or None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self.value(node.left, env)
            if _is_string(left):
                return left
            return self.head(node.left, env)
        return None


# -- imports and module constants ---------------------------------------------------


def _resolve_from(source: _Source, node: ast.ImportFrom, package_name: str) -> str | None:
    """The dotted module (inside the package) an ``ImportFrom`` names, or None when
    it imports from outside the package."""
    if node.level:
        base = source.package.split(".") if source.package else []
        up = node.level - 1
        if up > len(base):
            return None
        base = base[: len(base) - up] if up else base
        target = ".".join([*base, *(node.module.split(".") if node.module else [])])
        return target
    if node.module and (node.module == package_name or node.module.startswith(package_name + ".")):
        return node.module[len(package_name) + 1 :]
    return None


def _bind(source: _Source, modules: dict[str, _Source], package_name: str) -> bool:
    """One pass of name binding over ``source``'s top level; True when anything changed."""
    env = source.env
    before = (dict(env), dict(source.funcs))
    evaluator = _Evaluator(modules, package_name)
    for stmt in source.tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            source.defs[stmt.name] = stmt
            source.funcs[stmt.name] = (source.module, stmt.name)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if not alias.name.startswith(package_name + "."):
                    source.externals[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
                if alias.name == "pluggy":
                    env[alias.asname or "pluggy"] = PLUGGY
                elif alias.name.startswith(package_name + "."):
                    inner = alias.name[len(package_name) + 1 :]
                    if alias.asname and inner in modules:
                        env[alias.asname] = _Module(inner)
        elif isinstance(stmt, ast.ImportFrom):
            if stmt.module == "pluggy" and not stmt.level:
                for alias in stmt.names:
                    if alias.name == "HookimplMarker":
                        env[alias.asname or alias.name] = MARKER_CLASS
                continue
            target = _resolve_from(source, stmt, package_name)
            if target is None:
                for alias in stmt.names:
                    origin_name = f"{'.' * stmt.level}{stmt.module or ''}.{alias.name}"
                    source.externals[alias.asname or alias.name] = origin_name
                continue
            origin = modules.get(target)
            for alias in stmt.names:
                name = alias.asname or alias.name
                child = f"{target}.{alias.name}" if target else alias.name
                if child in modules:
                    env[name] = _Module(child)
                elif origin is not None and alias.name in origin.env:
                    env[name] = origin.env[alias.name]
                elif origin is not None and alias.name in origin.funcs:
                    source.funcs[name] = origin.funcs[alias.name]
        elif isinstance(stmt, ast.ClassDef):
            env[stmt.name] = _class_namespace(stmt, env, evaluator)[0]
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            value = evaluator.value(stmt.value, env)
            for target_node in targets:
                if isinstance(target_node, ast.Name):
                    if value is None:
                        env.pop(target_node.id, None)
                    else:
                        env[target_node.id] = value
    return (env, source.funcs) != before


def _class_namespace(
    klass: ast.ClassDef, env: dict[str, object], evaluator: _Evaluator
) -> tuple[_Namespace, dict[str, object]]:
    """The class's constant attributes, and the environment of its body (class
    names first, then the module's)."""
    scope = dict(env)
    values: dict[str, object] = {}
    for stmt in klass.body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            value = evaluator.value(stmt.value, scope)
            for target in targets:
                if isinstance(target, ast.Name):
                    if value is None:
                        scope.pop(target.id, None)
                        values.pop(target.id, None)
                    else:
                        scope[target.id] = values[target.id] = value
    return _Namespace(values), scope


# -- references -------------------------------------------------------------------


def _flatten(value: object) -> Iterator[str]:
    if _is_string(value):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _flatten(item)


class _KeyFilter:
    def __init__(self, known: Collection[str], categories: Collection[str]) -> None:
        self.known = frozenset(known)
        self.categories = frozenset(categories)

    def key(self, text: str) -> bool:
        if not KEY_PATTERN.match(text):
            return False
        if self.known:
            return text in self.known
        return not self.categories or text.split(".", 1)[0] in self.categories

    def prefix(self, text: str) -> bool:
        """A prefix of at least two segments ("security.sso.") that covers keys."""
        if not text.endswith(".") or text.count(".") < 2 or not KEY_PATTERN.match(text[:-1]):
            return False
        if self.known:
            return any(k.startswith(text) for k in self.known)
        return not self.categories or text.split(".", 1)[0] in self.categories


_Def = ast.FunctionDef | ast.AsyncFunctionDef
#: decorators that do not make a function reachable by themselves
_PLAIN_DECORATORS = frozenset({"staticmethod", "classmethod", "property"})


def _definitions(body: list[ast.stmt]) -> Iterator[_Def]:
    """The functions and methods defined at this level and in classes (not
    nested inside functions: those live and die with their function)."""
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            yield stmt
        elif isinstance(stmt, ast.ClassDef):
            yield from _definitions(stmt.body)


def _unreachable(sources: Iterable[_Source], hooks: Iterable[HookDefinition]) -> set[int]:
    """Ids of the function nodes no hook implementation can reach: a helper
    nothing calls (nor names: passing it as a callback counts) is not evidence
    of what the customization uses. Reached: hooks, decorated functions (a
    decorator may register them), dunder methods (Python calls them), and every
    function whose name the reached code or any module's top level uses."""
    sources = list(sources)
    by_name: dict[str, list[_Def]] = {}
    pending: list[ast.AST] = [h.node for h in hooks]
    for source in sources:
        for function in _definitions(source.tree.body):
            if function.name.startswith("__") and function.name.endswith("__"):
                pending.append(function)
            elif any(
                not (isinstance(d, ast.Name) and d.id in _PLAIN_DECORATORS)
                for d in function.decorator_list
            ):
                pending.append(function)
            else:
                by_name.setdefault(function.name, []).append(function)
        pending.extend(_top_level(source.tree.body))
        pending.extend(_exported(source))
    reached: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) in reached:
            continue
        reached.add(id(node))
        for inner in ast.walk(node):
            name = None
            if isinstance(inner, ast.Name):
                name = inner.id
            elif isinstance(inner, ast.Attribute):
                name = inner.attr
            elif isinstance(inner, ast.alias):
                name = inner.asname or inner.name
            elif isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                name = inner.value  # __all__ entries, getattr(module, "name")
            if name is not None:
                pending.extend(by_name.pop(name, ()))
    return {id(f) for functions in by_name.values() for f in functions}


def _top_level(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Module and class level code (what runs on import), without the bodies
    of the functions it defines (decorators and defaults do run)."""
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from stmt.decorator_list
            yield from stmt.args.defaults
            yield from (d for d in stmt.args.kw_defaults if d is not None)
        elif isinstance(stmt, ast.ClassDef):
            yield from stmt.decorator_list
            yield from stmt.bases
            yield from _top_level(stmt.body)
        else:
            yield stmt


def _exported(source: _Source) -> Iterator[ast.AST]:
    for stmt in source.tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets
        ):
            yield stmt.value


def _used_names(sources: Iterable[_Source], dead: Collection[int] = frozenset()) -> set[str]:
    """Names the package's live code uses (not the bodies of ``dead`` functions)."""
    used: set[str] = set()
    for source in sources:
        for node in _walk_live(source.tree, dead):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.alias) and node.name != "*":
                used.add(node.name)
        for stmt in source.tree.body:  # names listed in __all__ are exported
            if (
                isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets)
                and isinstance(stmt.value, ast.List | ast.Tuple)
            ):
                used.update(
                    e.value
                    for e in stmt.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value
                )
    return used


def _walk_live(tree: ast.AST, dead: Collection[int]) -> Iterator[ast.AST]:
    """``ast.walk`` that does not enter the functions whose ids are in ``dead``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if id(node) in dead:
            continue
        yield node
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _references(
    source: _Source,
    evaluator: _Evaluator,
    keys: _KeyFilter,
    used: set[str],
    dead: Collection[int] = frozenset(),
    calls: Mapping[int, list[_CallSite]] | None = None,
) -> list[KeyReference]:
    out: list[KeyReference] = []
    env = source.env
    skipped: set[int] = set()  # ids of nodes inside unused module or class constants
    constant_of: dict[int, str] = {}  # id of a constant's value -> its name
    #: the environment of nodes inside classes: class bodies see class names,
    #: methods see ``self``/``cls`` as the class's namespace
    env_of: dict[int, dict[str, object]] = {}

    def constants(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names and len(names) == len(targets):
                    if not any(n in used for n in names):
                        skipped.update(id(n) for n in ast.walk(stmt.value))
                    else:
                        constant_of[id(stmt.value)] = names[0]

    def classes(body: list[ast.stmt], outer: dict[str, object]) -> None:
        for stmt in body:
            if not isinstance(stmt, ast.ClassDef):
                continue
            namespace, scope = _class_namespace(stmt, outer, evaluator)
            constants(stmt.body)
            for member in stmt.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                    inner = {**outer, "self": namespace, "cls": namespace, stmt.name: namespace}
                    for node in ast.walk(member):
                        env_of[id(node)] = inner
                elif isinstance(member, ast.ClassDef):
                    classes([member], scope)
                else:
                    for node in ast.walk(member):
                        env_of[id(node)] = scope

    constants(source.tree.body)
    classes(source.tree.body, env)

    parents: dict[int, ast.AST] = {}
    for node in ast.walk(source.tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node

    def add(key: str, node: ast.AST, how: str) -> None:
        out.append(KeyReference(key, source.file, getattr(node, "lineno", 0), how))

    def how_of(node: ast.AST) -> str:
        if id(node) in constant_of:
            return f"constant {constant_of[id(node)]}"
        parent = parents.get(id(node))
        if isinstance(parent, ast.Dict) and any(k is node for k in parent.keys):
            return "dict key"
        if isinstance(node, ast.JoinedStr):
            return "f-string"
        if isinstance(node, ast.BinOp):
            return "concatenation" if isinstance(node.op, ast.Add) else "format"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.attr  # format, join
        return "literal"

    enclosing: dict[int, _Def] = {}
    for function in ast.walk(source.tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(function):
                enclosing[id(inner)] = function  # walked outer first: the innermost wins

    def through_arguments(node: ast.AST, here: dict[str, object]) -> None:
        """A key built from the parameters of the function it is in, with the
        constant arguments of each call of that function (``get("security.password",
        "expiry_days")``): counted where the call passes them."""
        function = enclosing.get(id(node))
        for site in (calls or {}).get(id(function), ()) if function is not None else ():
            value = evaluator.value(node, {**here, **site.bound})
            if _is_string(value) and keys.key(value):
                out.append(KeyReference(value, site.file, site.line, "argument"))

    for node in _walk_live(source.tree, dead):
        if id(node) in skipped:
            continue
        here = env_of.get(id(node), env)
        # a prefix tested with startswith
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "startswith"
            and node.args
        ):
            for text in _flatten(evaluator.value(node.args[0], here)):
                if keys.prefix(text):
                    add(text, node, "prefix")
        if isinstance(node, ast.Name | ast.Attribute):
            continue  # a constant counts where it is defined
        if isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp | ast.Call | ast.Subscript):
            if isinstance(node, ast.Subscript):
                continue  # KEYS[0]: the tuple's elements count where the tuple is
            value = evaluator.value(node, here)
            if _is_string(value):
                if keys.key(value):
                    add(value, node, how_of(node))
            elif value is None and isinstance(node, ast.JoinedStr | ast.BinOp):
                head = evaluator.head(node, here)
                if head and keys.prefix(head):
                    add(head, node, "prefix")
                through_arguments(node, here)
            elif value is None and isinstance(node, ast.Call):
                through_arguments(node, here)
    return out


@dataclass(frozen=True)
class _CallSite:
    """One call of a package function with the constants it passes."""

    bound: dict[str, object]
    file: str
    line: int


def _call_sites(
    sources: Iterable[_Source],
    modules: dict[str, _Source],
    evaluator: _Evaluator,
    dead: Collection[int],
) -> dict[int, list[_CallSite]]:
    """Per package function (node id), the calls of live code that pass it
    constants: ``helper("a.b")``, ``self.get(...)``, ``module.f(...)``,
    ``Settings(values).get(...)`` and ``s = Settings(values); s.get(...)``."""
    out: dict[int, list[_CallSite]] = {}
    for source in sources:
        _source_call_sites(source, modules, evaluator, dead, out)
    return out


def _source_call_sites(
    source: _Source,
    modules: dict[str, _Source],
    evaluator: _Evaluator,
    dead: Collection[int],
    out: dict[int, list[_CallSite]],
) -> None:
    classes = {stmt.name: stmt for stmt in source.tree.body if isinstance(stmt, ast.ClassDef)}

    def method(klass: ast.ClassDef | None, name: str) -> _Def | None:
        for stmt in klass.body if klass is not None else ():
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == name:
                return stmt
        return None

    def instance_class(node: ast.expr, local: dict[str, ast.ClassDef]) -> ast.ClassDef | None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return classes.get(node.func.id)
        if isinstance(node, ast.Name):
            return local.get(node.id)
        return None

    def visit(scope: ast.AST, klass: ast.ClassDef | None) -> None:
        local: dict[str, ast.ClassDef] = {}
        for node in _walk_live(scope, dead):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                made = instance_class(node.value, {})
                if isinstance(target, ast.Name) and made is not None:
                    local[target.id] = made
            if not isinstance(node, ast.Call):
                continue
            callee: _Def | None = None
            is_method = False
            func = node.func
            if isinstance(func, ast.Name) and func.id in classes:
                callee, is_method = method(classes[func.id], "__init__"), True
            elif isinstance(func, ast.Name) or (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and isinstance(source.env.get(func.value.id), _Module)
            ):
                found = _package_function(func, source, modules)
                callee = found[0] if found is not None else None
            elif isinstance(func, ast.Attribute):
                if isinstance(func.value, ast.Name) and func.value.id in ("self", "cls"):
                    owner = klass
                else:
                    owner = instance_class(func.value, local)
                callee, is_method = method(owner, func.attr), True
            if callee is None:
                continue
            bound = _bind_arguments(callee, node, source.env, evaluator, method=is_method)
            if bound:
                site = _CallSite(bound, source.file, node.lineno)
                out.setdefault(id(callee), []).append(site)

    for stmt in source.tree.body:
        if isinstance(stmt, ast.ClassDef):
            for member in stmt.body:
                visit(member, stmt)
        else:
            visit(stmt, None)


# -- hooks --------------------------------------------------------------------------


def _hook_options(
    decorator: ast.expr,
    env: dict[str, object],
    evaluator: _Evaluator,
    source: _Source | None = None,
    modules: dict[str, _Source] | None = None,
) -> dict[str, object] | None:
    """The marker's options when ``decorator`` is the tailor hookimpl marker, or
    a decorator of the package that applies it (``@tailor_hook``, a factory
    ``@hook("tailor_setting_changed")`` whose argument becomes ``specname``)."""
    if isinstance(decorator, ast.Call):
        if evaluator.value(decorator.func, env) == MARKER:
            return {kw.arg: evaluator.value(kw.value, env) for kw in decorator.keywords if kw.arg}
        factory = _package_function(decorator.func, source, modules)
        if factory is None:
            return None
        function, origin = factory
        specname = _specname_param(function, origin, evaluator)
        if specname is None:
            return None
        options = {kw.arg: evaluator.value(kw.value, env) for kw in decorator.keywords if kw.arg}
        if specname:
            bound = _bind_arguments(function, decorator, env, evaluator, method=False)
            if specname in bound:
                options["specname"] = bound[specname]
        return options
    if evaluator.value(decorator, env) == MARKER:
        return {}
    wrapper = _package_function(decorator, source, modules)
    if wrapper is not None and _specname_param(wrapper[0], wrapper[1], evaluator) is not None:
        return {}
    return None


def _package_function(
    node: ast.expr, source: _Source | None, modules: dict[str, _Source] | None
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Source] | None:
    """The package's function ``node`` names (``name`` or ``module.name``)."""
    if source is None or modules is None:
        return None
    ref: tuple[str, str] | None = None
    if isinstance(node, ast.Name):
        ref = source.funcs.get(node.id)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        base = source.env.get(node.value.id)
        if isinstance(base, _Module) and base.name in modules:
            ref = modules[base.name].funcs.get(node.attr)
    if ref is None or ref[0] not in modules:
        return None
    origin = modules[ref[0]]
    function = origin.defs.get(ref[1])
    return (function, origin) if function is not None else None


def _specname_param(
    function: ast.FunctionDef | ast.AsyncFunctionDef, origin: _Source, evaluator: _Evaluator
) -> str | None:
    """None when ``function`` does not apply the tailor marker; else the name of
    its parameter that becomes the marker's ``specname`` ("" when none does)."""
    applies = False
    params = {a.arg for a in [*function.args.posonlyargs, *function.args.args]}
    params |= {a.arg for a in function.args.kwonlyargs}
    specname = ""
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and evaluator.value(node, origin.env) == MARKER:
            applies = True
        if isinstance(node, ast.keyword) and node.arg == "specname":
            if isinstance(node.value, ast.Name) and node.value.id in params:
                specname = node.value.id
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if (
                isinstance(target, ast.Subscript)
                and isinstance(target.slice, ast.Constant)
                and target.slice.value == "specname"
                and isinstance(node.value, ast.Name)
                and node.value.id in params
            ):
                specname = node.value.id
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(k, ast.Constant)
                    and k.value == "specname"
                    and isinstance(v, ast.Name)
                    and v.id in params
                ):
                    specname = v.id
    return specname if applies else None


def _bind_arguments(
    function: ast.FunctionDef | ast.AsyncFunctionDef,
    call: ast.Call,
    env: dict[str, object],
    evaluator: _Evaluator,
    *,
    method: bool,
) -> dict[str, object]:
    """The constant values a call passes to ``function``'s parameters (the
    instance of a method call is not one of them)."""
    names = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
    if method and names:
        names = names[1:]
    bound: dict[str, object] = {}
    for name, arg in zip(names, call.args, strict=False):
        if isinstance(arg, ast.Starred):
            break
        value = evaluator.value(arg, env)
        if value is not None:
            bound[name] = value
    for kw in call.keywords:
        if kw.arg:
            value = evaluator.value(kw.value, env)
            if value is not None:
                bound[kw.arg] = value
    return bound


def _params(node: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> tuple[str, ...]:
    """The argument names pluggy passes: positional ones without a default (pluggy
    treats defaulted ones as optional extras), not ``self``/``cls`` of a method."""
    args = [*node.args.posonlyargs, *node.args.args]
    if (
        method
        and args
        and not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    ):
        args = args[1:]
    required = len(args) - len(node.args.defaults)
    return tuple(a.arg for a in args[:required])


#: where a function's names are looked up: its module, and its class for a method
_Context = tuple[_Source, ast.ClassDef | None]


def _helper_resolver(
    modules: dict[str, _Source],
) -> Callable[[ast.Call, _Context], tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Context] | None]:
    """Finds the package function (or method of the same class) a call runs, for
    inlining; the context is (module source, enclosing class or None)."""

    def function_of(
        module: str, name: str
    ) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Context] | None:
        origin = modules.get(module)
        if origin is None or name not in origin.defs:
            return None
        return origin.defs[name], (origin, None)

    def resolve(
        call: ast.Call, context: _Context
    ) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, _Context] | None:
        source, klass = context
        func = call.func
        if isinstance(func, ast.Name) and func.id in source.funcs:
            return function_of(*source.funcs[func.id])
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id in ("self", "cls") and klass is not None:
                for stmt in klass.body:
                    if (
                        isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef)
                        and stmt.name == func.attr
                    ):
                        return stmt, (source, klass)
                return None
            base = source.env.get(func.value.id)
            if isinstance(base, _Module) and base.name in modules:
                target = modules[base.name]
                if func.attr in target.funcs:
                    return function_of(*target.funcs[func.attr])
        return None

    return resolve


def _name_label(name: ast.Name, context: _Context) -> str | None:
    """How a name reads in a similarity feature: CONST for a module constant,
    its origin for a name imported from outside the package, else None."""
    source = context[0]
    if name.id in source.externals:
        return "ext." + source.externals[name.id]
    value = source.env.get(name.id)
    if value is not None and not isinstance(value, _Module | _Namespace):
        return "CONST" if value not in _SENTINELS else None
    return None


def _name_value(name: ast.Name, context: _Context) -> object:
    """A module constant's value (str, number, tuple of them), for the behaviour."""
    value = context[0].env.get(name.id)
    if value is None or isinstance(value, _Module | _Namespace) or value in _SENTINELS:
        return NO_VALUE
    return value


def _hooks(
    source: _Source, evaluator: _Evaluator, modules: dict[str, _Source]
) -> list[HookDefinition]:
    found: list[HookDefinition] = []
    resolve = _helper_resolver(modules)

    def visit(body: list[ast.stmt], owner: str | None, klass: ast.ClassDef | None = None) -> None:
        for stmt in body:
            if isinstance(stmt, ast.ClassDef):
                visit(stmt.body, f"{owner}.{stmt.name}" if owner else stmt.name, stmt)
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in stmt.decorator_list:
                    options = _hook_options(decorator, source.env, evaluator, source, modules)
                    if options is None:
                        continue
                    specname = options.get("specname")
                    hook = specname if _is_string(specname) else stmt.name
                    qualname = f"{owner}.{stmt.name}" if owner else stmt.name
                    location = f"{source.file}:{stmt.lineno}"
                    fingerprint_source = parse_python(ast.unparse(stmt)).body[0]
                    does = behaviour(
                        stmt,
                        (source, klass),
                        resolve,
                        _name_label,
                        _name_value,
                        method=owner is not None,
                    )
                    found.append(
                        HookDefinition(
                            use=HookUse(
                                hook=hook,
                                params=_params(stmt, owner is not None),
                                fingerprint=fingerprint_node(fingerprint_source),
                                returns_constant=returns_constant(stmt),
                                location=location,
                                features=does.features,
                                source=does.source,
                                signature=does.signature,
                                behaviour=does.text,
                                constants=does.constants,
                            ),
                            file=source.file,
                            line=stmt.lineno,
                            qualname=qualname,
                            node=stmt,
                            module=source.module,
                        )
                    )
                    break

    visit(source.tree.body, None)
    return found


# -- entry point ----------------------------------------------------------------------


@dataclass
class AnalysisCounter:
    """How many packages this process has analyzed (every file read and parsed):
    one publish or one check analyzes each package once, and a test holds it to
    that by reading :data:`ANALYSES` before and after."""

    count: int = 0


#: the process's count of :func:`analyze_package` runs
ANALYSES = AnalysisCounter()


def analyze_package(
    root: Path,
    known_keys: Collection[str] = (),
    categories: Collection[str] = (),
) -> PackageEvidence:
    """The static evidence of the package at ``root`` (a directory; a single
    ``.py`` file is analyzed alone). ``known_keys``: the catalog of every release
    (strings count as setting keys only when they are in it); empty = decide by
    ``categories``. Nothing is imported or executed."""
    ANALYSES.count += 1
    root = Path(root)
    if root.is_file():
        sources, problems = _read_sources_file(root)
        package_name = root.stem
    else:
        sources, problems = _read_sources(root)
        package_name = root.name
    modules = {s.module: s for s in sources}
    deep: set[str] = set()  # files too deeply nested for the analysis: skipped
    for _ in range(ROUNDS):
        changed = False
        for source in sources:
            try:
                changed |= _bind(source, modules, package_name)
            except RecursionError:
                deep.add(source.file)
        if not changed:
            break
    evaluator = _Evaluator(modules, package_name)
    key_filter = _KeyFilter(known_keys, categories)
    hooks: list[HookDefinition] = []
    references: set[KeyReference] = set()
    registered: set[str] = set()
    for source in sources:
        try:
            found = _hooks(source, evaluator, modules)
            hooks.extend(found)
            registered.update(_registered(source, found, evaluator))
        except RecursionError:
            deep.add(source.file)
    live = [s for s in sources if s.file not in deep]
    dead = _unreachable(live, hooks)
    used = _used_names(live, dead)
    calls = _call_sites(live, modules, evaluator, dead)
    for source in live:
        try:
            references.update(_references(source, evaluator, key_filter, used, dead, calls))
        except RecursionError:
            deep.add(source.file)
    if root.is_dir():
        references.update(_data_file_references(root, live, dead, key_filter))
    problems.extend((file, "too deeply nested to analyze") for file in sorted(deep))
    spans = [
        (h.file, h.line, h.node.end_lineno or h.line)
        for h in hooks
        if h.use.hook == REGISTER_SETTINGS
    ]
    registered.update(
        r.key
        for r in references
        if not r.is_prefix and any(f == r.file and a <= r.line <= b for f, a, b in spans)
    )
    run_time = {
        h.use.hook
        for h in hooks
        if h.module in modules and _chooses_keys_at_run_time(h, modules[h.module], evaluator)
    }
    return PackageEvidence(
        hooks=tuple(sorted(hooks, key=lambda h: (h.use.hook, h.file, h.line))),
        references=tuple(sorted(references, key=lambda r: (r.key, r.file, r.line, r.how))),
        problems=tuple(problems),
        registered=tuple(sorted(registered)),
        run_time_keys=tuple(sorted(run_time)),
    )


_SCANS = frozenset({"items", "keys", "values"})


def _chooses_keys_at_run_time(hook: HookDefinition, source: _Source, evaluator: _Evaluator) -> bool:
    """Does ``hook`` use keys of ``values`` it computes at run time: a subscript,
    ``get`` or ``in`` with a key that is not a constant, or a result keyed by a
    variable that goes over ``values``? (Going over ``values`` to count or look
    for blanks, then using constant keys, is not.)"""
    node = hook.node
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    if "values" not in {a.arg for a in args}:
        return False
    env = dict(source.env)
    klass = next(
        (
            c
            for c in source.tree.body
            if isinstance(c, ast.ClassDef) and hook.qualname.startswith(c.name + ".")
        ),
        None,
    )
    if klass is not None:
        namespace = _class_namespace(klass, env, evaluator)[0]
        attrs = dict(namespace.values)
        for member in klass.body:  # self.key = "a.b" in __init__
            if isinstance(member, ast.FunctionDef) and member.name == "__init__":
                for stmt in ast.walk(member):
                    if (
                        isinstance(stmt, ast.Assign)
                        and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Attribute)
                        and isinstance(stmt.targets[0].value, ast.Name)
                        and stmt.targets[0].value.id == "self"
                    ):
                        value = evaluator.value(stmt.value, env)
                        if value is not None:
                            attrs[stmt.targets[0].attr] = value
        env.update({"self": _Namespace(attrs), "cls": namespace})
    for inner in ast.walk(node):  # local constants: key = "a.b"
        if isinstance(inner, ast.Assign) and len(inner.targets) == 1:
            target = inner.targets[0]
            value = evaluator.value(inner.value, env)
            if isinstance(target, ast.Name) and _is_string(value):
                env[target.id] = value

    def is_values(n: ast.AST) -> bool:
        return isinstance(n, ast.Name) and n.id == "values"

    def constant(n: ast.AST) -> bool:
        return evaluator.value(n, env) is not None

    scanned: set[str] = set()  # loop variables over values (keys, or key/value pairs)
    for inner in ast.walk(node):
        if isinstance(inner, ast.comprehension | ast.For):
            over = inner.iter
            if is_values(over) or (
                isinstance(over, ast.Call)
                and isinstance(over.func, ast.Attribute)
                and over.func.attr in _SCANS
                and is_values(over.func.value)
            ):
                target = inner.target
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                scanned.update(n.id for n in names[:1] if isinstance(n, ast.Name))
    for inner in ast.walk(node):
        if isinstance(inner, ast.Subscript) and is_values(inner.value):
            if not constant(inner.slice):
                return True
        elif (
            isinstance(inner, ast.Call)
            and isinstance(inner.func, ast.Attribute)
            and inner.func.attr == "get"
            and is_values(inner.func.value)
            and inner.args
            and not constant(inner.args[0])
        ):
            return True
        elif (
            isinstance(inner, ast.Compare)
            and any(isinstance(op, ast.In | ast.NotIn) for op in inner.ops)
            and any(is_values(c) for c in inner.comparators)
            and not constant(inner.left)
        ):
            return True
        elif isinstance(inner, ast.DictComp) and isinstance(inner.key, ast.Name):
            if inner.key.id in scanned:
                return True
        elif isinstance(inner, ast.Assign):
            for target in inner.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.slice, ast.Name)
                    and target.slice.id in scanned
                ):
                    return True
    return False


#: data files of a package whose strings may be setting keys, when the code names them
DATA_SUFFIXES = (".json", ".toml")


def _data_file_references(
    root: Path, sources: Iterable[_Source], dead: Collection[int], keys: _KeyFilter
) -> set[KeyReference]:
    """Keys kept in a JSON or TOML file of the package that live code names
    (``Path(__file__).parent / "keys.json"``): every string in it (keys and
    values) that is a setting key, at the line it is on. A data file nothing
    names, and the package's manifest, are not evidence."""
    import json
    import tomllib

    named: set[str] = set()
    for source in sources:
        for node in _walk_live(source.tree, dead):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if len(node.value) <= MAX_VALUE:
                    named.add(node.value.rsplit("/", 1)[-1])
    out: set[KeyReference] = set()
    base = root.resolve()
    for path in sorted(root.rglob("*")):
        if (
            path.suffix not in DATA_SUFFIXES
            or path.name == MANIFEST_FILE
            or path.name not in named
            or path.is_symlink()
            or not path.is_file()
            or not path.resolve().is_relative_to(base)
            or any(part.startswith(".") for part in path.relative_to(root).parts)
        ):
            continue
        try:
            text = path.read_bytes()[:MAX_FILE_BYTES].decode("utf-8")
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (ValueError, OSError, RecursionError):
            continue
        lines = text.splitlines()
        for value in sorted(set(_strings(data))):
            if keys.key(value):
                line = next((i for i, t in enumerate(lines, 1) if value in t), 0)
                out.add(KeyReference(value, path.relative_to(root).as_posix(), line, "data file"))
    return out


def _strings(data: object) -> Iterator[str]:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _registered(
    source: _Source, hooks: Iterable[HookDefinition], evaluator: _Evaluator
) -> set[str]:
    """The ``key`` of every definition a ``tailor_register_settings`` of ``source``
    spells out (``{"key": K, ...}`` or ``dict(key=K, ...)``, K a constant), so
    the keys a customization adds for itself are not taken for unknown ones."""
    keys: set[str] = set()
    for hook in hooks:
        if hook.use.hook != REGISTER_SETTINGS:
            continue
        for node in ast.walk(hook.node):
            value: ast.expr | None = None
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if k is not None and evaluator.value(k, source.env) == "key":
                        value = v
            elif isinstance(node, ast.Call):
                value = next((kw.value for kw in node.keywords if kw.arg == "key"), None)
            found = evaluator.value(value, source.env)
            if _is_string(found) and KEY_PATTERN.match(found):
                keys.add(found)
    return keys


@dataclass(frozen=True)
class UnknownKey:
    """A full setting key the code refers to that no known release defines and
    no customization registers (a typo, most often), with the nearest known keys."""

    reference: KeyReference
    nearest: tuple[str, ...]

    @property
    def message(self) -> str:
        hint = " or ".join(repr(k) for k in self.nearest)
        return (
            f"unknown setting key {self.reference.key!r} ({self.reference.how}): no release "
            "of the product defines it and no customization registers it"
            + (f"; did you mean {hint}?" if hint else "")
        )


def unknown_keys(
    evidence: PackageEvidence, known: Collection[str], registered: Collection[str] = ()
) -> list[UnknownKey]:
    """The references of ``evidence`` (found by category, see :func:`analyze_package`)
    to full keys outside ``known`` (every release's catalog), the package's own
    registered keys and ``registered`` (other customizations'). Prefixes and
    computed keys are not judged: only what the finder resolved to one key; nor a
    section of known keys (``SECTION = "security.sso"``, joined to a leaf later)."""
    allowed = set(known) | set(registered) | set(evidence.registered)
    sections = {k.rsplit(".", i)[0] for k in allowed for i in range(1, k.count("."))}
    catalog = sorted(allowed)
    return [
        UnknownKey(ref, tuple(difflib.get_close_matches(ref.key, catalog, n=3, cutoff=0.75)))
        for ref in evidence.references
        if not ref.is_prefix and ref.key not in allowed and ref.key not in sections
    ]


def _read_sources_file(path: Path) -> tuple[list[_Source], list[tuple[str, str]]]:
    try:
        tree = parse_python(path.read_bytes()[:MAX_FILE_BYTES], filename=path.name)
    except (SyntaxError, ValueError, OSError) as exc:
        return [], [(path.name, str(exc))]
    return [_Source(path.name, path.stem, False, tree)], []


def key_categories(declared: Collection[str], known_keys: Collection[str]) -> frozenset[str]:
    """What a dotted string must start with to be taken for a setting key: the
    product's ``declared`` categories, and the first segment of every key a
    release defines (the same rule as the static evidence readiness stores at
    publish)."""
    return frozenset(declared) | {k.split(".", 1)[0] for k in known_keys}


@dataclass(frozen=True)
class StaticPackage:
    """A package read without importing it: its manifest problems, or the
    registration readiness can evaluate (hooks and key references from source)."""

    registration: Registration | None
    evidence: PackageEvidence
    problems: tuple[Problem, ...] = ()


def read_package(
    root: Path,
    known_keys: Collection[str] = (),
    categories: Collection[str] = (),
    product: str | None = None,
) -> StaticPackage:
    """``customization.toml`` plus :func:`analyze_package`: a registration enabled
    for every tenant its manifest lists (readiness then evaluates it as deployed).
    ``product``: the served product's id; a manifest naming another is a problem
    and gets no registration (its rules are another product's releases')."""
    root = Path(root)
    parsed, problems = parse_manifest(root / MANIFEST_FILE)
    other = (
        None
        if parsed is None
        else product_problem(parsed.manifest, product, str(root / MANIFEST_FILE))
    )
    if other is not None:  # another product's package: nothing of it is judged here
        return StaticPackage(None, PackageEvidence((), ()), (other,))
    evidence = analyze_package(root, known_keys, categories)
    problems = [*problems, *(Problem(f"{root / f}", "-", m) for f, m in evidence.problems)]
    if parsed is None:
        return StaticPackage(None, evidence, tuple(problems))
    registration = Registration(
        manifest=parsed.manifest,
        hooks=evidence.hook_uses,
        setting_keys=evidence.keys,
        enabled_for=parsed.manifest.tenants,
        package=root.name,
        references=evidence.references,
    )
    return StaticPackage(registration, evidence, tuple(problems))
