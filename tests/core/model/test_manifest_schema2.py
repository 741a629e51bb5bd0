"""Manifest schema 2: renamed hooks, renamed hook parameters, per-setting
conversions from the previous type; schema 1 files still read (and written)."""

from __future__ import annotations

import math

import pytest

from core.model.conversions import KNOWN, conversion, convert
from core.model.definitions import SettingDefinition, SettingType
from core.model.errors import ConversionError, InvalidInputError, SettingValidationError
from core.model.manifest import ReleaseManifest
from core.model.manifest_io import dumps, dumps_fragment, loads
from tests import renames
from tests.sample import V30_PLANNED, acme_manifest

HEADER = 'schema_version = 2\nversion = "3.1"\nstatus = "planned"\n'
POINTS = (
    '[[extension_points]]\nname = "acme_invoice_trailer"\nparams = ["tenant", "document"]\n'
    'source = "acme_erp"\n'
    '[[extension_points]]\nname = "acme_batch"\nparams = ["tenant", "changes"]\n'
    'source = "acme_erp"\n'
)
SETTING = '[[settings]]\nkey = "a.b"\ntype = "float"\ndefault = 5.0\n'


def test_the_renaming_fixture_round_trips_as_schema_2():
    m = renames.manifest()
    assert m.schema_version == 2
    text = dumps(m)
    assert text.startswith("schema_version = 2\n")
    assert '[renamed_params.acme_invoice_trailer]\ninvoice = "document"' in text
    assert loads(text) == m
    assert loads(dumps(m, "json"), "json") == m
    assert m.hook_renames == {"acme_invoice_footer": "acme_invoice_trailer"}
    assert m.param_renames == {"acme_invoice_trailer": {"invoice": "document"}}
    retyped = next(d for d in m.settings if d.key == renames.RETYPED)
    assert (retyped.previous_type, retyped.conversion) == ("int", "float")


@pytest.mark.parametrize("manifest", [V30_PLANNED, acme_manifest("2.0")], ids=["3.0", "2.0"])
def test_a_manifest_using_nothing_of_schema_2_is_still_written_and_read_as_schema_1(manifest):
    text = dumps(manifest)
    assert text.startswith("schema_version = 1\n")
    assert loads(text) == manifest
    assert loads("schema_version = 2\n" + text.split("\n", 1)[1]) == manifest


def test_a_fragment_with_a_conversion_is_schema_2():
    plain = {"settings": [{"key": "a.b", "type": "int", "default": 1}]}
    assert dumps_fragment(plain).startswith("schema_version = 1\n")
    retyped = {"settings": [{**plain["settings"][0], "previous_type": "string"}]}
    assert dumps_fragment(retyped).startswith("schema_version = 2\n")


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (
            HEADER.replace("= 2", "= 1", 1) + POINTS + '[renamed_hooks]\nold = "acme_batch"\n',
            "schema_version",
            "renamed_hooks need(s) schema_version = 2",
        ),
        (
            HEADER.replace("= 2", "= 1", 1) + SETTING + 'previous_type = "int"\n',
            "schema_version",
            "settings[0].previous_type",
        ),
        (HEADER + POINTS + '[renamed_hooks]\nold = "nope"\n', "renamed_hooks['old']", "nope"),
        (
            HEADER + POINTS + '[renamed_hooks]\nacme_batch = "acme_invoice_trailer"\n',
            "renamed_hooks['acme_batch']",
            "must not be an extension point",
        ),
        (HEADER + "renamed_hooks = 3\n" + POINTS, "renamed_hooks", "must map"),
        (
            HEADER + POINTS + '[renamed_params.acme_gone]\ninvoice = "document"\n',
            "renamed_params['acme_gone']",
            "not an extension point",
        ),
        (
            HEADER + POINTS + '[renamed_params.acme_invoice_trailer]\ninvoice = "doc"\n',
            "renamed_params['acme_invoice_trailer']['invoice']",
            "not one of acme_invoice_trailer(tenant, document)",
        ),
        (
            HEADER + POINTS + '[renamed_params.acme_invoice_trailer]\ntenant = "document"\n',
            "renamed_params['acme_invoice_trailer']['tenant']",
            "still takes",
        ),
        (
            HEADER + POINTS + '[renamed_params.acme_invoice_trailer]\na = "document"\n'
            'b = "document"\n',
            "renamed_params['acme_invoice_trailer']",
            "same name",
        ),
        (HEADER + POINTS + "[renamed_params]\nacme_batch = 1\n", "renamed_params", "must map"),
        (HEADER + SETTING + 'conversion = "float"\n', "conversion", "needs the 'previous_type'"),
        (HEADER + SETTING + 'previous_type = "decimal"\n', "previous_type", "not a setting type"),
        (HEADER + SETTING + 'previous_type = "float"\n', "previous_type", "still float"),
        (
            HEADER + SETTING + 'previous_type = "int"\nconversion = "round"\n',
            "conversion",
            f"not a known conversion (known: {KNOWN})",
        ),
        (
            HEADER + SETTING + 'previous_type = "int"\nconversion = "bool"\n',
            "conversion",
            "produces bool, not float",
        ),
        (
            HEADER + SETTING + 'previous_type = "json"\nconversion = "float"\n',
            "conversion",
            "does not convert from json",
        ),
        (
            HEADER + SETTING + 'previous_type = "int"\nconversion = "scale:0"\n',
            "conversion",
            "non-zero number",
        ),
    ],
)
def test_invalid_schema_2_fields_are_rejected_naming_the_field(text, field, fragment):
    with pytest.raises(InvalidInputError) as exc:
        loads(text)
    assert field in exc.value.field
    assert fragment in exc.value.message


def _with_points(version: str, *points: dict, **fields) -> ReleaseManifest:
    return ReleaseManifest.from_dict(
        {"version": version, "status": "planned", "extension_points": list(points), **fields}
    )


PER_KEY = {"name": "acme_changed", "params": ["tenant", "key", "value"], "source": "acme_erp"}
BATCH = {"name": "acme_changes", "params": ["tenant", "changes"], "source": "acme_erp"}


def test_a_change_of_shape_is_not_a_rename():
    before = _with_points("3.0", PER_KEY)
    renamed = _with_points("3.1", BATCH, renamed_hooks={"acme_changed": "acme_changes"})
    with pytest.raises(InvalidInputError) as exc:
        renamed.check_renames_against([before])
    assert exc.value.field == "renamed_hooks['acme_changed']"
    assert "key, value are not acme_changes's" in exc.value.message
    assert "replacement = 'acme_changes'" in exc.value.message


def test_a_rename_with_renamed_parameters_is_a_rename():
    before = _with_points("3.0", PER_KEY)
    same = {"name": "acme_updated", "params": ["tenant", "setting", "value"], "source": "x"}
    renamed = _with_points(
        "3.1",
        same,
        renamed_hooks={"acme_changed": "acme_updated"},
        renamed_params={"acme_updated": {"key": "setting"}},
    )
    renamed.check_renames_against([before])  # compatible: no error
    firstresult = _with_points(
        "3.1",
        {**same, "firstresult": True},
        renamed_hooks={"acme_changed": "acme_updated"},
        renamed_params={"acme_updated": {"key": "setting"}},
    )
    with pytest.raises(InvalidInputError, match="first result"):
        firstresult.check_renames_against([before])


# -- conversions -----------------------------------------------------------------------


def _retyped(type_: str, previous: str, name: str, **extra) -> SettingDefinition:
    defaults = {"int": 0, "float": 0.0, "string": "", "bool": False, "json": []}
    return SettingDefinition.from_dict(
        {
            "key": "a.b",
            "type": type_,
            "default": defaults[type_],
            "previous_type": previous,
            "conversion": name,
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("type_", "previous", "name", "value", "expected"),
    [
        ("string", "int", "string", 42, "42"),
        ("string", "bool", "string", True, "true"),
        ("string", "float", "string", 1.5, "1.5"),
        ("int", "string", "int", " 17 ", 17),
        ("int", "float", "int", 3.0, 3),
        ("float", "int", "float", 2, 2.0),
        ("float", "string", "float", "2.25", 2.25),
        ("bool", "string", "bool", "Yes", True),
        ("bool", "int", "bool", 0, False),
        ("json", "string", "list", "a", ["a"]),
        ("json", "int", "list", 1, [1]),
        ("int", "float", "scale:60", 2.5, 150),
        ("float", "int", "scale:0.5", 3, 1.5),
    ],
)
def test_each_conversion_converts(type_, previous, name, value, expected):
    result = convert(_retyped(type_, previous, name), value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("type_", "previous", "name", "value", "reason"),
    [
        ("int", "string", "int", "12.5", "not a whole number"),
        ("int", "float", "int", 2.5, "not a whole number"),
        ("int", "string", "int", "9" * 50, "not a whole number"),
        ("float", "string", "float", "nan", "not a finite number"),
        ("float", "string", "float", "abc", "not a number"),
        ("bool", "string", "bool", "maybe", "not one of true/false"),
        ("bool", "int", "bool", 2, "not one of"),
        ("json", "string", "list", None, "only a scalar"),
        ("string", "float", "string", math.inf, "not a finite number"),
        ("int", "float", "scale:60", "2", "not a number"),
    ],
)
def test_a_value_that_cannot_be_converted_raises_a_typed_error(
    type_, previous, name, value, reason
):
    with pytest.raises(ConversionError) as exc:
        convert(_retyped(type_, previous, name), value)
    assert exc.value.key == "a.b" and exc.value.conversion == name
    assert reason in exc.value.reason


def test_convert_validates_against_the_definition_and_needs_a_declared_conversion():
    bounded = _retyped("int", "string", "int", max=10)
    with pytest.raises(SettingValidationError) as exc:
        convert(bounded, "11")
    assert exc.value.rule == "max"
    untyped = SettingDefinition.from_dict(
        {"key": "a.b", "type": "int", "default": 0, "previous_type": "string"}
    )
    with pytest.raises(ConversionError, match="declares no conversion from string"):
        convert(untyped, "1")


def test_conversion_names_are_the_closed_set():
    assert conversion("int").targets == frozenset({SettingType.INT})
    assert conversion("scale:60").apply(2) == 120
    with pytest.raises(InvalidInputError):
        conversion("scale:x")
    with pytest.raises(InvalidInputError):
        conversion("eval")
