"""What is published (the registry, with the code it stores), what packages a
process found on disk to publish (sources) and refused, side by side; and the
drift between them (``tailor doctor``). Servers run only what the registry
stores: a package on disk is only something to publish."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.model.auth import Principal
from core.model.customizations import CustomizationManifest, Health, HookUse, Pin, Registration
from plugins.loading import Loaded
from plugins.manifest import Problem


class DriftCode(enum.StrEnum):
    INSTALLED_NOT_REGISTERED = "INSTALLED_NOT_REGISTERED"
    REGISTERED_NOT_INSTALLED = "REGISTERED_NOT_INSTALLED"
    VERSION_MISMATCH = "VERSION_MISMATCH"
    #: this server's cached copy of a pinned version differs from the database's
    CACHE_MISMATCH = "CACHE_MISMATCH"

    @property
    def affects_serving(self) -> bool:
        """What servers run is not what was published (the other codes are about
        packages on disk, which are only sources to publish)."""
        return self in (DriftCode.REGISTERED_NOT_INSTALLED, DriftCode.CACHE_MISMATCH)


@dataclass(frozen=True)
class Drift:
    code: DriftCode
    customization: str
    message: str


@dataclass(frozen=True)
class CustomizationPresence:
    """Where one customization is present: found on disk (``installed``: a source
    to publish), registered in the registry (with its code, or without), refused
    at load; and the drift between them.
    (Its readiness status for a release is
    :class:`core.analysis.readiness.vocabulary.CustomizationStatus`.)"""

    name: str
    manifest: CustomizationManifest | None
    installed: Loaded | None = None
    registration: Registration | None = None
    refused: Sequence[Loaded] = ()

    @property
    def stored(self) -> bool:
        """The registry stores its code: every server runs its pinned versions."""
        return self.registration is not None and self.registration.sha256 is not None

    @property
    def hooks(self) -> tuple[HookUse, ...]:
        if self.installed is not None:
            return self.installed.hooks
        return self.registration.hooks if self.registration else ()

    @property
    def setting_keys(self) -> tuple[str, ...]:
        if self.installed is not None:
            return self.installed.setting_keys
        return self.registration.setting_keys if self.registration else ()

    @property
    def problems(self) -> list[Problem]:
        return [p for r in self.refused for p in r.problems]

    @property
    def warnings(self) -> list[str]:
        return list(self.installed.warnings) if self.installed else []

    @property
    def health(self) -> Health:
        return self.registration.health if self.registration else Health()

    @property
    def drift(self) -> list[Drift]:
        found = []
        if self.installed is not None and self.registration is None:
            found.append(
                Drift(
                    DriftCode.INSTALLED_NOT_REGISTERED,
                    self.name,
                    f"{self.name} is found at {self.installed.source.path} but not published: "
                    f"run 'tailor customization publish {self.installed.source.path}'",
                )
            )
        if self.registration is not None and not self.stored:
            found.append(
                Drift(
                    DriftCode.REGISTERED_NOT_INSTALLED,
                    self.name,
                    f"{self.name} {self.registration.manifest.version} is registered but the "
                    "database does not store its code (it was registered before versions "
                    "were stored): publish it again; its tenants run without it",
                )
            )
        if (
            self.registration is not None
            and self.installed is not None
            and self.installed.manifest is not None
            and self.installed.manifest.version != self.registration.manifest.version
        ):
            found.append(
                Drift(
                    DriftCode.VERSION_MISMATCH,
                    self.name,
                    f"{self.name}: {self.installed.manifest.version} found at "
                    f"{self.installed.source.path}, {self.registration.manifest.version} "
                    "published; publish the version found on disk if it is the newer",
                )
            )
        return found


def statuses(
    registrations: Sequence[Registration],
    installed: Sequence[Loaded],
    refused: Sequence[Loaded],
    principal: Principal,
    tenant: str | None = None,
    capability: str | None = None,
) -> list[CustomizationPresence]:
    """Merge the registry (already scoped for ``principal``) with this process's
    code, keeping only what ``principal`` may see and what the filters select."""
    by_name: dict[str, dict] = {}
    for r in registrations:
        by_name.setdefault(r.name, {})["registration"] = r
    for found in installed:
        by_name.setdefault(found.name, {})["installed"] = found
    for rejected in refused:
        by_name.setdefault(rejected.name, {}).setdefault("refused", []).append(rejected)
    result = []
    for name in sorted(by_name):
        parts = by_name[name]
        registration: Registration | None = parts.get("registration")
        loaded: Loaded | None = parts.get("installed")
        refused_here: list[Loaded] = parts.get("refused", [])
        manifest = (
            (loaded.manifest if loaded else None)
            or (registration.manifest if registration else None)
            or next((r.manifest for r in refused_here if r.manifest), None)
        )
        tenants = list(manifest.tenants) if manifest else []
        if registration is None and not principal.sees_all_tenants:
            if not principal.visible(tenants):
                continue
        if tenant is not None and tenant not in tenants:
            continue
        if capability is not None and (manifest is None or manifest.capability != capability):
            continue
        result.append(
            CustomizationPresence(
                name=name,
                manifest=manifest,
                installed=loaded,
                registration=registration,
                refused=tuple(refused_here),
            )
        )
    return result


@dataclass(frozen=True)
class CachedVersion:
    """One pinned version as this server's cache holds it."""

    name: str
    version: str
    sha256: str | None
    #: "cached" (verified), "not cached" (materialized at its first call), "no code"
    #: (the database stores none), "mismatch" (the copy here differs: replaced at
    #: its next materialization)
    state: str
    tenants: tuple[str, ...]


def cache_states(pins: Mapping[str, Sequence[Pin]], cache_root: Path) -> list[CachedVersion]:
    """Compare this server's cache with what the database pins (``tailor doctor``)."""
    from plugins import archive

    tenants: dict[tuple[str, str, str | None], list[str]] = {}
    for tenant, pinned in pins.items():
        for pin in pinned:
            tenants.setdefault((pin.name, pin.version, pin.sha256), []).append(tenant)
    found = []
    for (name, version, sha256), who in sorted(tenants.items(), key=lambda i: i[0][:2]):
        if sha256 is None:
            state = "no code"
        elif not (cache_root / sha256).exists():
            state = "not cached"
        else:
            state = "cached" if archive.verify(cache_root / sha256, sha256) else "mismatch"
        found.append(CachedVersion(name, version, sha256, state, tuple(sorted(who))))
    return found


def cache_drift(states: Sequence[CachedVersion], cache_root: Path) -> list[Drift]:
    return [
        Drift(
            DriftCode.CACHE_MISMATCH,
            c.name,
            f"{c.name} {c.version}: the copy in {cache_root / (c.sha256 or '')} differs from "
            "the database's (sha256 does not verify); it is replaced at its next call",
        )
        for c in states
        if c.state == "mismatch"
    ]
