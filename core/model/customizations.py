"""Customizations as the domain sees them: a consultant's manifest, what
introspection found in its code, and its registration. Plain data: the plugin
runtime (``plugins/``) produces these; readiness and fold-back consume them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.model.auth import Principal
from core.model.errors import NotFoundError

#: a tenant's slug, as customization.toml lists it and tenants are created
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


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
    #: False: the hooks' results are not a pure function of their inputs (time,
    #: randomness, outside services), so the tenants' settings answers are not cached
    pure: bool = True
    #: secret setting keys its hooks may receive (any other secret is absent from
    #: the ``values`` it is handed)
    secrets: tuple[str, ...] = ()
    #: the product it is made for (a product plugin's ``id``, e.g. "acme-erp");
    #: None: any product (manifests published before the field)
    product: str | None = None


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
    #: where it is defined: file:line inside the package (module:function when
    #: introspected from an imported module)
    location: str = ""
    #: structural features (hashed syntax shapes, helpers inlined) for
    #: near-duplicate detection by similarity; empty when not analyzed from source
    features: tuple[str, ...] = ()
    #: its source, followed by the package helpers it calls (fold-back evidence)
    source: str = ""
    #: what it does, abstracted (plugins/similarity.py): the operations,
    #: comparisons, functions, constant signs and setting keys it uses ("key:K")
    signature: tuple[str, ...] = ()
    #: its facts, one a line, constants written as #1, #2, ...
    behaviour: str = ""
    #: (slot, value, role) of each constant of ``behaviour``
    constants: tuple[tuple[str, Any, str], ...] = ()


@dataclass(frozen=True)
class KeyReference:
    """A setting key (or a key prefix) a customization's code refers to, found
    statically in one of its modules."""

    #: the full key, or a prefix ending with "." when ``how`` is "prefix"
    key: str
    #: the module's path inside the package ("hooks.py", "impl/rules.py")
    file: str
    line: int
    #: how the code spells it: literal, dict key, constant NAME, f-string,
    #: concatenation, format, join, prefix
    how: str

    @property
    def is_prefix(self) -> bool:
        return self.how == "prefix"

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def covers(self, key: str) -> bool:
        return key.startswith(self.key) if self.is_prefix else key == self.key


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
    #: where its code refers to setting keys (static evidence, file:line); empty
    #: when the registration predates the package analysis
    references: tuple[KeyReference, ...] = ()
    #: the sha256 of its package's canonical tree (None: registered without code)
    sha256: str | None = None
    #: the module inside the package holding the hooks ("hooks", "__init__", ...)
    hooks_module: str = "hooks"
    #: (tenant, version) of each enabled tenant: the version it is pinned to
    pins: tuple[tuple[str, str], ...] = ()
    #: why this version was yanked (None: it was not); its tenants are flagged
    yank_reason: str | None = None
    #: the package's canonical zip, when publishing (never read back with a listing)
    archive: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.manifest.name


@dataclass(frozen=True)
class CustomizationView:
    """What one principal may see of one customization. The single home of that
    rule: GraphQL, the console and the CLI's JSON all build it with
    :func:`visible_customization`, so they cannot drift apart.

    A scoped caller sees only the tenants in its scope (listed, enabled, pinned),
    and no last error of a customization that is also listed for tenants beyond
    its scope: that error may come from another tenant's request (a customer id,
    a payload)."""

    #: the tenants its manifest lists, in the caller's scope
    tenants: tuple[str, ...]
    #: (tenant, version) of each enabled tenant in the caller's scope
    pins: tuple[tuple[str, str], ...]
    #: counters always; the last error only when it cannot come from another scope
    health: Health
    #: listed for tenants the caller may not see (their names are withheld)
    shared_beyond_scope: bool

    @property
    def enabled_for(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.pins)


def sees_customization(principal: Principal, listed: Iterable[str]) -> bool:
    """May ``principal`` learn that a customization listing ``listed`` exists at
    all: operators and release managers see every one, others only those made for
    one of their tenants."""
    return principal.sees_all_tenants or bool(principal.visible(listed))


def visible_customization(
    principal: Principal,
    listed: Iterable[str],
    pins: Iterable[tuple[str, str]],
    health: Health,
) -> CustomizationView:
    """What ``principal`` may see of a customization listing ``listed``, pinned as
    ``pins`` (tenant, version), with ``health``; see :class:`CustomizationView`."""
    listed = tuple(listed)
    tenants = tuple(principal.visible(listed))
    beyond = len(tenants) < len(listed)
    return CustomizationView(
        tenants=tenants,
        pins=tuple((t, v) for t, v in pins if principal.in_scope(t)),
        health=Health(health.calls, health.failures) if beyond else health,
        shared_beyond_scope=beyond,
    )


def customization_not_found(name: str) -> NotFoundError:
    """The one answer for a customization a caller may not see, whether it exists
    for other tenants or not at all: a scoped caller cannot probe names."""
    return NotFoundError(
        "customization", name, "publish it first ('tailor customization publish PATH')"
    )


@dataclass(frozen=True)
class CustomizationVersion:
    """One published version of a customization: immutable; a bad one is yanked."""

    name: str
    version: str
    #: the sha256 of its package's canonical tree (None: registered without code)
    sha256: str | None
    published_at: datetime | None
    published_by: str
    #: the tenants its manifest lists, and its ``requires``
    tenants: tuple[str, ...]
    requires: str
    yanked_at: datetime | None = None
    yank_reason: str | None = None
    #: the tenants (in the caller's scope) pinned to it
    pinned_for: tuple[str, ...] = ()

    @property
    def yanked(self) -> bool:
        return self.yanked_at is not None


@dataclass(frozen=True)
class Pin:
    """What one tenant runs of one customization: the pinned version, for the
    runtime (which materializes ``sha256`` from the database and runs nothing else)."""

    tenant: str
    manifest: CustomizationManifest
    sha256: str | None
    hooks: tuple[HookUse, ...]
    hooks_module: str

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version


#: upper bounds (milliseconds) of the latency histogram buckets kept per
#: (customization, tenant, hook); the last bucket is unbounded
LATENCY_BUCKETS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def latency_bucket(ms: float) -> int:
    """The index of the histogram bucket ``ms`` falls in (0 .. len(LATENCY_BUCKETS_MS))."""
    for i, bound in enumerate(LATENCY_BUCKETS_MS):
        if ms <= bound:
            return i
    return len(LATENCY_BUCKETS_MS)


def latency_percentile(buckets: tuple[int, ...], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding the ``q`` quantile (0 < q <= 1);
    None when nothing was measured. Past the last bound: the last bound."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return float(LATENCY_BUCKETS_MS[min(i, len(LATENCY_BUCKETS_MS) - 1)])
    return float(LATENCY_BUCKETS_MS[-1])


#: directions of an observed key: used by name (``values[k]``, ``values.get(k)``,
#: ``k in values``), returned (a key of the result), or the scan of all of
#: ``values`` (iterating, ``items()``, ``keys()``, ``len``: recorded once, under
#: SCAN_KEY, and evidence of no key in particular)
READ = "read"
RETURNED = "returned"
SCANNED = "scanned"
SCAN_KEY = "*"
#: the directions that make a key a dependency of the code
KEY_DIRECTIONS = frozenset({READ, RETURNED})


@dataclass(frozen=True)
class ObservedKey:
    """A setting key one customization's hook read (through the ``values``
    mapping) or returned (a key of its result), for one tenant, at run time;
    or (``direction`` SCANNED, ``key`` SCAN_KEY) the calls that scanned them all."""

    key: str
    #: READ, RETURNED or SCANNED
    direction: str
    count: int
    last_seen: datetime


@dataclass(frozen=True)
class Observation:
    """What the runtime saw of one (customization, tenant, hook): run-time
    evidence for readiness, fold-back and usage."""

    customization: str
    tenant: str
    hook: str
    calls: int
    failures: int
    #: calls whose result differed from the product's (non-customized) values:
    #: a resolve that returned at least one value unlike the one it was handed,
    #: or any non-None result of another hook
    changed: int
    #: latency histogram, one count per LATENCY_BUCKETS_MS bucket (+1 unbounded)
    latency_buckets: tuple[int, ...]
    last_error: str | None
    last_error_at: datetime | None
    first_seen: datetime
    last_seen: datetime
    keys: tuple[ObservedKey, ...] = ()
    #: the version the last call ran ("" before versions were recorded)
    version: str = ""

    @property
    def latency_p50_ms(self) -> float | None:
        return latency_percentile(self.latency_buckets, 0.5)

    @property
    def latency_p95_ms(self) -> float | None:
        return latency_percentile(self.latency_buckets, 0.95)

    @property
    def keys_read(self) -> frozenset[str]:
        return frozenset(k.key for k in self.keys if k.direction == READ)

    @property
    def keys_returned(self) -> frozenset[str]:
        return frozenset(k.key for k in self.keys if k.direction == RETURNED)

    @property
    def keys_used(self) -> frozenset[str]:
        """Keys the code depends on: read by name or returned (never a scan)."""
        return frozenset(k.key for k in self.keys if k.direction in KEY_DIRECTIONS)

    @property
    def scans(self) -> int:
        """Calls that went over all of ``values`` (evidence of no key)."""
        return sum(k.count for k in self.keys if k.direction == SCANNED)


@dataclass(frozen=True)
class HealthDelta:
    """Calls and failures of one customization since the last flush."""

    name: str
    calls: int
    failures: int
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass
class ObservationDelta:
    """What one process saw of one (customization, tenant, hook) since its last flush."""

    customization: str
    tenant: str
    hook: str
    calls: int = 0
    failures: int = 0
    changed: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    last_error: str | None = None
    last_error_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    #: (key, direction) -> count
    keys: dict[tuple[str, str], int] = field(default_factory=dict)
    #: the version of the customization the tenant ran (its pin)
    version: str = ""
