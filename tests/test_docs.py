"""The documentation follows the code: the generated hook reference is current,
the README and docs/readiness.md name everything users can call or see, the
changelog names the version and every decision record has its three parts."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import typer

from api.cli.main import app
from api.graphql.schema import build_schema
from core.analysis import foldback, triage, usage
from core.analysis.readiness import evaluation, rules, vocabulary
from core.model.version import VERSION

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
READINESS_MD = (ROOT / "docs" / "readiness.md").read_text(encoding="utf-8")
OPERATIONS_MD = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def _gen_hooks():
    spec = importlib.util.spec_from_file_location("gen_hooks", ROOT / "docs" / "gen_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_reference_is_up_to_date():
    gen = _gen_hooks()
    current = gen.HOOKS_MD.read_text(encoding="utf-8")
    assert gen.BEGIN in current and gen.END in current
    assert gen.updated(current, gen.render()) == current, (
        "docs/hooks.md is out of date with the hookspecs: run python docs/gen_hooks.py"
    )


def test_hook_reference_covers_every_hookspec():
    gen = _gen_hooks()
    from plugins.catalog import spec_functions

    text = gen.HOOKS_MD.read_text(encoding="utf-8")
    for _source, module, _file in gen.SPEC_MODULES:
        for function in spec_functions(module):
            assert f"### `{function.__name__}`" in text


def test_quick_start_commands_are_in_the_readme():
    assert "tailor serve --demo" in README
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/tailor serve --demo"
        in README
    )
    assert (
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && "
        ".venv/bin/python -m pytest -q" in README
    )


def _commands(group, prefix: str = "tailor") -> list[str]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):  # a group
            found.extend(_commands(command, path))
        else:
            found.append(path)
    return found


def test_readme_names_every_cli_command():
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 10
    missing = [c for c in commands if f"`{c}" not in README]
    assert not missing, f"README.md does not document: {missing}"


def test_readme_names_every_root_field():
    schema = build_schema()._schema
    fields = [*schema.query_type.fields, *schema.mutation_type.fields]
    missing = [f for f in fields if f"`{f}" not in README]
    assert not missing, f"README.md does not document the root fields: {missing}"


def test_operations_doc_tables_every_environment_variable():
    from dataclasses import fields

    from api.graphql.limits import GraphQLLimits

    # quoted names (os.environ.get("TAILOR_..."), envvar="TAILOR_...") and the limits,
    # read as "TAILOR_" + field name
    names = {"TAILOR_" + f.name.upper() for f in fields(GraphQLLimits)}
    for package in ("api", "core", "plugins"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names.update(re.findall(r"[\"'](TAILOR_[A-Z_]*[A-Z])[\"']", text))
    assert "TAILOR_DATABASE_URL" in names
    # the one home of the table: a row per variable in docs/operations.md
    rows = set(re.findall(r"^\| `(TAILOR_[A-Z_]+)` \|", OPERATIONS_MD, re.MULTILINE))
    missing = sorted(names - rows)
    assert not missing, f"docs/operations.md's table does not document: {missing}"
    assert not rows - names, f"docs/operations.md documents unknown: {sorted(rows - names)}"
    # and the README points there instead of keeping a copy
    assert "docs/operations.md" in README
    assert not re.search(r"^\| `TAILOR_", README, re.MULTILINE)


@pytest.mark.parametrize(
    "values",
    [
        [c.value for c in vocabulary.Code],
        [s.value for s in vocabulary.Severity],
        [s.value for s in vocabulary.TenantStatus],
        [s.value for s in vocabulary.CustomizationStatus],
        [k.value for k in foldback.EvidenceKind],
        ["SETTING_NEVER_OVERRIDDEN", "CUSTOMIZATION_NEVER_ENABLED"],
        [
            usage.NEVER_CALLED,
            usage.NOT_CALLED_RECENTLY,
            usage.NO_EFFECT,
            usage.OVERRIDE_EQUALS_DEFAULT,
            usage.OVERRIDE_UNREAD,
        ],
        list(triage.VERBS),
    ],
    ids=[
        "codes",
        "severities",
        "tenant-statuses",
        "customization-statuses",
        "evidence",
        "retire",
        "usage",
        "triage",
    ],
)
def test_readiness_doc_names_every_value(values):
    missing = [v for v in values if f"`{v}`" not in READINESS_MD]
    assert not missing, f"docs/readiness.md does not document: {missing}"


def test_readiness_doc_severities_match_the_code():
    for code, severity in vocabulary.SEVERITY.items():
        row = re.search(rf"^\| `{code.value}` \| (\w+) \|", READINESS_MD, re.MULTILINE)
        assert row, f"no table row for {code.value}"
        assert row.group(1) == severity.value, code.value


def test_readiness_doc_level_d_codes_match_the_code():
    line = next(line for line in READINESS_MD.splitlines() if line.startswith("| `D` |"))
    assert sorted(re.findall(r"`([A-Z]+_[A-Z_]+)`", line)) == sorted(
        c.value for c in vocabulary.LEVEL_D_CODES
    )


def test_readiness_doc_fold_back_weights_match_the_code():
    assert (
        f"score = {foldback.BREADTH_WEIGHT} x distinct tenants + {foldback.COST_WEIGHT} x blockers"
        in READINESS_MD
    )


ARCHITECTURE_MD = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
_PACKAGES = (
    "api",
    "core",
    "plugins",
    "products",
    "customizations",
    "migrations",
    "tests",
    "docs",
    "bench",
    "deploy",
    ".ci",
)


def _architecture_names() -> tuple[list[str], list[str]]:
    """(file paths, dotted module names) quoted in ARCHITECTURE.md."""
    quoted = re.findall(r"`([A-Za-z_.][\w./-]*)`", ARCHITECTURE_MD)
    paths = [q for q in quoted if "/" in q and q.split("/")[0] in _PACKAGES]
    modules = [
        q for q in quoted if re.fullmatch(r"(api|core|plugins|products)(\.\w+)+", q) is not None
    ]
    return paths, modules


def test_architecture_names_only_modules_that_exist():
    paths, modules = _architecture_names()
    assert len(paths) > 40 and modules  # the document really names the code
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"
    unknown = [m for m in modules if importlib.util.find_spec(m) is None]
    assert not unknown, f"ARCHITECTURE.md names modules that do not exist: {unknown}"


def test_architecture_names_the_functions_it_says_to_edit():
    for module, name in (
        (rules, "customization_readiness"),
        (rules, "_hook"),
        (rules, "_setting_reference"),
        (rules, "override_finding"),
        (evaluation, "evaluate"),
    ):
        assert f"`{name}`" in ARCHITECTURE_MD
        assert callable(getattr(module, name)), name
    assert "`Code`" in ARCHITECTURE_MD and "`SEVERITY`" in ARCHITECTURE_MD
    assert "`LEVEL_D_CODES`" in ARCHITECTURE_MD


#: "`Name` (`path.py`", "`Name` in `path.py`" and "`path.py` (`Name`": the document
#: says ``Name`` lives in that file (a GraphQL field by its resolver's Python name)
_NAME = r"`([A-Za-z_]\w*(?:\.\w+)?)`"
_PY_PATH = r"`((?:api|core|plugins|products|bench)/[\w/]+\.py)`"


def _architecture_claims() -> set[tuple[str, str]]:
    """(name, file) pairs ARCHITECTURE.md states: ``Name`` is defined in ``file``."""
    claims = set()
    for m in re.finditer(_NAME + r"\s+(?:\(|in\s+)" + _PY_PATH, ARCHITECTURE_MD):
        claims.add((m.group(1), m.group(2)))
    for m in re.finditer(_PY_PATH + r"\s+\(" + _NAME, ARCHITECTURE_MD):
        claims.add((m.group(2), m.group(1)))
    return claims


def _definitions(path: Path) -> tuple[set[str], dict[str, set[str]]]:
    """Every name ``path`` defines (functions, classes, methods, assignments and
    table names, at any depth; imports do not count), and each class's own names."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    members: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
                    if target.id == "__tablename__" and isinstance(node.value, ast.Constant):
                        names.add(str(node.value.value))
        if isinstance(node, ast.ClassDef):
            own = members.setdefault(node.name, set())
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    own.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    own.add(item.target.id)
                elif isinstance(item, ast.Assign):
                    own.update(t.id for t in item.targets if isinstance(t, ast.Name))
    return names, members


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_architecture_names_live_where_it_says():
    """Every name the walkthroughs and the concept table place in a file is
    defined there (not merely imported): a moved or renamed function fails here."""
    claims = _architecture_claims()
    assert len(claims) > 40, claims  # the document really places names in files
    wrong = []
    for name, file in sorted(claims):
        names, members = _definitions(ROOT / file)
        owner, _, member = name.rpartition(".")
        if owner:
            found = member in members.get(owner, ())
        else:
            found = name in names or (name[:1].islower() and _snake(name) in names)
        if not found:
            wrong.append(f"{name} in {file}")
    assert not wrong, f"ARCHITECTURE.md places names where they are not defined: {wrong}"


def test_changelog_names_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert re.search(
        rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M
    ), f"CHANGELOG.md has no section for version {VERSION} (core/model/version.py)"


def test_every_decision_record_has_context_decision_and_consequences():
    records = sorted((ROOT / "docs" / "decisions").glob("*.md"))
    assert len(records) >= 4, records
    for record in records:
        text = record.read_text(encoding="utf-8")
        headings = re.findall(r"^## (.+)$", text, re.M)
        assert headings == ["Context", "Decision", "Consequences"], (record.name, headings)
        assert text.startswith("# "), f"{record.name} has no title"
        assert f"`docs/decisions/{record.name}`" in ARCHITECTURE_MD, (
            f"ARCHITECTURE.md does not link {record.name}"
        )
