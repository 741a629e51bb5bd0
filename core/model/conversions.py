"""Conversions of a setting's value from its previous type: the one home of the
small closed set a release manifest may name (``conversion = "int"`` beside
``previous_type = "string"`` on a setting definition, manifest schema 2).

Each conversion is a pure function of the value that raises
:class:`ConversionError` when the value cannot be converted; :func:`convert`
applies a definition's declared conversion and validates the result against the
definition. A rehearsal uses it to translate a value recorded on the previous
release into the target's type.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.model.definitions import SettingDefinition, SettingType
from core.model.errors import ConversionError, InvalidInputError


class _Unconvertible(Exception):
    """Raised by a conversion function; :func:`convert` names the key."""


def _to_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unconvertible("not a finite number")
        return repr(value)
    if isinstance(value, str):
        return value
    raise _Unconvertible(f"a {type(value).__name__} has no string form")


_INT = re.compile(r"^[+-]?[0-9]+$")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Unconvertible("a boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _Unconvertible("not a whole number")
        return int(value)
    if isinstance(value, str) and _INT.match(value.strip()) and len(value) <= 40:
        return int(value.strip())
    raise _Unconvertible("not a whole number")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _Unconvertible("a boolean is not a number")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str) and len(value) <= 100:
        try:
            result = float(value.strip())
        except ValueError:
            raise _Unconvertible("not a number") from None
    else:
        raise _Unconvertible("not a number")
    if not math.isfinite(result):
        raise _Unconvertible("not a finite number")
    return result


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Unconvertible("not one of true/false, yes/no, on/off, 1/0")


def _to_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if value is None or isinstance(value, dict):
        raise _Unconvertible("only a scalar is wrapped in a list")
    return [value]


def _scale(factor: float) -> Callable[[Any], Any]:
    def scaled(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Unconvertible("not a number")
        result = value * factor
        if isinstance(result, float) and not math.isfinite(result):
            raise _Unconvertible("out of range once scaled")
        return result

    return scaled


@dataclass(frozen=True)
class Conversion:
    """A named conversion: what it turns values into, from which previous types."""

    name: str
    apply: Callable[[Any], Any]
    #: the setting types it may produce
    targets: frozenset[SettingType]
    #: the previous types it accepts
    sources: frozenset[SettingType]


_ALL = frozenset(SettingType)
_NUMBERS = frozenset({SettingType.INT, SettingType.FLOAT})
_SCALARS = frozenset(
    {SettingType.BOOL, SettingType.INT, SettingType.FLOAT, SettingType.STRING, SettingType.ENUM}
)

#: the named conversions (``scale:N`` is built on demand)
CONVERSIONS: dict[str, Conversion] = {
    c.name: c
    for c in (
        Conversion(
            "string", _to_string, frozenset({SettingType.STRING, SettingType.ENUM}), _SCALARS
        ),
        Conversion("int", _to_int, frozenset({SettingType.INT}), _SCALARS - {SettingType.BOOL}),
        Conversion(
            "float", _to_float, frozenset({SettingType.FLOAT}), _SCALARS - {SettingType.BOOL}
        ),
        Conversion("bool", _to_bool, frozenset({SettingType.BOOL}), _SCALARS - {SettingType.FLOAT}),
        Conversion("list", _to_list, frozenset({SettingType.JSON}), _SCALARS | {SettingType.JSON}),
    )
}
SCALE_PREFIX = "scale:"
#: the names as an error hint shows them
KNOWN = ", ".join([*CONVERSIONS, f"{SCALE_PREFIX}N"])


def conversion(name: str, field_name: str = "conversion") -> Conversion:
    """The conversion called ``name``; an unknown name is an input error."""
    if not isinstance(name, str):
        raise InvalidInputError(field_name, f"{reprlib.repr(name)} is not a conversion name")
    found = CONVERSIONS.get(name)
    if found is not None:
        return found
    if name.startswith(SCALE_PREFIX):
        try:
            factor = float(name[len(SCALE_PREFIX) :])
        except ValueError:
            factor = math.nan
        if not math.isfinite(factor) or factor == 0:
            raise InvalidInputError(
                field_name, f"{name!r}: the factor of scale:N is a non-zero number (scale:60)"
            )
        if factor.is_integer():
            factor = int(factor)
        return Conversion(name, _scale(factor), _NUMBERS, _NUMBERS)
    raise InvalidInputError(
        field_name, f"{reprlib.repr(name)} is not a known conversion (known: {KNOWN})"
    )


def check_definition(definition: SettingDefinition, where: str) -> None:
    """Raise :class:`InvalidInputError` when a definition's ``previous_type`` or
    ``conversion`` is unknown or cannot produce its type."""
    previous, name = definition.previous_type, definition.conversion
    if name is not None and previous is None:
        raise InvalidInputError(
            f"{where}.conversion", "a conversion needs the 'previous_type' it converts from"
        )
    if previous is None:
        return
    try:
        source = SettingType(previous)
    except ValueError:
        allowed = ", ".join(t.value for t in SettingType)
        raise InvalidInputError(
            f"{where}.previous_type", f"{reprlib.repr(previous)} is not a setting type ({allowed})"
        ) from None
    if source is definition.type:
        raise InvalidInputError(
            f"{where}.previous_type",
            f"the type is still {source.value}: previous_type names a type the setting had before",
        )
    if name is None:
        return
    found = conversion(name, f"{where}.conversion")
    if definition.type not in found.targets:
        raise InvalidInputError(
            f"{where}.conversion",
            f"{name!r} produces {'/'.join(sorted(t.value for t in found.targets))}, "
            f"not {definition.type.value}",
        )
    if source not in found.sources:
        raise InvalidInputError(
            f"{where}.conversion", f"{name!r} does not convert from {source.value}"
        )


def convert(definition: SettingDefinition, value: Any) -> Any:
    """``value`` (of ``definition.previous_type``) as ``definition`` takes it,
    by its declared conversion, validated against the definition.

    Raises :class:`ConversionError` when the definition declares no conversion or
    the value cannot be converted, and :class:`~core.model.errors.SettingValidationError`
    when the converted value breaks a constraint of the definition."""
    name = definition.conversion
    if name is None:
        raise ConversionError(
            definition.key,
            "none",
            value,
            "the release declares no conversion from "
            f"{definition.previous_type or 'its previous type'}",
        )
    try:
        converted = conversion(name).apply(value)
    except _Unconvertible as exc:
        raise ConversionError(definition.key, name, value, str(exc)) from None
    return definition.validate(converted)
