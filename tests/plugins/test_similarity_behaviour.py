"""plugins/similarity.py: what survives in a hook's abstracted behaviour (the
same behaviour) and what never does (another behaviour)."""

from __future__ import annotations

import ast

import pytest

from plugins.similarity import NO_VALUE, behaviour


def of(code: str) -> str:
    tree = ast.parse(code)
    module = {
        n.targets[0].id: ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
    }
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    hook = functions["hook"]

    def resolve(call, _context):
        if isinstance(call.func, ast.Name) and call.func.id in functions:
            return functions[call.func.id], None
        return None

    def value(name, _context):
        return module.get(name.id, NO_VALUE)

    return behaviour(hook, None, resolve, lambda _n, _c: None, value).text


SAME = [
    (
        "def hook(values):\n    return {'a.b': values['a.b'] if values['a.b'] < 3 else 3}",
        "def hook(values):\n    x = values.get('a.b', 0)\n    if 3 > x:\n        y = x\n    else:\n"
        "        y = 9\n    return {'a.b': y}",
    ),
    (
        "def hook(key, value):\n    if key == 'a.b' and not 3 <= value <= 10:\n        return 'no'",
        "def hook(key, value):\n    if 'a.b' == key:\n        if value < 1 or value > 5:\n"
        "            return 'nope'",
    ),
    (
        "KEYS = ('a.x', 'a.y')\ndef hook(values):\n    out = {}\n    for k in KEYS:\n"
        "        out[k] = values.get(k) * 2\n    return out",
        "def hook(values):\n    return {'a.y': 3 * values['a.y'], 'a.x': values['a.x'] * 3}",
    ),
    (
        "def helper(values, key):\n    return min(values[key], 10)\n"
        "def hook(values):\n    return {'a.b': helper(values, 'a.b')}",
        "def hook(values):\n    capped = min(7, values.get('a.b'))  # a comment\n"
        "    result = dict()\n    result['a.b'] = capped\n    return result",
    ),
]

SAME.append(  # a guard clause returning early against an if statement
    (
        "def hook(values):\n    x = values.get('a.b')\n    if values.get('a.c'):\n"
        "        x = max(x, 3)\n    return {'a.b': x}",
        "def hook(values):\n    got = values['a.b']\n    if not values['a.c']:\n"
        "        return {'a.b': got}\n    return {'a.b': max(got, 5)}",
    )
)

DIFFERENT = [
    (
        "def hook(values):\n    return {'a.b': min(values['a.b'], 3)}",
        "def hook(values):\n    return {'a.b': max(values['a.b'], 3)}",
    ),
    (
        "def hook(values):\n    if values['a.c'] > 4:\n        return {'a.b': 1}",
        "def hook(values):\n    if values['a.c'] <= 4:\n        return {'a.b': 1}",
    ),
    (
        "def hook(values):\n    return {'a.b': values['a.b'] * (1 + 0.1)}",
        "def hook(values):\n    return {'a.b': values['a.b'] * (1 - 0.1)}",
    ),
    (
        "def hook(values):\n    return {'a.b': values['a.b'] + 5}",
        "def hook(values):\n    return {'a.b': values['a.b'] + -5}",
    ),
    (
        "def hook():\n    return {'ui.theme.dark': True}",
        "def hook():\n    return {'ui.page.size': 50}",
    ),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_the_same_behaviour_written_differently(a, b):
    assert of(a) == of(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_another_behaviour_is_never_the_same(a, b):
    assert of(a) != of(b)


def test_constants_are_slots_with_their_values_and_roles():
    tree = ast.parse("def hook(values):\n    return {'a.rate': round(values['a.rate'] * 2, 3)}")
    found = behaviour(tree.body[0], None, None, lambda _n, _c: None)
    assert found.keys == ("a.rate",)
    assert [(slot, value) for slot, value, _ in found.constants] == [("#1", 2), ("#2", 3)]
    assert [role for _, _, role in found.constants] == ["rate_factor", "rate_precision"]
    assert "call:round" in found.signature and "op:Mult" in found.signature
