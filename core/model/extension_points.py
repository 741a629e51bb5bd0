"""Extension points (hookspecs) as release manifests record them: plain data,
so ``core`` can compare releases without importing pluggy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from core.model.errors import InvalidInputError
from core.model.lifecycle import Lifecycle

STABLE = "stable"
EXPERIMENTAL = "experimental"
#: the ``source`` of Tailor's own extension points (``tailor_*``); their lifecycle
#: (added, deprecated, removed) is numbered in Tailor's hook API, not in any
#: product's versions (see ``ReleaseManifest.tailor_hook_api``)
TAILOR_SOURCE = "tailor"


@dataclass(frozen=True)
class ExtensionPoint(Lifecycle):
    name: str
    params: tuple[str, ...]
    description: str = ""
    added: str | None = None
    deprecated: str | None = None
    removed: str | None = None
    replacement: str | None = None
    stability: str = STABLE
    firstresult: bool = False
    #: who declares it: "tailor" or the host product's hookspec module
    source: str = "tailor"

    @property
    def is_tailor(self) -> bool:
        """One of Tailor's own hooks (versioned by the hook API)."""
        return self.source == TAILOR_SOURCE

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = list(self.params)
        return {k: v for k, v in data.items() if v not in (None, "", False) or k == "params"}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "extension_point") -> ExtensionPoint:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InvalidInputError(where, f"unknown field(s): {', '.join(sorted(unknown))}")
        if "name" not in data:
            raise InvalidInputError(where, "missing required field 'name'")
        params = data.get("params", [])
        if not isinstance(params, list | tuple) or not all(isinstance(p, str) for p in params):
            raise InvalidInputError(f"{where}.params", "must be a list of parameter names")
        stability = data.get("stability", STABLE)
        if stability not in (STABLE, EXPERIMENTAL):
            raise InvalidInputError(
                f"{where}.stability", f"{stability!r} is not 'stable' or 'experimental'"
            )
        return cls(**{**dict(data), "params": tuple(params)})
