"""Customizations as the domain sees them: a consultant's manifest, what
introspection found in its code, and its registration. Plain data: the plugin
runtime (``plugins/``) produces these; readiness and fold-back consume them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class CustomizationManifest:
    """``customization.toml``."""

    name: str
    version: str
    tenants: tuple[str, ...]
    #: PEP 440 specifier on the product version, e.g. ">=1.5,<3"
    requires: str
    tested_up_to: str | None = None
    capability: str | None = None
    description: str = ""
    author: str = ""


@dataclass(frozen=True)
class HookUse:
    """One hook implementation found in a customization's code."""

    hook: str
    #: parameter names the implementation takes (pluggy: a subset of the spec's)
    params: tuple[str, ...]
    #: structural fingerprint of the function body: survives renamed identifiers
    #: and changed literals
    fingerprint: str
    #: the implementation only returns constants ("should be a setting")
    returns_constant: bool = False
    #: module:function, for humans
    location: str = ""


@dataclass(frozen=True)
class Health:
    calls: int = 0
    failures: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True)
class Registration:
    """What the registry stores when a customization is published."""

    manifest: CustomizationManifest
    hooks: tuple[HookUse, ...]
    #: setting keys its code references (string literals that are catalog keys)
    setting_keys: tuple[str, ...]
    #: tenants it is enabled for (a subset of manifest.tenants)
    enabled_for: tuple[str, ...] = ()
    published_at: datetime | None = None
    health: Health = field(default_factory=Health)
    #: the package's identity (its directory name): a name published from another
    #: package is a collision
    package: str = ""
    published_by: str = ""

    @property
    def name(self) -> str:
        return self.manifest.name
