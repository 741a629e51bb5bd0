import pytest
from packaging.version import Version

from core.model.definitions import SettingDefinition, SettingType, definitions_for
from core.model.errors import InvalidInputError, SettingValidationError
from tests.sample import ACME


def d(**kw) -> SettingDefinition:
    base = {"key": "billing.invoice.due_days", "type": SettingType.INT, "default": 30}
    return SettingDefinition(**{**base, **kw})


@pytest.mark.parametrize(
    ("definition", "value", "expected"),
    [
        (d(type=SettingType.BOOL, default=False), True, True),
        (d(), 45, 45),
        (d(), 45.0, 45),
        (d(type=SettingType.FLOAT, default=1.5), 2, 2.0),
        (d(type=SettingType.STRING, default="x"), "y", "y"),
        (d(type=SettingType.ENUM, default="a", choices=("a", "b")), "b", "b"),
        (d(type=SettingType.JSON, default={}), {"a": [1, 2, None]}, {"a": [1, 2, None]}),
    ],
)
def test_valid_values_are_normalized(definition, value, expected):
    result = definition.validate(value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("definition", "value", "rule"),
    [
        (d(type=SettingType.BOOL, default=False), 1, "type"),
        (d(), True, "type"),
        (d(), 4.5, "type"),
        (d(), "45", "type"),
        (d(), None, "type"),
        (d(type=SettingType.FLOAT, default=1.0), float("nan"), "type"),
        (d(type=SettingType.STRING, default="x"), 3, "type"),
        (d(min=1, max=90), 0, "min"),
        (d(min=1, max=90), 91, "max"),
        (d(type=SettingType.ENUM, default="a", choices=("a", "b")), "c", "choices"),
        (d(type=SettingType.STRING, default="EUR", pattern="^[A-Z]{3}$"), "eur", "pattern"),
        (d(type=SettingType.JSON, default={}), {1: "x"}, "type"),
    ],
)
def test_invalid_values_name_key_rule_and_value(definition, value, rule):
    with pytest.raises(SettingValidationError) as err:
        definition.validate(value)
    assert err.value.key == "billing.invoice.due_days"
    assert err.value.rule == rule
    assert err.value.message.startswith("billing.invoice.due_days: ")
    assert repr(value) in err.value.message or rule == "type"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"key": "NoDots"}, "dotted"),
        ({"type": SettingType.ENUM, "default": "a"}, "choices"),
        ({"min": 10, "max": 1}, "greater than max"),
        ({"pattern": "x"}, "string settings only"),
        ({"min": 40}, "violates its own definition"),
        ({"added": "not-a-version"}, "PEP 440"),
    ],
)
def test_inconsistent_definitions_are_refused(kwargs, fragment):
    with pytest.raises(InvalidInputError) as err:
        d(**kwargs).check_consistent()
    assert fragment in err.value.message


def test_round_trip_through_dict():
    original = d(min=1, max=90, description="Days", deprecated="2.0", replacement="a.b")
    assert SettingDefinition.from_dict(original.to_dict()) == original


def test_from_dict_names_unknown_fields_and_bad_types():
    with pytest.raises(InvalidInputError, match="unknown field"):
        SettingDefinition.from_dict({"key": "a.b", "type": "int", "default": 1, "colour": 2})
    with pytest.raises(InvalidInputError, match="not a setting type"):
        SettingDefinition.from_dict({"key": "a.b", "type": "decimal", "default": 1})
    with pytest.raises(InvalidInputError, match="missing required field 'default'"):
        SettingDefinition.from_dict({"key": "a.b", "type": "int"})


def test_lifecycle_selects_definitions_per_release():
    history = [
        d(key="a.old", added="1.0", removed="2.0"),
        d(key="a.new", added="1.5"),
        d(key="a.kept"),
    ]
    assert [x.key for x in definitions_for("1.0", history)] == ["a.kept", "a.old"]
    assert [x.key for x in definitions_for("1.5", history)] == ["a.kept", "a.new", "a.old"]
    assert [x.key for x in definitions_for("2.0", history)] == ["a.kept", "a.new"]
    assert d(deprecated="1.5").deprecated_in(Version("2.0"))


def test_product_catalog_is_consistent_and_has_real_history():
    for definition in [d for m in ACME.releases for d in m.settings]:
        definition.check_consistent()
    current = ACME.definitions("2.0")
    assert len(current) >= 40
    assert {x.type for x in current} == set(SettingType)
    assert len({x.category for x in current}) >= 5
    keys = {v: {x.key for x in ACME.definitions(v)} for v in ("1.0", "1.5", "2.0")}
    assert keys["1.5"] - keys["1.0"], "1.5 adds settings"
    assert keys["1.5"] - keys["2.0"], "2.0 removes settings"
    assert any(x.deprecated for x in current)
