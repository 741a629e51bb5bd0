"""The rehearsal's translation of recorded values to a target's catalog, pure:
each rule of core/analysis/rehearsal.py on real definitions."""

from __future__ import annotations

from core.analysis.rehearsal import translate
from core.model.definitions import SettingDefinition, SettingType


def d(key: str, type_: str, default, **fields) -> SettingDefinition:
    return SettingDefinition(key=key, type=SettingType(type_), default=default, **fields)


CURRENT = {
    x.key: x
    for x in (
        d("a.kept.value", "int", 1),
        d("a.old.name", "string", "x"),
        d("a.gone.value", "bool", False),
        d("a.page.size", "int", 25),
        d("a.ttl.seconds", "int", 300),
        d("a.expiry.days", "int", 90),
        d("a.api.key", "string", "", secret=True),
    )
}
TARGET = {
    x.key: x
    for x in (
        d("a.kept.value", "int", 1),
        d("a.new.name", "string", "x"),
        d("a.page.size", "int", 50),
        d("a.ttl.seconds", "string", "300", previous_type="int", conversion="string"),
        d("a.expiry.days", "string", "90"),
        d("a.api.key", "string", "", secret=True),
        d("a.other.key", "string", "", secret=True),
        d("a.added.flag", "bool", True),
    )
}
RENAMES = {"a.old.name": "a.new.name"}


def test_each_rule():
    """Expected, written first: kept as is; renamed under its new name; removed
    absent; a default the tenant did not override at the target's default; an
    overridden one kept; a retyped override converted by the declared
    conversion; an added key at its default; the declared secret kept, an
    undeclared secret absent."""
    values = {
        "a.kept.value": 7,
        "a.old.name": "y",
        "a.gone.value": True,
        "a.page.size": 25,
        "a.ttl.seconds": 600,
        "a.api.key": "k-123",
        "my.own.setting": 3,
    }
    out = translate(
        values,
        CURRENT,
        TARGET,
        RENAMES,
        overridden={"a.kept.value", "a.old.name", "a.ttl.seconds", "a.api.key"},
        declared_secrets=["a.api.key"],
    )
    assert out.untranslatable == {}
    assert out.values == {
        "a.kept.value": 7,
        "a.new.name": "y",
        "a.page.size": 50,
        "a.ttl.seconds": "600",
        "a.expiry.days": "90",
        "a.api.key": "k-123",
        "a.added.flag": True,
        "my.own.setting": 3,
    }


def test_a_retyped_override_without_a_conversion_cannot_be_translated():
    out = translate(
        {"a.expiry.days": 60, "a.kept.value": 1},
        CURRENT,
        TARGET,
        RENAMES,
        overridden={"a.expiry.days"},
        declared_secrets=[],
    )
    assert list(out.untranslatable) == ["a.expiry.days"]
    assert "declares no conversion" in out.untranslatable["a.expiry.days"]
    assert "a.expiry.days" not in out.values  # not guessed at its default either


def test_an_unoverridden_retyped_value_takes_the_targets_default():
    out = translate(
        {"a.expiry.days": 90}, CURRENT, TARGET, RENAMES, overridden=(), declared_secrets=[]
    )
    assert out.untranslatable == {} and out.values["a.expiry.days"] == "90"
