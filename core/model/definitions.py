"""Setting definitions: types, defaults, constraints, lifecycle, and validation."""

from __future__ import annotations

import enum
import math
import re
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from packaging.version import Version

from core.model.errors import InvalidInputError, SettingValidationError
from core.model.lifecycle import Lifecycle

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class SettingType(enum.StrEnum):
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    ENUM = "enum"
    JSON = "json"


@dataclass(frozen=True)
class SettingDefinition(Lifecycle):
    """One configurable setting of the product, as valid in one release.

    ``added``/``deprecated``/``removed`` are product versions (PEP 440); a setting
    is defined in a release when ``added <= release < removed``.
    """

    key: str
    type: SettingType
    default: Any
    description: str = ""
    category: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    added: str | None = None
    deprecated: str | None = None
    removed: str | None = None
    replacement: str | None = None
    secret: bool = False
    #: the type this setting had in the previous release, when this one changes it
    #: (manifest schema 2); ``conversion`` names how a value of that type becomes one
    #: of this type (see :mod:`core.model.conversions`); without one a value of the
    #: previous type cannot be carried over
    previous_type: str | None = None
    conversion: str | None = None
    _compiled: Any = field(default=None, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.category:
            object.__setattr__(self, "category", self.key.split(".", 1)[0])
        if self.choices is not None and not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.pattern is not None:
            object.__setattr__(self, "_compiled", re.compile(self.pattern))

    # -- validation ------------------------------------------------------
    def validate(self, value: Any) -> Any:
        """Return ``value`` normalized for this definition, or raise
        :class:`SettingValidationError` naming the key, the rule and the value."""
        key, t = self.key, self.type
        if value is None:
            raise SettingValidationError(key, "type", value, f"expected a {t.value}, got null")
        if t is SettingType.BOOL:
            if not isinstance(value, bool):
                raise _type_error(key, "a boolean (true or false)", value)
        elif t is SettingType.INT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _type_error(key, "an integer", value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise _type_error(key, "an integer", value)
                value = int(value)
            _check_int64(key, value, "an integer within 64 bits")
        elif t is SettingType.FLOAT:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _type_error(key, "a number", value)
            value = float(value)
            if not math.isfinite(value):
                raise _type_error(key, "a finite number", value)
        elif t in (SettingType.STRING, SettingType.ENUM):
            if not isinstance(value, str):
                raise _type_error(key, "a string", value)
        elif t is SettingType.JSON:
            _check_json(key, value)
        self._check_constraints(value)
        return value

    def _check_constraints(self, value: Any) -> None:
        key = self.key
        if self.min is not None and value < self.min:
            raise SettingValidationError(
                key, "min", value, f"{value!r} is below the minimum {_num(self.min)}"
            )
        if self.max is not None and value > self.max:
            raise SettingValidationError(
                key, "max", value, f"{value!r} is above the maximum {_num(self.max)}"
            )
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(self.choices)
            raise SettingValidationError(
                key, "choices", value, f"{value!r} is not one of the choices: {allowed}"
            )
        if self._compiled is not None and not self._compiled.fullmatch(value):
            raise SettingValidationError(
                key, "pattern", value, f"{value!r} does not match the pattern {self.pattern!r}"
            )

    def check_consistent(self) -> None:
        """Raise :class:`InvalidInputError` when the definition contradicts itself."""
        where = f"setting {self.key!r}"
        if not KEY_PATTERN.match(self.key):
            raise InvalidInputError(
                where, "keys are dotted lower-case names such as 'billing.invoice.rounding'"
            )
        if self.type is SettingType.ENUM and not self.choices:
            raise InvalidInputError(where, "an enum setting needs a non-empty 'choices' list")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidInputError(where, f"min {self.min} is greater than max {self.max}")
        if self.pattern is not None and self.type is not SettingType.STRING:
            raise InvalidInputError(where, "'pattern' applies to string settings only")
        if (self.min is not None or self.max is not None) and self.type not in (
            SettingType.INT,
            SettingType.FLOAT,
        ):
            raise InvalidInputError(where, "'min' and 'max' apply to int and float settings only")
        for name in ("added", "deprecated", "removed"):
            version = getattr(self, name)
            if version is not None:
                try:
                    Version(version)
                except ValueError:  # InvalidVersion, or a segment beyond the int-string limit
                    raise InvalidInputError(
                        f"{where}.{name}", f"{reprlib.repr(version)} is not a PEP 440 version"
                    ) from None
        try:
            self.validate(self.default)
        except SettingValidationError as exc:
            raise InvalidInputError(
                f"{where}.default", f"the default violates its own definition: {exc.message}"
            ) from None
        if self.previous_type is not None or self.conversion is not None:
            from core.model.conversions import check_definition  # conversions import this module

            check_definition(self, where)

    # -- (de)serialisation -----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "type": self.type.value, "default": self.default}
        for f in fields(self):
            if f.name in out or f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            if value is None or value is False or value == "":
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "setting") -> SettingDefinition:
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(where, f"unknown field(s): {', '.join(sorted(unknown))}")
        for required in ("key", "type", "default"):
            if required not in data:
                raise InvalidInputError(where, f"missing required field {required!r}")
        try:
            stype = SettingType(data["type"])
        except ValueError:
            allowed = ", ".join(t.value for t in SettingType)
            raise InvalidInputError(
                f"{where}.type", f"{data['type']!r} is not a setting type ({allowed})"
            ) from None
        kwargs = dict(data)
        kwargs["type"] = stype
        if kwargs.get("choices") is not None:
            kwargs["choices"] = tuple(kwargs["choices"])
        definition = cls(**kwargs)
        definition.check_consistent()
        return definition

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> SettingDefinition:
        """Rebuild a definition that was checked when it was stored (no re-checks:
        this runs once per setting on every resolution)."""
        kwargs = dict(data)
        kwargs["type"] = SettingType(kwargs["type"])
        choices = kwargs.get("choices")
        if choices is not None:
            kwargs["choices"] = tuple(choices)
        return cls(**kwargs)


def definitions_for(version: str, history: Iterable[SettingDefinition]) -> list[SettingDefinition]:
    """The definitions of ``history`` (each with its lifecycle) valid in ``version``."""
    v = Version(version)
    return sorted((d for d in history if d.defined_in(v)), key=lambda d: d.key)


def _type_error(key: str, expected: str, value: Any) -> SettingValidationError:
    return SettingValidationError(
        key, "type", value, f"expected {expected}, got {type(value).__name__} {value!r}"
    )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _check_json(key: str, value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise SettingValidationError(key, "type", "...", "JSON value nested deeper than 32 levels")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        _check_int64(key, value, "JSON (integers within 64 bits)")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _type_error(key, "JSON (finite numbers only)", value)
        return
    if isinstance(value, list):
        for item in value:
            _check_json(key, item, depth + 1)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise _type_error(key, "JSON (object keys must be strings)", k)
            _check_json(key, item, depth + 1)
        return
    raise _type_error(key, "a JSON value", value)


#: what the databases (and the JSON encoder) store exactly: signed 64-bit integers
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _check_int64(key: str, value: int, expected: str) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise SettingValidationError(
            key,
            "type",
            value,
            f"expected {expected} (from -2**63 to 2**63-1), got an integer of "
            f"{value.bit_length()} bits",
        )
