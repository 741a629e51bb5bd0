"""A new customization package, written from the extension-point catalog
(``tailor customization new``).

The package passes ``tailor customization check`` as written: a
``customization.toml`` made for the running product release, a ``hooks.py``
with one documented stub per hook, taking the hookspec's parameters, and
``tests/test_hooks.py``, plain pytest tests calling each stub directly (a hook
is an ordinary function: no Tailor is needed to test one).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from core.model.errors import InvalidInputError
from plugins.catalog import Catalog, spec_functions
from plugins.manifest import DEFAULT_MODULE, MANIFEST_FILE, NAME_PATTERN

DESCRIPTION = "TODO: what this customization changes for its tenants, and why, in one sentence."
#: names an annotation may use in the stub (anything else is left out: a
#: customization imports only pluggy and the standard library)
_TYPING = {"Any": "typing", "Mapping": "collections.abc", "Sequence": "collections.abc"}
_BUILTIN = {"str", "int", "float", "bool", "None", "dict", "list", "tuple"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Scaffold:
    """What ``new`` writes: the package directory and its files (relative path ->
    text), and how the tenants were chosen."""

    directory: Path
    files: Mapping[str, str]
    name: str
    tenants: tuple[str, ...]
    tenants_from_name: bool


def package_name(name: str) -> tuple[str, str]:
    """(manifest name, directory name) for what the consultant typed: either
    spelling works, ``globex-late-fees`` or ``globex_late_fees``."""
    manifest_name = name.strip().replace("_", "-")
    if not NAME_PATTERN.match(manifest_name):
        raise InvalidInputError(
            "name",
            f"{name!r} cannot name a customization: lowercase letters, digits and '-' or '_', "
            "starting with a letter, 2 to 63 characters (e.g. 'globex-late-fees')",
        )
    return manifest_name, manifest_name.replace("-", "_")


def hook_function(catalog: Catalog, hook: str, release: str) -> Callable[..., Any]:
    """The hookspec function of ``hook`` as the running release has it; an unknown,
    removed or deprecated hook is refused, naming the ones to use."""
    point = catalog.get(hook)
    current = sorted(
        p.name for p in catalog.for_version(release) if not p.deprecated_in(Version(release))
    )
    if point is None or not point.defined_in(Version(release)):
        raise InvalidInputError(
            "hook",
            f"{hook!r} is not an extension point of release {release}; "
            f"known hooks: {', '.join(current)}",
        )
    if point.deprecated_in(Version(release)):
        instead = f"; implement {point.replacement} instead" if point.replacement else ""
        raise InvalidInputError(
            "hook", f"{hook} is deprecated since {point.deprecated}{instead} (check would warn)"
        )
    for spec in catalog.modules:
        for function in spec_functions(spec.module):
            if function.__name__ == hook:
                return function
    raise InvalidInputError("hook", f"{hook!r} has no hookspec function")  # pragma: no cover


def scaffold(
    parent: Path,
    name: str,
    hooks: Sequence[str],
    tenants: Sequence[str],
    catalog: Catalog,
    product_id: str,
    release: str,
) -> Scaffold:
    """The package ``new`` writes under ``parent`` (nothing is written here).
    ``tenants`` empty: the name's first segment (``globex-late-fees``: globex)."""
    manifest_name, dirname = package_name(name)
    if not hooks:
        raise InvalidInputError("hook", "give at least one --hook")
    functions = [hook_function(catalog, h, release) for h in dict.fromkeys(hooks)]
    chosen = tuple(dict.fromkeys(tenants)) or (manifest_name.split("-", 1)[0],)
    version = Version(release)
    requires = f">={version.major}.{version.minor},<{version.major + 1}"
    files = {
        MANIFEST_FILE: _manifest(manifest_name, chosen, requires, release, product_id),
        "__init__.py": "",
        f"{DEFAULT_MODULE}.py": _hooks_module(functions),
        "tests/test_hooks.py": _tests(dirname, functions, chosen[0]),
    }
    return Scaffold(parent / dirname, files, manifest_name, chosen, not tenants)


def write(package: Scaffold) -> list[Path]:
    """Create the package's directory and files; an existing path is never
    overwritten (nothing is written then)."""
    if package.directory.exists():
        raise InvalidInputError(
            "name",
            f"{package.directory} already exists; nothing was written (choose another "
            "name or --directory, or remove it)",
        )
    written = []
    package.directory.mkdir(parents=True)
    for relative, text in package.files.items():
        path = package.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _toml(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _manifest(
    name: str, tenants: Sequence[str], requires: str, release: str, product_id: str
) -> str:
    listed = ", ".join(_toml(t) for t in tenants)
    return (
        f"name = {_toml(name)}\n"
        'version = "0.1.0"\n'
        f"tenants = [{listed}]\n"
        f"# the product releases it runs on; widen it once tested on a newer one\n"
        f"requires = {_toml(requires)}\n"
        f"tested_up_to = {_toml(release)}\n"
        f"product = {_toml(product_id)}\n"
        f"description = {_toml(DESCRIPTION)}\n"
        "# the business capability it adds (fold-back groups customizations by it):\n"
        '# capability = "late-fee-waivers"\n'
        "# secret settings its hooks may receive (any other secret is absent):\n"
        '# secrets = ["integrations.payment_gateway.secret_key"]\n'
    )


def _annotation(text: Any) -> str | None:
    """An annotation as the stub may write it, or None to leave it out."""
    if text is inspect.Parameter.empty or not isinstance(text, str):
        return None
    names = set(_NAME.findall(text))
    return text if names <= _BUILTIN | set(_TYPING) else None


def _neutral(returns: str | None) -> str:
    """What a stub returns: what the hook takes for "no change"."""
    head = (returns or "").split("[", 1)[0].split("|", 1)[0].strip()
    return {"dict": "{}", "list": "[]"}.get(head, "None")


def _documentation(function: Callable[..., Any]) -> str:
    """The hookspec's documentation up to its example (the stub is the example)."""
    doc = inspect.getdoc(function) or ""
    return doc.split("Example::", 1)[0].split("Lifecycle:", 1)[0].rstrip()


def _stub(function: Callable[..., Any]) -> tuple[str, set[str]]:
    signature = inspect.signature(function)
    used: set[str] = set()
    params = []
    for param in signature.parameters.values():
        note = _annotation(param.annotation)
        if note is not None:
            used.update(_NAME.findall(note))
        params.append(f"{param.name}: {note}" if note else param.name)
    returns = _annotation(signature.return_annotation)
    if returns is not None:
        used.update(_NAME.findall(returns))
    arrow = f" -> {returns}" if returns else ""
    head = f"def {function.__name__}({', '.join(params)}){arrow}:"
    if len(head) > 88:
        inner = "".join(f"    {p},\n" for p in params)
        head = f"def {function.__name__}(\n{inner}){arrow}:"
    doc = _documentation(function).replace('"""', "'''")
    body = "\n".join(f"    {line}" if line else "" for line in doc.splitlines())
    text = (
        "@hookimpl\n"
        f"{head}\n"
        f'{body[:4]}"""{body[4:]}\n\n'
        "    Take only the parameters you use: Tailor passes them by name.\n"
        '    """\n' + ("" if returns == "None" else f"    return {_neutral(returns)}\n")
    )
    return text, used


def _hooks_module(functions: Sequence[Callable[..., Any]]) -> str:
    stubs = [_stub(f) for f in functions]
    used = set().union(*(u for _, u in stubs))
    imports = ["from __future__ import annotations", ""]
    typing = sorted(
        {f"from {_TYPING[n]} import {n}" for n in used if n in _TYPING},
    )
    if typing:
        imports += [*typing, ""]
    imports += ["import pluggy", "", 'hookimpl = pluggy.HookimplMarker("tailor")']
    header = (
        f'"""{DESCRIPTION}\n\n'
        "Tailor calls each function marked @hookimpl for this customization's tenants,\n"
        "in a worker process, once per batch. Check it with `tailor customization check`,\n"
        "try it on a tenant's real values with `tailor customization run`.\n"
        '"""\n\n'
    )
    return header + "\n".join(imports) + "\n\n\n" + "\n\n".join(s for s, _ in stubs)


def _sample(name: str, annotation: Any, tenant: str) -> str:
    """A Python literal to call a stub with, by parameter name and annotation."""
    if name == "tenant":
        return _toml(tenant)
    if name == "environment":
        return "None"
    text = annotation if isinstance(annotation, str) else ""
    head = text.split("[", 1)[0].split("|", 1)[0].strip()
    return {
        "dict": "{}",
        "Mapping": "{}",
        "list": "[]",
        "Sequence": "[]",
        "tuple": "()",
        "str": '""',
        "int": "0",
        "float": "0.0",
        "bool": "False",
    }.get(head, "None")


def _tests(dirname: str, functions: Sequence[Callable[..., Any]], tenant: str) -> str:
    tests = []
    for function in functions:
        signature = inspect.signature(function)
        args = ", ".join(
            f"{p.name}={_sample(p.name, p.annotation, tenant)}"
            for p in signature.parameters.values()
        )
        expected = _neutral(_annotation(signature.return_annotation))
        check = f"assert result == {expected}" if expected != "None" else "assert result is None"
        call = f"    result = hooks.{function.__name__}({args})\n"
        if len(call) > 89:
            call = f"    result = hooks.{function.__name__}(\n        {args}\n    )\n"
        tests.append(f"def test_{function.__name__}() -> None:\n{call}    {check}\n")
    return (
        f'"""Tests of {dirname}\'s hooks: plain functions, called directly.\n\n'
        f"Run them with: python -m pytest {dirname}/tests\n"
        '"""\n\n'
        "import importlib.util\n"
        "from pathlib import Path\n\n"
        "# hooks.py by its path: the tests run wherever the package lies\n"
        "_spec = importlib.util.spec_from_file_location(\n"
        f'    "{dirname}_hooks", Path(__file__).resolve().parents[1] / "hooks.py"\n'
        ")\n"
        "assert _spec is not None and _spec.loader is not None\n"
        "hooks = importlib.util.module_from_spec(_spec)\n"
        "_spec.loader.exec_module(hooks)\n\n\n" + "\n\n".join(tests)
    )
