"""Hostile manifests: TOML nested 10,000 deep and 5,000-digit versions in every
field that takes a version give a typed error naming the file and the field, in
GraphQL (importRelease, publishCustomization) and in the CLI (exit 2, ``error``,
no traceback), never a masked ``RecursionError``/``ValueError``.

A 5,000-digit version is a trap: ``packaging`` accepts it as a string, and the
first comparison converts it to an int past Python's int-string limit
(``ValueError``, not ``InvalidVersion``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from core.model import manifest_io
from core.model.errors import InvalidInputError, ProductError

BIG = "1" * 5000
NESTED_TOML = "deep = " + "[" * 10_000 + "]" * 10_000 + "\n"

#: a planned release valid in every field; each case below breaks one
RELEASE = """version = "{version}"
status = "planned"
tailor_hook_api = "{tailor_hook_api}"

[[extension_points]]
name = "acme_invoice_posted"
params = ["invoice"]
description = "An invoice was posted."
added = "{ep_added}"
deprecated = "{ep_deprecated}"
removed = "{ep_removed}"
source = "acme_erp"

[[settings]]
key = "billing.hostile.days"
type = "int"
default = 1
description = "d"
added = "{added}"
deprecated = "{deprecated}"
removed = "{removed}"
"""
VALID = {
    "version": "7.0",
    "tailor_hook_api": "3",
    "ep_added": "1.0",
    "ep_deprecated": "8.0",
    "ep_removed": "9.0",
    "added": "1.0",
    "deprecated": "8.0",
    "removed": "9.0",
}
#: the field each hostile version must be named by
FIELDS = {
    "version": "version",
    "tailor_hook_api": "tailor_hook_api",
    "ep_added": "extension_points['acme_invoice_posted'].added",
    "ep_deprecated": "extension_points['acme_invoice_posted'].deprecated",
    "ep_removed": "extension_points['acme_invoice_posted'].removed",
    "added": "setting 'billing.hostile.days'.added",
    "deprecated": "setting 'billing.hostile.days'.deprecated",
    "removed": "setting 'billing.hostile.days'.removed",
}


def release(**broken: str) -> str:
    return RELEASE.format(**{**VALID, **broken})


def test_the_valid_release_manifest_is_valid():
    assert manifest_io.loads(release()).version == "7.0"


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_a_5000_digit_version_names_its_field(field):
    with pytest.raises(InvalidInputError) as caught:
        manifest_io.loads(release(**{field: BIG}))
    assert caught.value.field == FIELDS[field]
    assert len(caught.value.message) < 300  # the value is abbreviated, not echoed


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (release() + NESTED_TOML, "toml"),
        ("x = " + "{a = " * 10_000 + "1" + "}" * 10_000 + "\n", "toml"),
        ("[" * 10_000 + "]" * 10_000, "json"),
    ],
)
def test_deep_nesting_is_invalid_input(text, fmt):
    with pytest.raises(InvalidInputError) as caught:
        manifest_io.loads(text, fmt)
    assert caught.value.field == "manifest" and "nested too deeply" in caught.value.message


def test_load_file_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "hostile.toml"
    path.write_text(release(removed=BIG))
    with pytest.raises(InvalidInputError) as caught:
        manifest_io.load_file(path)
    assert caught.value.field == "hostile.toml: setting 'billing.hostile.days'.removed"


IMPORT = """mutation($m: String!, $f: ManifestFormat!) {
  importRelease(manifest: $m, format: $f) {
    __typename ... on Error { code message } ... on InvalidInput { field }
  }
}"""


async def test_import_release_over_graphql_gives_invalid_input(api):
    cases = [(release(**{f: BIG}), "TOML", FIELDS[f]) for f in FIELDS]
    cases += [
        (release() + NESTED_TOML, "TOML", "manifest"),
        ("[" * 10_000 + "]" * 10_000, "JSON", "manifest"),
    ]
    for text, fmt, field in cases:
        body = await api.gql(IMPORT, {"m": text, "f": fmt})
        assert "errors" not in body, body
        result = body["data"]["importRelease"]
        assert result["__typename"] == "InvalidInput", result
        assert result["code"] == "INVALID_INPUT" and result["field"] == field
    listed = await api.gql("{ releases { version } }")
    assert "7.0" not in {r["version"] for r in listed["data"]["releases"]}  # nothing stored


def _no_traceback(result) -> str:
    """The CLI's output, after checking it ended by exiting, not by raising."""
    out = result.output + (result.stderr or "")
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    return out


@pytest.mark.parametrize("field", ["version", "ep_added", "removed", "nested"])
def test_release_import_cli_exits_2_naming_file_and_field(field, tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    path = tmp_path / "hostile.toml"
    path.write_text(release() + NESTED_TOML if field == "nested" else release(**{field: BIG}))
    result = CliRunner().invoke(app, ["release", "import", str(path)])
    out = _no_traceback(result)
    assert result.exit_code == 2, out
    assert "error:" in result.stderr and "hostile.toml" in result.stderr
    assert (FIELDS.get(field) or "nested too deeply") in result.stderr


#: a customization.toml valid in every field; each case below breaks one
CUSTOMIZATION = """name = "hostile-fields"
tenants = ["acme"]
version = "{version}"
requires = "{requires}"
tested_up_to = "{tested_up_to}"
"""
CUSTOMIZATION_VALID = {"version": "1.0.0", "requires": ">=1.0", "tested_up_to": "3.0"}
HOSTILE_CUSTOMIZATIONS = {
    "version": CUSTOMIZATION.format(**{**CUSTOMIZATION_VALID, "version": BIG}),
    "requires": CUSTOMIZATION.format(**{**CUSTOMIZATION_VALID, "requires": ">=" + BIG}),
    "requires-range": CUSTOMIZATION.format(**{**CUSTOMIZATION_VALID, "requires": f">=1.0,<{BIG}"}),
    "tested_up_to": CUSTOMIZATION.format(**{**CUSTOMIZATION_VALID, "tested_up_to": BIG}),
    "-": CUSTOMIZATION.format(**CUSTOMIZATION_VALID) + NESTED_TOML,
}


def _package(root: Path, toml: str) -> Path:
    path = root / "hostile_fields"
    path.mkdir(parents=True)
    (path / "__init__.py").write_text("")
    (path / "hooks.py").write_text(
        'import pluggy\n\nhookimpl = pluggy.HookimplMarker("tailor")\n\n'
        "@hookimpl\ndef tailor_resolve_settings(values):\n    return {}\n"
    )
    (path / "customization.toml").write_text(toml)
    return path


@pytest.mark.parametrize("case", sorted(HOSTILE_CUSTOMIZATIONS))
def test_customization_check_exits_2_naming_file_and_field(
    case, tmp_path, monkeypatch, database_url
):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    path = _package(tmp_path, HOSTILE_CUSTOMIZATIONS[case])
    result = CliRunner().invoke(app, ["customization", "check", str(path), "--release", "2.0"])
    out = _no_traceback(result)
    assert result.exit_code == 2, out
    field = case.split("-")[0] if case != "-" else "-"
    assert f"customization.toml:{field}:" in out, out
    assert len(out) < 2000  # the 5,000 digits are abbreviated


def test_the_valid_customization_passes_check(tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    path = _package(tmp_path, CUSTOMIZATION.format(**CUSTOMIZATION_VALID))
    result = CliRunner().invoke(app, ["customization", "check", str(path), "--release", "2.0"])
    assert result.exit_code == 0, result.output


PUBLISH = """
mutation($archive: Upload!) {
  publishCustomization(archive: $archive) {
    __typename ... on Error { code message } ... on InvalidInput { field }
  }
}
"""


async def test_publish_customization_refuses_each_hostile_manifest(plugin_api, tmp_path):
    api, _runtime = await plugin_api()
    for i, (case, toml) in enumerate(sorted(HOSTILE_CUSTOMIZATIONS.items())):
        path = _package(tmp_path / str(i), toml)
        body = await api.upload(PUBLISH, path, token="consultant")
        assert "errors" not in body, json.dumps(body)[:500]
        result = body["data"]["publishCustomization"]
        assert result["__typename"] == "InvalidInput", result
        field = case.split("-")[0]
        assert "customization.toml" in result["message"]
        assert f":{field}:" in result["message"] or result["field"].endswith(field), result
    listed = await api.gql("{ customizations { ... on CustomizationList { items { name } } } }")
    names = {c["name"] for c in listed["data"]["customizations"]["items"]}
    assert "hostile-fields" not in names  # nothing was published


#: every GraphQL argument that takes a version, with a 5,000-digit one
VERSION_ARGUMENTS = [
    '{ release(version: "%s") { __typename ... on Error { code } } }',
    '{ extensionPoints(release: "%s") { __typename ... on Error { code } } }',
    '{ readiness(target: "%s") { __typename ... on Error { code } } }',
    '{ releaseDiff(fromVersion: "2.0", toVersion: "%s") { __typename ... on Error { code } } }',
    '{ releaseDiff(fromVersion: "%s", toVersion: "2.0") { __typename ... on Error { code } } }',
    'mutation { setCustomizationVersion(tenant: "acme", name: "x", version: "%s") '
    "{ __typename ... on Error { code } } }",
    'mutation { setCustomizationEnabled(tenant: "acme", name: "x", enabled: true, '
    'version: "%s") { __typename ... on Error { code } } }',
    'mutation { yankCustomizationVersion(name: "x", version: "%s", reason: "r") '
    "{ __typename ... on Error { code } } }",
    'mutation { deleteRelease(version: "%s") { __typename ... on Error { code } } }',
    'mutation { upgradeTenant(tenant: "acme", target: "%s") { __typename ... on Error { code } } }',
]


@pytest.mark.parametrize("document", VERSION_ARGUMENTS)
async def test_a_5000_digit_version_argument_is_a_typed_error(api, document):
    body = await api.gql(document % BIG)
    assert "errors" not in body, json.dumps(body)[:400]
    [result] = body["data"].values()
    assert result["__typename"] in ("InvalidInput", "NotFound"), result


@pytest.mark.parametrize(
    "args",
    [
        ["release", "diff", "2.0", BIG],
        ["release", "diff", BIG, "2.0"],
        ["readiness", "--target", BIG],
        ["release", "export", "--version", BIG],
    ],
    ids=["diff-to", "diff-from", "readiness", "export"],
)
def test_a_5000_digit_version_on_the_command_line_exits_2(args, monkeypatch, database_url):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, args)
    out = _no_traceback(result)
    assert result.exit_code == 2 and "error:" in result.stderr, out


def test_a_product_directory_with_hostile_files_lists_each_problem(tmp_path):
    """A product's own files (product.toml, its release manifests) are read the
    same way: every problem named by file and field, no RecursionError."""
    from plugins.product import load_directory
    from tests.widgets import write_product

    product = write_product(tmp_path)
    (product / "releases" / "2.0.toml").write_text(NESTED_TOML)
    planned = product / "planned" / "3.0.toml"
    planned.write_text(planned.read_text().replace('version = "3.0"', f'version = "{BIG}"'))
    with pytest.raises(ProductError) as caught:
        load_directory(product)
    problems = "\n".join(caught.value.problems)
    assert f"{product / 'releases' / '2.0.toml'}: -: not valid TOML: nested too deeply" in problems
    assert "3.0.toml" in problems and "version" in problems, problems
    assert len(problems) < 3000
