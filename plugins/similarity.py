"""What a hook implementation **does**, abstracted, for fold-back families:
computed from source without importing it.

A hook's **behaviour** is a sorted list of *facts*, found by evaluating its body
symbolically (never running it):

- ``set KEY = TERM if CONDITIONS``: a value it returns for a setting key (a dict
  literal, ``out[KEY] = ...``, ``out.update(...)``, a dict comprehension);
- ``return TERM if CONDITIONS``, ``raise``, and calls made for their effect.

Terms are expressions over the hook's parameters with every local variable
replaced by what was assigned to it (``if`` statements become conditional terms),
so renamed identifiers, comments, intermediate variables and the order of
independent statements change nothing. Calls to the package's own functions and
methods (a helper, ``self._rate``, a function in a sibling module) are inlined
with their arguments bound; loops and comprehensions over constant keys (a
literal or a module constant) are unrolled, so a loop equals the unrolled code.

Normalised: ``a < b`` is ``b > a``; ``not`` is pushed into comparisons and
``and``/``or`` (De Morgan), so ``not 3 <= v <= 10`` equals ``v < 3 or v > 10``;
``and``, ``or``, ``+``, ``*``, ``min``, ``max``, ``==`` have sorted operands;
``values[K]`` and ``values.get(K, default)`` are the same read. Every literal is
a **constant slot** (its value kept aside for the evidence and the proposal),
abstracted to its sign (a number), or to itself when it is a setting key (a
dotted name), or ``None``. So ``min`` against ``max``, an inverted condition, a
different key or a different sign is another behaviour.

From the facts come: the **keys** (sorted), the **signature** (the set of
operations, comparisons, functions and constant signs used), the **features**
(every sub-term, hashed: a weighted-Jaccard similarity of two multisets) and the
**constants** (slot -> value, slots numbered in the canonical order, so two
implementations of one behaviour align slot by slot).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

#: helpers are inlined at most this deep (recursion stops there too)
MAX_INLINE_DEPTH = 4
#: loops over at most this many constant items are unrolled
MAX_UNROLL = 32
#: a hook yields at most this many facts (bounded work on untrusted code)
MAX_FACTS = 400
_BUILTINS = frozenset(dir(builtins))
_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: calls that only log: not behaviour
_LOGGING = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})

#: the caller's context for one function (where its names are looked up); opaque here
C = TypeVar("C")
Function = ast.FunctionDef | ast.AsyncFunctionDef
#: finds the package function a call runs, and that function's context, or None
Resolver = Callable[[ast.Call, C], tuple[Function, C] | None]
#: a name's label in a feature (CONST, an external origin) or None
Namer = Callable[[ast.Name, C], str | None]
#: a module constant's value (str, number, tuple...), or NO_VALUE
Valuer = Callable[[ast.Name, C], object]
NO_VALUE = object()

Term = tuple[Any, ...]
_COMMUTATIVE = frozenset({"Add", "Mult", "BitOr", "BitAnd", "BitXor"})
_NEGATE = {
    "Eq": "NotEq",
    "NotEq": "Eq",
    "In": "NotIn",
    "NotIn": "In",
    "Is": "IsNot",
    "IsNot": "Is",
}
_SYMBOL = {
    "Add": "+",
    "Sub": "-",
    "Mult": "*",
    "Div": "/",
    "FloorDiv": "//",
    "Mod": "%",
    "Pow": "**",
    "BitOr": "|",
    "BitAnd": "&",
    "BitXor": "^",
    "LShift": "<<",
    "RShift": ">>",
    "MatMult": "@",
    "Gt": ">",
    "GtE": ">=",
    "Eq": "==",
    "NotEq": "!=",
    "In": "in",
    "NotIn": "not in",
    "Is": "is",
    "IsNot": "is not",
}


# -- terms ------------------------------------------------------------------------------


def _const(value: object, origin: object = None) -> Term:
    """A literal: a setting key stays itself, None stays None, anything else is a
    slot with its sign; the value and where it was written (``origin``: one slot
    however often the term is used) ride along, outside the abstraction."""
    if value is None:
        return ("none",)
    if isinstance(value, str):
        if _KEY.match(value):
            return ("key", value)
        return ("c", "s", value, origin)
    if isinstance(value, bool):
        return ("c", "+", value, origin)
    if isinstance(value, int | float):
        return ("c", "-" if value < 0 else "+", value, origin)
    if isinstance(value, tuple | list):
        return ("seq", *(_const(v, (origin, i)) for i, v in enumerate(value[:MAX_UNROLL])))
    return ("c", "s", repr(value)[:80], origin)


def abstract(term: Any) -> Any:
    """The term without constant values (what two copies must share)."""
    if isinstance(term, tuple):
        if term and term[0] == "c":
            return ("c", term[1])
        return tuple(abstract(t) for t in term)
    return term


def _values(term: Any) -> Any:
    if isinstance(term, tuple):
        if term and term[0] == "c":
            return ("c", term[1], term[2])
        return tuple(_values(t) for t in term)
    return term


def _k(term: Any) -> str:
    """Sort key: the abstract form first, the values only to break ties."""
    return repr(abstract(term)) + "\x00" + repr(_values(term))


def _negate(cond: Term) -> Term:
    head = cond[0]
    if head == "not":
        return cond[1]
    if head == "cmp":
        op, a, b = cond[1], cond[2], cond[3]
        if op == "Gt":  # not a > b  ==  b >= a
            return _cmp("GtE", b, a)
        if op == "GtE":
            return _cmp("Gt", b, a)
        return _cmp(_NEGATE[op], a, b)
    if head in ("and", "or"):
        return _bool("or" if head == "and" else "and", [_negate(c) for c in cond[1:]])
    return ("not", cond)


def _cmp(op: str, a: Term, b: Term) -> Term:
    if op == "Lt":
        op, a, b = "Gt", b, a
    elif op == "LtE":
        op, a, b = "GtE", b, a
    elif op in ("Eq", "NotEq", "Is", "IsNot"):
        a, b = sorted((a, b), key=_k)
    return ("cmp", op, a, b)


def _bool(head: str, parts: Iterable[Term]) -> Term:
    flat: list[Term] = []
    for p in parts:
        flat.extend(p[1:] if p[0] == head else [p])
    if len(flat) == 1:
        return flat[0]
    return (head, *sorted(flat, key=_k))


def _if(cond: Term, a: Term, b: Term) -> Term:
    if a == b:
        return a
    plain, flipped = ("if", cond, a, b), ("if", _negate(cond), b, a)
    return min(plain, flipped, key=_k)


def _binop(op: str, a: Term, b: Term) -> Term:
    if op in _COMMUTATIVE:
        a, b = sorted((a, b), key=_k)
    return ("op", op, a, b)


def _is_literal(term: Term) -> bool:
    return term[0] in ("key", "c")


def _differs(a: Term, b: Term) -> bool:
    """Two literals that are certainly different values."""
    return _is_literal(a) and _is_literal(b) and _values(a) != _values(b)


def _implied(cond: Term, conds: Sequence[Term]) -> bool:
    """``cond`` (``x != K1``, or an ``or`` with such a part) follows from another
    condition ``x == K2`` with K2 another literal: after ``if key == A: return``,
    a later ``if key == B`` does not depend on the first test (so the order of
    such guard clauses does not matter)."""
    parts = cond[1:] if cond[0] == "or" else (cond,)
    for part in parts:
        if part[0] != "cmp" or part[1] != "NotEq":
            continue
        for other in conds:
            if other is cond or other[0] != "cmp" or other[1] != "Eq":
                continue
            for x, y in ((part[2], part[3]), (part[3], part[2])):
                for u, v in ((other[2], other[3]), (other[3], other[2])):
                    if y == v and _differs(x, u):
                        return True
    return False


def _merge(facts: list[Term]) -> list[Term]:
    """Facts of one target (a key set, a return) under complementary conditions
    become one fact with a conditional value: ``if c: return {K: a}`` followed by
    ``return {K: b}`` is ``{K: a if c else b}``."""
    facts = list(facts)
    changed = True
    while changed:
        changed = False
        seen: dict[Any, list[int]] = {}
        for i, f in enumerate(facts):
            kind, when, *parts = f
            target = (kind, parts[0]) if kind == "set" else (kind,)
            for j in seen.get(target, []):
                g = facts[j]
                mine, theirs = set(when[1:]), set(g[1][1:])
                only_mine, only_theirs = mine - theirs, theirs - mine
                if not only_mine or not only_theirs:
                    continue
                c = _bool("and", sorted(only_mine, key=_k))
                if _negate(c) != _bool("and", sorted(only_theirs, key=_k)):
                    continue
                common = tuple(sorted(mine & theirs, key=_k))
                if kind == "set":
                    merged: Term = (kind, ("when", *common), parts[0], _if(c, parts[1], g[3]))
                elif kind == "return":
                    merged = (kind, ("when", *common), _if(c, parts[0], g[2]))
                elif tuple(parts) == tuple(g[2:]):
                    merged = (kind, ("when", *common), *parts)
                else:
                    continue
                facts = [x for k, x in enumerate(facts) if k not in (i, j)] + [merged]
                changed = True
                break
            if changed:
                break
            seen.setdefault(target, []).append(i)
    return facts


# -- symbolic evaluation ----------------------------------------------------------------


class _Stop(Exception):
    """The hook is too large to analyze further (MAX_FACTS)."""


@dataclass
class _Frame:
    env: dict[str, Term]
    conds: tuple[Term, ...]
    #: (conditions, value) of each return in this function
    returns: list[tuple[tuple[Term, ...], Term]]
    #: the innermost container handed back by the function (a returned dict)
    done: bool = False


class _Evaluator(Generic[C]):
    def __init__(self, resolve: Resolver[C], namer: Namer[C], valuer: Valuer[C]) -> None:
        self.resolve = resolve
        self.namer = namer
        self.valuer = valuer
        self.facts: list[Term] = []
        self.inlined: list[Function] = []
        self._containers = 0

    # facts

    def fact(self, kind: str, frame: _Frame, *parts: Term, conds: tuple[Term, ...] = ()) -> None:
        if len(self.facts) >= MAX_FACTS:
            raise _Stop
        flat: list[Term] = []
        for c in (*frame.conds, *conds):
            flat.extend(c[1:] if c[0] == "and" else [c])
        kept = [c for c in flat if not _implied(c, flat)]
        where = tuple(sorted(set(kept), key=_k))
        self.facts.append((kind, ("when", *where), *parts))

    def new_container(self) -> Term:
        self._containers += 1
        return ("container",)

    # functions

    def run(
        self,
        function: Function,
        context: C,
        env: dict[str, Term],
        conds: tuple[Term, ...],
        depth: int,
        stack: tuple[int, ...],
    ) -> Term:
        frame = _Frame(dict(env), conds, [])
        body = function.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        self.block(body, frame, context, depth, (*stack, id(function)))
        if not frame.returns:
            return ("none",)
        if len(frame.returns) == 1:
            return frame.returns[0][1]
        # a value per path, in the function's order: the last one is the fall-through
        result = frame.returns[-1][1]
        for where, value in reversed(frame.returns[:-1]):
            local = where[len(conds) :]
            result = _if(_bool("and", local), value, result) if local else value
        return result

    def block(
        self, body: list[ast.stmt], frame: _Frame, context: C, depth: int, stack: tuple[int, ...]
    ) -> None:
        for stmt in body:
            if frame.done:
                return
            self.stmt(stmt, frame, context, depth, stack)

    def stmt(
        self, node: ast.stmt, frame: _Frame, context: C, depth: int, stack: tuple[int, ...]
    ) -> None:
        ev = lambda e: self.expr(e, frame, context, depth, stack)  # noqa: E731
        if isinstance(node, ast.Assign):
            value = ev(node.value)
            for target in node.targets:
                self.assign(target, value, frame, context, depth, stack)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.assign(node.target, ev(node.value), frame, context, depth, stack)
        elif isinstance(node, ast.AugAssign):
            current, value = ev(node.target), ev(node.value)
            combined = _binop(type(node.op).__name__, current, value)
            self.assign(node.target, combined, frame, context, depth, stack)
        elif isinstance(node, ast.Return):
            value = ev(node.value) if node.value is not None else ("none",)
            value = self.emit_dict(value, frame)
            frame.returns.append((frame.conds, value))
            if depth == 0:  # a helper's return is the value of its call, not a fact
                self.fact("return", frame, value)
            frame.done = True
        elif isinstance(node, ast.If):
            self.branch(ev(node.test), node.body, node.orelse, frame, context, depth, stack)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self.loop(node, frame, context, depth, stack)
        elif isinstance(node, ast.While):
            cond = ev(node.test)
            inner = _Frame(dict(frame.env), (*frame.conds, ("loop", cond)), frame.returns)
            self.block(node.body, inner, context, depth, stack)
            self.merge_loop(frame, inner)
        elif isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant):
                return
            value = ev(node.value)
            if value[0] not in ("inlined", "logging", "none", "container"):
                self.fact("effect", frame, value)
        elif isinstance(node, ast.Raise):
            self.fact("raise", frame, ev(node.exc) if node.exc is not None else ("reraise",))
            frame.done = True
        elif isinstance(node, ast.Try):
            self.block(node.body, frame, context, depth, stack)
            frame.done = False
            for handler in node.handlers:
                kind = ev(handler.type) if handler.type is not None else ("any",)
                inner = _Frame(dict(frame.env), (*frame.conds, ("except", kind)), frame.returns)
                self.block(handler.body, inner, context, depth, stack)
            self.block(node.orelse, frame, context, depth, stack)
            self.block(node.finalbody, frame, context, depth, stack)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                value = ev(item.context_expr)
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, ("with", value), frame, context, depth, stack)
            self.block(node.body, frame, context, depth, stack)
        elif isinstance(node, ast.Assert):
            self.fact("assert", frame, ev(node.test))
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.fact("delete", frame, ev(target))
        # pass, break, continue, global, nonlocal, imports, nested defs: no behaviour

    def branch(
        self,
        cond: Term,
        then: list[ast.stmt],
        orelse: list[ast.stmt],
        frame: _Frame,
        context: C,
        depth: int,
        stack: tuple[int, ...],
    ) -> None:
        before = len(frame.returns)
        a = _Frame(dict(frame.env), (*frame.conds, cond), frame.returns)
        self.block(then, a, context, depth, stack)
        b = _Frame(dict(frame.env), (*frame.conds, _negate(cond)), frame.returns)
        self.block(orelse, b, context, depth, stack)
        if a.done and b.done:
            frame.done = True
        elif a.done:  # a guard clause: what follows runs only when it did not return
            frame.env, frame.conds = b.env, b.conds
        elif b.done:
            frame.env, frame.conds = a.env, a.conds
        else:
            for name in a.env.keys() | b.env.keys():
                x, y = a.env.get(name, ("var",)), b.env.get(name, ("var",))
                frame.env[name] = x if x == y else _if(cond, x, y)
            # what follows runs only where no nested return was taken
            depth_here = len(frame.conds)
            for where, _value in frame.returns[before:]:
                local = where[depth_here:]
                if local:
                    frame.conds = (*frame.conds, _negate(_bool("and", local)))

    def loop(
        self,
        node: ast.For | ast.AsyncFor,
        frame: _Frame,
        context: C,
        depth: int,
        stack: tuple[int, ...],
    ) -> None:
        items = self.expr(node.iter, frame, context, depth, stack)
        jumps = any(isinstance(n, ast.Break | ast.Continue) for n in ast.walk(node))
        if items[0] == "seq" and len(items) - 1 <= MAX_UNROLL and not jumps and not node.orelse:
            for item in items[1:]:
                self.assign(node.target, item, frame, context, depth, stack)
                self.block(node.body, frame, context, depth, stack)
                if frame.done:
                    return
            return
        inner = _Frame(dict(frame.env), (*frame.conds, ("loop", items)), frame.returns)
        self.assign(node.target, ("each", items), inner, context, depth, stack)
        self.block(node.body, inner, context, depth, stack)
        self.merge_loop(frame, inner)
        self.block(node.orelse, frame, context, depth, stack)

    @staticmethod
    def merge_loop(frame: _Frame, inner: _Frame) -> None:
        for name, value in inner.env.items():
            if frame.env.get(name) != value:
                frame.env[name] = ("looped", value)

    def assign(
        self,
        target: ast.expr,
        value: Term,
        frame: _Frame,
        context: C,
        depth: int,
        stack: tuple[int, ...],
    ) -> None:
        if isinstance(target, ast.Name):
            if value[0] == "dict":
                value = self.emit_dict(value, frame)
            frame.env[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            for i, element in enumerate(target.elts):
                part = (
                    value[i + 1]
                    if value[0] == "seq" and len(value) == len(target.elts) + 1
                    else ("item", value, ("c", "+", i, None))
                )
                self.assign(element, part, frame, context, depth, stack)
        elif isinstance(target, ast.Subscript):
            container = self.expr(target.value, frame, context, depth, stack)
            key = self.expr(target.slice, frame, context, depth, stack)
            if container[0] == "container":
                self.fact("set", frame, key, self.emit_dict(value, frame))
            else:
                self.fact("store", frame, container, key, value)
        elif isinstance(target, ast.Attribute):
            owner = self.expr(target.value, frame, context, depth, stack)
            self.fact("attribute", frame, owner, ("name", target.attr), value)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, ("starred", value), frame, context, depth, stack)

    def emit_dict(self, value: Term, frame: _Frame) -> Term:
        """A dict value becomes a container: each entry a ``set`` fact."""
        if value[0] != "dict":
            return value
        for key, item, *where in value[1:]:
            self.fact("set", frame, key, item, conds=tuple(where[0]) if where else ())
        return self.new_container()

    # expressions

    def expr(
        self, node: ast.expr | None, frame: _Frame, context: C, depth: int, stack: tuple[int, ...]
    ) -> Term:
        if node is None:
            return ("none",)
        ev = lambda e: self.expr(e, frame, context, depth, stack)  # noqa: E731
        if isinstance(node, ast.Constant):
            return _const(node.value, id(node))
        if isinstance(node, ast.Name):
            if node.id in frame.env:
                return frame.env[node.id]
            value = self.valuer(node, context)
            if value is not NO_VALUE:
                return _const(value, ("name", node.id))
            if node.id in _BUILTINS:
                return ("builtin", node.id)
            label = self.namer(node, context)
            return ("ext", label) if label and label.startswith("ext.") else ("var",)
        if isinstance(node, ast.JoinedStr):  # a message: text, not logic
            return ("c", "s", ast.unparse(node), id(node))
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            op = type(node.op).__name__
            if op == "Add" and a[0] == b[0] == "key":  # "billing." + "late_fee.rate"
                return _const(a[1] + b[1])
            return _binop(op, a, b)
        if isinstance(node, ast.UnaryOp):
            operand = ev(node.operand)
            if isinstance(node.op, ast.Not):
                return _negate(operand)
            if isinstance(node.op, ast.USub) and operand[0] == "c" and operand[1] != "s":
                return _const(-operand[2], operand[3])
            if isinstance(node.op, ast.UAdd):
                return operand
            return ("unary", type(node.op).__name__, operand)
        if isinstance(node, ast.BoolOp):
            return _bool(
                "and" if isinstance(node.op, ast.And) else "or", [ev(v) for v in node.values]
            )
        if isinstance(node, ast.Compare):
            parts = [ev(node.left), *(ev(c) for c in node.comparators)]
            return _bool(
                "and",
                [_cmp(type(op).__name__, parts[i], parts[i + 1]) for i, op in enumerate(node.ops)],
            )
        if isinstance(node, ast.IfExp):
            return _if(ev(node.test), ev(node.body), ev(node.orelse))
        if isinstance(node, ast.Dict):
            entries = []
            for k, v in zip(node.keys, node.values, strict=True):
                if k is None:
                    entries.append((("spread",), ev(v), ()))
                else:
                    entries.append((ev(k), ev(v), ()))
            return ("dict", *sorted(entries, key=_k))
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return ("seq", *(ev(e) for e in node.elts))
        if isinstance(node, ast.DictComp):
            return self.comprehension(node, frame, context, depth, stack)
        if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp):
            return self.comprehension(node, frame, context, depth, stack)
        if isinstance(node, ast.Subscript):
            owner, index = ev(node.value), ev(node.slice)
            if owner[0] == "seq" and index[0] == "c" and isinstance(index[2], int):
                if -len(owner) < index[2] + 1 < len(owner):
                    return owner[index[2] + 1]
            return ("read", owner, index)
        if isinstance(node, ast.Attribute):
            return ("attr", ev(node.value), node.attr)
        if isinstance(node, ast.Call):
            return self.call(node, frame, context, depth, stack)
        if isinstance(node, ast.Lambda):
            return ("lambda", ev(node.body))
        if isinstance(node, ast.Starred):
            return ("starred", ev(node.value))
        if isinstance(node, ast.NamedExpr):
            value = ev(node.value)
            frame.env[node.target.id] = value
            return value
        return ("?", type(node).__name__)

    def comprehension(
        self,
        node: ast.DictComp | ast.ListComp | ast.SetComp | ast.GeneratorExp,
        frame: _Frame,
        context: C,
        depth: int,
        stack: tuple[int, ...],
    ) -> Term:
        """Unrolled over constant sequences (a dict comprehension becomes a dict
        of guarded entries); otherwise an opaque ``each`` of the element."""
        results: list[tuple[Term, Term, tuple[Term, ...]]] = []
        opaque = False

        def walk(i: int, env: dict[str, Term], where: tuple[Term, ...]) -> None:
            nonlocal opaque
            inner = _Frame(env, frame.conds, frame.returns)
            if i == len(node.generators):
                if isinstance(node, ast.DictComp):
                    results.append(
                        (
                            self.expr(node.key, inner, context, depth, stack),
                            self.expr(node.value, inner, context, depth, stack),
                            where,
                        )
                    )
                else:
                    results.append((self.expr(node.elt, inner, context, depth, stack), (), where))
                return
            gen = node.generators[i]
            items = self.expr(gen.iter, inner, context, depth, stack)
            if items[0] == "seq" and len(items) - 1 <= MAX_UNROLL:
                values = list(items[1:])
            else:
                opaque = True
                values = [("each", items)]
            for item in values:
                local = _Frame(dict(env), frame.conds, frame.returns)
                self.assign(gen.target, item, local, context, depth, stack)
                conds = tuple(self.expr(c, local, context, depth, stack) for c in gen.ifs)
                walk(i + 1, local.env, (*where, *conds))

        walk(0, dict(frame.env), ())
        if isinstance(node, ast.DictComp):
            return ("dict", *sorted(((k, v, w) for k, v, w in results), key=_k))
        kind = "each" if opaque else "seq"
        return (kind, *sorted(((e, *w) for e, _, w in results), key=_k))

    def call(
        self, node: ast.Call, frame: _Frame, context: C, depth: int, stack: tuple[int, ...]
    ) -> Term:
        ev = lambda e: self.expr(e, frame, context, depth, stack)  # noqa: E731
        if depth < MAX_INLINE_DEPTH:
            found = self.resolve(node, context)
            if found is not None and id(found[0]) not in stack:
                helper, helper_context = found
                self.inlined.append(helper)
                env = self.bind(helper, node, frame, context, depth, stack, helper_context)
                return self.run(helper, helper_context, env, frame.conds, depth + 1, stack)
        func = node.func
        args = [ev(a) for a in node.args]
        keywords = sorted((("kw", k.arg or "**", ev(k.value)) for k in node.keywords), key=_k)
        if isinstance(func, ast.Attribute):
            receiver = ev(func.value)
            name = func.attr
            if name in _LOGGING:
                return ("logging",)
            if name == "get" and args:  # values.get(K) / values.get(K, default)
                return ("read", receiver, args[0])
            if receiver[0] == "container" and name in ("update", "setdefault"):
                if name == "update":
                    for arg in args:
                        if arg[0] == "dict":
                            self.emit_dict(arg, frame)
                        else:
                            self.fact("set", frame, ("spread",), arg)
                    for _, key, value in keywords:
                        self.fact("set", frame, _const(key, None), value)
                elif args:
                    self.fact("set", frame, args[0], args[1] if len(args) > 1 else ("none",))
                return ("container",)
            return ("meth", name, receiver, *args, *keywords)
        callee = ev(func)
        if callee[0] == "builtin":
            name = callee[1]
            if name == "print":
                return ("logging",)
            if name in ("min", "max") and not keywords:
                if len(args) == 1 and args[0][0] == "seq":
                    args = list(args[0][1:])
                args = sorted(args, key=_k)
            if name == "dict" and not args:
                return ("dict", *sorted(((_const(k, None), v, ()) for _, k, v in keywords), key=_k))
            return ("call", name, *args, *keywords)
        return ("call", callee, *args, *keywords)

    def bind(
        self,
        helper: Function,
        node: ast.Call,
        frame: _Frame,
        context: C,
        depth: int,
        stack: tuple[int, ...],
        helper_context: C,
    ) -> dict[str, Term]:
        params = [*helper.args.posonlyargs, *helper.args.args]
        is_method = isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
        env: dict[str, Term] = {}
        if (
            is_method
            and params
            and params[0].arg in ("self", "cls")
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("self", "cls")
        ):
            env[params[0].arg] = ("self",)
            params = params[1:]
        defaults = helper.args.defaults
        for i, p in enumerate(params):
            offset = i - (len(params) - len(defaults))
            if offset >= 0:
                env[p.arg] = self.expr(defaults[offset], frame, helper_context, depth, stack)
        for p, arg in zip(params, node.args, strict=False):
            env[p.arg] = self.expr(arg, frame, context, depth, stack)
        for kw in node.keywords:
            if kw.arg:
                env[kw.arg] = self.expr(kw.value, frame, context, depth, stack)
        return env


# -- the result -------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    """What one hook implementation does, abstracted (see the module docstring)."""

    #: every sub-term of every fact, hashed (a multiset, sorted)
    features: tuple[str, ...]
    #: operations, comparisons, functions and constant signs used (a set, sorted)
    signature: tuple[str, ...]
    #: setting keys it reads or sets (sorted)
    keys: tuple[str, ...]
    #: the facts, one a line, constants written as #1, #2, ... (the shared logic)
    text: str
    #: (slot, value, role) of each constant, slots numbered as in ``text``; the
    #: role says what it does ("due_days_threshold", "rate_factor", "message")
    constants: tuple[tuple[str, Any, str], ...]
    #: the function followed by the package helpers it calls
    source: str


def _walk(term: Any, out: list[Any]) -> None:
    if isinstance(term, tuple):
        out.append(term)
        if term and term[0] != "c":
            for t in term:
                _walk(t, out)


def _tokens(term: Any, out: set[str]) -> None:
    if not isinstance(term, tuple) or not term:
        return
    head = term[0]
    if head in ("op", "cmp", "unary"):
        out.add(f"{head}:{term[1]}")
    elif head in ("call", "meth") and isinstance(term[1], str):
        out.add(f"{head}:{term[1]}")
    elif head == "c":
        out.add(f"const:{term[1]}")
        return
    elif head == "key":
        out.add(f"key:{term[1]}")
    elif isinstance(head, str) and head not in ("when", "seq", "dict"):
        out.add(head)
    for t in term[1:]:
        _tokens(t, out)


def _first_key(term: Any) -> str | None:
    if isinstance(term, tuple) and term:
        if term[0] == "key":
            return str(term[1])
        for t in term[1:]:
            found = _first_key(t)
            if found:
                return found
    return None


_ROLE = {
    "Mult": "factor",
    "Div": "divisor",
    "FloorDiv": "divisor",
    "Add": "offset",
    "Sub": "offset",
    "Gt": "threshold",
    "GtE": "threshold",
}


class _Slots:
    """Numbers the constants of one behaviour, one slot per occurrence in the
    canonical order (so two implementations of one behaviour align slot by slot)."""

    def __init__(self) -> None:
        self.values: list[tuple[Any, str]] = []

    def slot(self, term: Term, role: str) -> str:
        """``#n`` for a number, ``#n<0`` for a negative one, ``"#n"`` for a text:
        the abstraction keeps the kind and the sign."""
        self.values.append((term[2], role))
        n = len(self.values)
        return f'"#{n}"' if term[1] == "s" else f"#{n}<0" if term[1] == "-" else f"#{n}"


def _render(term: Any, slots: _Slots, role: str = "value", subject: str | None = None) -> str:
    """A readable abstract term; constants become #n (with a role for the
    proposal: what the constant does, and to which setting key)."""
    if not isinstance(term, tuple) or not term:
        return str(term)
    head = term[0]

    def r(t: Any, why: str = "value", about: Any = None) -> str:
        key = _first_key(about) if about is not None else None
        return _render(t, slots, why, key or subject)

    if head == "c":
        name = (subject or "").rpartition(".")[2]
        return slots.slot(term, f"{name}_{role}" if name else role)
    if head == "key":
        return repr(term[1])
    if head == "none":
        return "None"
    if head == "p":
        return str(term[1])
    if head == "read":
        return f"{r(term[1])}[{r(term[2])}]"
    if head in ("op", "cmp"):
        why = _ROLE.get(term[1], "value")
        a, b = term[2], term[3]
        return f"({r(a, why, b)} {_SYMBOL.get(term[1], term[1])} {r(b, why, a)})"
    if head in ("and", "or"):
        return "(" + f" {head} ".join(r(t) for t in term[1:]) + ")"
    if head == "not":
        return f"not {r(term[1])}"
    if head == "if":
        return f"({r(term[2])} if {r(term[1])} else {r(term[3])})"
    if head == "call":
        name = term[1] if isinstance(term[1], str) else r(term[1])
        why = {"min": "cap", "max": "floor", "round": "precision"}.get(name, "value")
        args = term[2:]
        return f"{name}({', '.join(r(t, why, args) for t in args)})"
    if head == "meth":
        return f"{r(term[2])}.{term[1]}({', '.join(r(t, 'value', term[2]) for t in term[3:])})"
    if head == "kw":
        return f"{term[1]}={r(term[2])}"
    if head == "seq":
        return "[" + ", ".join(r(t) for t in term[1:]) + "]"
    if head == "ext":
        return str(term[1])[4:] if str(term[1]).startswith("ext.") else str(term[1])
    if head == "attr":
        return f"{r(term[1])}.{term[2]}"
    if head in ("var", "self", "container"):
        return str(head)
    return f"{head}(" + ", ".join(r(t) if isinstance(t, tuple) else str(t) for t in term[1:]) + ")"


def _fact_text(fact: Term, slots: _Slots) -> str:
    kind, where, *parts = fact
    about = _first_key(fact)  # what the fact is about, unless a closer key says
    conds = " and ".join(_render(c, slots, "value", _first_key(c) or about) for c in where[1:])
    if kind == "set":
        subject = _first_key(parts[0]) or about
        value = _render(parts[1], slots, "value", subject)
        body = f"set {_render(parts[0], slots)} = {value}"
    elif kind == "return":
        role = "message" if parts[0][0] == "c" else "value"
        body = "return " + _render(parts[0], slots, role, about)
    else:
        body = f"{kind} " + ", ".join(_render(p, slots, "value", about) for p in parts)
    return body + (f"  when {conds}" if conds else "")


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _json(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)


def _no_helpers(_call: ast.Call, _context: object) -> None:
    return None


def _no_value(_name: ast.Name, _context: object) -> object:
    return NO_VALUE


def behaviour(
    function: Function,
    context: C,
    resolve: Resolver[C] | None,
    constant: Namer[C],
    value: Valuer[C] | None = None,
    *,
    method: bool = False,
) -> Behaviour:
    """The abstracted behaviour of one hook implementation."""
    evaluator = _Evaluator(resolve or _no_helpers, constant, value or _no_value)
    params = [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
    env: dict[str, Term] = {}
    for i, p in enumerate(params):
        is_self = i == 0 and (method or p.arg in ("self", "cls"))
        env[p.arg] = ("self",) if is_self else ("p", p.arg)
    try:
        evaluator.run(function, context, env, (), 0, ())
    except (_Stop, RecursionError):
        pass
    facts = sorted(_merge(evaluator.facts), key=_k)
    subterms: list[Any] = []
    for f in facts:
        _walk(f, subterms)
    features = tuple(sorted(_hash(repr(abstract(t))) for t in subterms))
    tokens: set[str] = set()
    keys: set[str] = set()
    for t in subterms:
        if t and t[0] == "key":
            keys.add(t[1])
    for f in facts:
        _tokens(f, tokens)
    slots = _Slots()
    lines = [_fact_text(f, slots) for f in facts]
    seen: set[int] = set()
    parts = [ast.unparse(function)]
    for helper in evaluator.inlined:
        if id(helper) not in seen:
            seen.add(id(helper))
            parts.append(ast.unparse(helper))
    return Behaviour(
        features=features,
        signature=tuple(sorted(tokens)),
        keys=tuple(sorted(keys)),
        text="\n".join(lines),
        constants=tuple((f"#{i + 1}", _json(v), role) for i, (v, role) in enumerate(slots.values)),
        source="\n\n".join(parts),
    )


def hook_features(
    function: Function,
    context: C,
    resolve: Resolver[C] | None,
    constant: Namer[C],
) -> tuple[tuple[str, ...], str]:
    """(features, source) of one hook implementation (see :func:`behaviour`)."""
    found = behaviour(function, context, resolve, constant)
    return found.features, found.source


def similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """Weighted Jaccard index of two feature multisets (0.0 .. 1.0)."""
    ca, cb = Counter(a), Counter(b)
    if not ca and not cb:
        return 0.0
    keys = ca.keys() | cb.keys()
    low = sum(min(ca[k], cb[k]) for k in keys)
    high = sum(max(ca[k], cb[k]) for k in keys)
    return low / high if high else 0.0
