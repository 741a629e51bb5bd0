"""What a customization's imported code does: the hooks it implements (and the
parameters each takes), a structural fingerprint per hook implementation, and
whether an implementation only returns constants. Which setting keys it reads or
returns is decided in one place, :mod:`plugins.evidence`, never here.

Fingerprint: the function's AST with every identifier (function, argument and
variable names) replaced by ``_`` and every literal by its type name, docstring and
decorators dropped, dumped and hashed. Two near-copies with renamed variables and
different constants get the same fingerprint; different logic gets another one.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from core.model.customizations import HookUse

if TYPE_CHECKING:
    from plugins.evidence import PackageEvidence

IMPL_MARKER = "tailor_impl"

#: CPython 3.11 keeps the AST constructor's recursion depth per interpreter, not
#: per thread: two threads building ASTs at once can fail with "SystemError: AST
#: constructor recursion depth mismatch" (python/cpython#106905). Packages are
#: checked a few at a time in threads (plugins.runtime.install), so every parse
#: of Tailor's goes through :func:`parse_python`, one at a time (parsing holds
#: the GIL anyway: nothing is lost).
_PARSING = threading.Lock()


def parse_python(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse``, safe to call from several threads."""
    with _PARSING:
        return ast.parse(source, filename=filename)


def hook_functions(module: ModuleType) -> list[tuple[str, Callable[..., Any]]]:
    """(attribute name, function) for every ``@hookimpl`` marked function of
    ``module``, and of every method of the classes ``module`` defines (a class
    with ``@hookimpl`` methods is instantiated with no arguments at run time)."""
    found = []
    for attr, obj in sorted(vars(module).items()):
        if inspect.isclass(obj):
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            for method_name, method in sorted(vars(obj).items()):
                function = getattr(method, "__func__", method)
                if callable(function) and getattr(function, IMPL_MARKER, None) is not None:
                    found.append((method_name, function))
        elif callable(obj) and getattr(obj, IMPL_MARKER, None) is not None:
            found.append((attr, obj))
    return found


def hook_classes(module: ModuleType) -> list[type]:
    """The classes ``module`` defines that have ``@hookimpl`` methods."""
    return [
        obj
        for _attr, obj in sorted(vars(module).items())
        if inspect.isclass(obj)
        and getattr(obj, "__module__", None) == module.__name__
        and any(
            getattr(getattr(m, "__func__", m), IMPL_MARKER, None) is not None
            for m in vars(obj).values()
        )
    ]


def hook_name(attr: str, function: Callable[..., Any]) -> str:
    opts = getattr(function, IMPL_MARKER, None) or {}
    return opts.get("specname") or attr


def parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    """The names pluggy passes: ``self``/``cls`` of a method is not one of them."""
    names = [
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    qualname = getattr(function, "__qualname__", "")
    if names and "." in qualname and "<locals>" not in qualname and names[0] in ("self", "cls"):
        names = names[1:]
    return tuple(names)


class _Normalize(ast.NodeTransformer):
    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.name = "_"
        node.decorator_list = []
        node.returns = None
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:] or [ast.Pass()]
        node.body = body
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = "_"
        node.annotation = None
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Name(id="_", ctx=node.ctx)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant(value=type(node.value).__name__)


def _function_node(function: Callable[..., Any]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return None
    tree = parse_python(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def fingerprint_node(node: ast.AST) -> str:
    normalized = _Normalize().visit(node)
    dump = ast.dump(normalized, annotate_fields=False, include_attributes=False)
    return hashlib.sha256(dump.encode()).hexdigest()[:16]


def _literal(node: ast.AST | None) -> bool:
    if node is None:
        return True
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Dict):
        return all(_literal(k) for k in node.keys) and all(_literal(v) for v in node.values)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_literal(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _literal(node.operand)
    return False


def returns_constant(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The body is (a docstring and) straight-line code that returns only literals:
    no branch, no call, no use of its parameters."""
    returns = [n for n in ast.walk(node) if isinstance(n, ast.Return)]
    if not returns or not all(_literal(r.value) for r in returns):
        return False
    branchy = (ast.If, ast.For, ast.While, ast.Try, ast.With, ast.Match, ast.Call, ast.IfExp)
    return not any(isinstance(n, branchy) for n in ast.walk(node))


#: the private package name a customization is imported under (plugins.loading)
PRIVATE_PACKAGE = "_tailor_customization_"


def hook_use(attr: str, function: Callable[..., Any]) -> HookUse:
    node = _function_node(function)
    return HookUse(
        hook=hook_name(attr, function),
        params=parameters(function),
        fingerprint=fingerprint_node(node) if node is not None else "",
        returns_constant=returns_constant(node) if node is not None else False,
        location=_location(attr, function, node.lineno if node is not None else 1),
    )


def _location(attr: str, function: Callable[..., Any], def_line: int = 1) -> str:
    """``file:line`` inside the package (``hooks.py:12``), never the private name
    the package was imported under; ``module:function`` outside a package."""
    module = str(getattr(function, "__module__", "?"))
    code = getattr(function, "__code__", None)
    if not module.startswith(PRIVATE_PACKAGE) or code is None:
        return f"{module}:{getattr(function, '__name__', attr)}"
    inner = module.partition(".")[2]
    file = (inner.replace(".", "/") + ".py") if inner else "__init__.py"
    if Path(code.co_filename).name == "__init__.py" and inner:
        file = inner.replace(".", "/") + "/__init__.py"
    return f"{file}:{code.co_firstlineno + def_line - 1}"  # the def, after decorators


def merge_hooks(imported: Iterable[HookUse], evidence: PackageEvidence | None) -> list[HookUse]:
    """The imported module is the truth for which hooks exist; the package's
    static evidence (:func:`plugins.evidence.analyze_package`) adds where each is
    and its structure."""
    static = {u.hook: u for u in evidence.hook_uses} if evidence is not None else {}
    return sorted((static.get(u.hook, u) for u in imported), key=lambda u: u.hook)
