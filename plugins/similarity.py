"""Structural features of a hook implementation, for near-duplicate detection by
similarity (fold-back), computed from source without importing it.

A hook's **features** are the multiset of its syntax-tree shapes: every node's
kind with the kinds of its children (depth 1) and of its grandchildren (depth 2),
where

- identifiers are erased (a renamed variable, argument or function changes
  nothing), except attribute names (``.get``, ``.startswith``: the API the code
  uses) and builtins (``round``, ``len``);
- every literal is ``CONST``, whatever its type or value (``2`` and ``2.0``), and
  so is a name bound to a module constant; a name imported from outside the
  package keeps its origin (``acme_lib.fees.late_fee``: an API, like an
  attribute name);
- calls to functions and methods of the package (a helper, ``self._rate``, a
  function imported from a sibling module) are **inlined**: the helper's body
  stands where the call was, so moving logic into a helper hides nothing, and a
  thin wrapper around a helper is as different from another wrapper as the two
  helpers are;
- statement order does not matter (a multiset).

:func:`similarity` is the weighted Jaccard index of two multisets:
``sum(min counts) / sum(max counts)``, 1.0 for identical structure.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

#: helpers are inlined at most this deep (recursion stops there too)
MAX_INLINE_DEPTH = 3
_BUILTINS = frozenset(dir(builtins))

#: the caller's context for one function (where its names are looked up); opaque here
C = TypeVar("C")
Function = ast.FunctionDef | ast.AsyncFunctionDef
#: finds the package function a call runs, and that function's context, or None
Resolver = Callable[[ast.Call, C], tuple[Function, C] | None]
#: a name's label in a feature (CONST, an external origin) or None
Namer = Callable[[ast.Name, C], str | None]


def _label(node: ast.AST, named: Callable[[ast.Name], str | None]) -> str:
    if isinstance(node, ast.Constant):
        return "CONST"
    if isinstance(node, ast.Name):
        if node.id in _BUILTINS:
            return f"builtin.{node.id}"
        return named(node) or "Name"
    if isinstance(node, ast.Attribute):
        return f"attr.{node.attr}"
    if isinstance(node, ast.BinOp | ast.AugAssign):
        return f"{type(node).__name__}.{type(node.op).__name__}"
    if isinstance(node, ast.BoolOp):
        return f"BoolOp.{type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return f"UnaryOp.{type(node.op).__name__}"
    if isinstance(node, ast.Compare):
        return "Compare." + ".".join(type(o).__name__ for o in node.ops)
    return type(node).__name__


_SKIP = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop, ast.arguments)


def _children(node: ast.AST) -> list[ast.AST]:
    return [c for c in ast.iter_child_nodes(node) if not isinstance(c, _SKIP)]


class _Shapes(Generic[C]):
    def __init__(self, resolve: Resolver[C], constant: Namer[C]) -> None:
        self.resolve = resolve
        self.constant = constant
        self.inlined: list[ast.FunctionDef | ast.AsyncFunctionDef] = []

    def features(
        self,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        context: C,
        depth: int = 0,
        stack: tuple[int, ...] = (),
    ) -> Iterator[str]:
        stack = (*stack, id(function))
        body = function.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        for stmt in body:
            yield from self._walk(stmt, context, depth, stack)

    def _label(self, node: ast.AST, context: C) -> str:
        return _label(node, lambda n: self.constant(n, context))

    def _walk(self, node: ast.AST, context: C, depth: int, stack: tuple[int, ...]) -> Iterator[str]:
        if isinstance(node, ast.Call) and depth < MAX_INLINE_DEPTH:
            found = self.resolve(node, context)
            if found is not None and id(found[0]) not in stack:
                helper, helper_context = found
                self.inlined.append(helper)
                yield "INLINED"
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    yield from self._walk(arg, context, depth, stack)
                yield from self.features(helper, helper_context, depth + 1, stack)
                return
        children = _children(node)
        label = self._label(node, context)
        kids = [self._label(c, context) for c in children]
        yield f"{label}({','.join(kids)})"
        grand = [
            f"{k}({','.join(self._label(g, context) for g in _children(c))})"
            for k, c in zip(kids, children, strict=True)
        ]
        yield f"{label}[{';'.join(grand)}]"
        for child in children:
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            yield from self._walk(child, context, depth, stack)


def _no_helpers(_call: ast.Call, _context: object) -> None:
    return None


def hook_features(
    function: ast.FunctionDef | ast.AsyncFunctionDef,
    context: C,
    resolve: Resolver[C] | None,
    constant: Namer[C],
) -> tuple[tuple[str, ...], str]:
    """(features as sorted short hashes, the source: the function followed by the
    package helpers it calls) of one hook implementation."""
    shapes = _Shapes(resolve or _no_helpers, constant)
    found = list(shapes.features(function, context))
    hashed = sorted(hashlib.blake2b(f.encode(), digest_size=6).hexdigest() for f in found)
    seen: set[int] = set()
    parts = [ast.unparse(function)]
    for helper in shapes.inlined:
        if id(helper) not in seen:
            seen.add(id(helper))
            parts.append(ast.unparse(helper))
    return tuple(hashed), "\n\n".join(parts)


def similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """Weighted Jaccard index of two feature multisets (0.0 .. 1.0)."""
    ca, cb = Counter(a), Counter(b)
    if not ca and not cb:
        return 0.0
    keys = ca.keys() | cb.keys()
    low = sum(min(ca[k], cb[k]) for k in keys)
    high = sum(max(ca[k], cb[k]) for k in keys)
    return low / high if high else 0.0
