"""An active override, as the analyses read it (readiness, usage, fold-back)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: an override's environment when it holds for every environment of its tenant
TENANT_SCOPE = ""


@dataclass(frozen=True)
class ActiveOverride:
    """One active override: ``environment`` is :data:`TENANT_SCOPE` ("") for a
    tenant-wide override, as the ``overrides`` table stores it."""

    tenant: str
    environment: str
    key: str
    value: Any
