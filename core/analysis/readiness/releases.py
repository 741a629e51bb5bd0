"""The releases a readiness run reads: the target manifest indexed for look-ups
(:class:`TargetIndex`) and every other release's manifest (:class:`History`),
for evidence about what the target no longer has."""

from __future__ import annotations

from collections.abc import Iterable

from packaging.version import Version

from core.model.definitions import SettingDefinition
from core.model.extension_points import ExtensionPoint
from core.model.manifest import ReleaseManifest

# -- history: what earlier releases said about a hook or setting -------------------


class History:
    """Every known release's manifest, for evidence about things the target lacks
    (when a hook or setting was last defined, and its recorded replacement)."""

    def __init__(self, manifests: Iterable[ReleaseManifest], before: Version | None = None) -> None:
        """``before``: the target's version. "Last in" is the last release before
        it that had a hook or setting; releases after it (a planned 3.0 beside a
        target 2.5) are known, but only name a hook or setting nothing before the
        target had."""
        ordered = sorted(manifests, key=lambda m: m.parsed)
        if before is not None:  # later releases first, then earlier ones: those win
            ordered = [m for m in ordered if m.parsed > before] + [
                m for m in ordered if m.parsed <= before
            ]
        self.before = before
        self.hooks: dict[str, tuple[str, ExtensionPoint]] = {}
        self.settings: dict[str, tuple[str, SettingDefinition]] = {}
        self.renames: dict[str, tuple[str, str]] = {}
        #: hook renames and parameter renames (schema 2), the last release's winning
        self.hook_renames: dict[str, str] = {}
        self.param_renames: dict[str, dict[str, str]] = {}
        for m in ordered:  # later releases overwrite: the last definition wins
            for p in m.extension_points:
                self.hooks[p.name] = (m.version, p)
            for d in m.settings:
                if really_defined(d, m):
                    self.settings[d.key] = (m.version, d)
            for old, new in m.renamed:
                self.renames[old] = (m.version, new)
            self.hook_renames.update(m.renamed_hooks)
            for hook, pairs in m.renamed_params:
                self.param_renames.setdefault(hook, {}).update(pairs)

    def last_defined_in(self, key: str) -> str | None:
        """The last release before the target whose manifest really defines
        ``key`` (a definition listed with ``removed`` at or below its release does
        not count); None when only later releases do."""
        found = self.settings.get(key)
        return found[0] if found and self.earlier(found[0]) else None

    def earlier(self, version: str) -> bool:
        """Is ``version`` (a release of this history) before the target?"""
        if self.before is None:
            return True
        try:
            return Version(version) < self.before
        except ValueError:  # InvalidVersion or a 5,000-digit segment
            return False


def really_defined(d: SettingDefinition, m: ReleaseManifest) -> bool:
    """Does ``m`` define ``d`` (not listed as ``removed`` at or below ``m``'s release)?"""
    if d.removed is None:
        return True
    try:
        return Version(d.removed) > m.parsed
    except ValueError:  # InvalidVersion or a 5,000-digit segment
        return True


class TargetIndex:
    """The target manifest, indexed for look-ups, with every other release's
    :class:`History` as the target sees it. Built once per readiness run: its
    rules and the apps' operation checks read the same one."""

    def __init__(self, manifest: ReleaseManifest, history: Iterable[ReleaseManifest] = ()) -> None:
        """``history``: the known releases' manifests (the target's own is left out)."""
        self.manifest = manifest
        #: every other release's manifest
        self.others = tuple(m for m in history if m.version != manifest.version)
        #: what they said about the hooks and settings the target lacks
        self.past = History(self.others, manifest.parsed)
        self.hooks = {p.name: p for p in manifest.extension_points}
        self.settings = {d.key: d for d in manifest.settings if really_defined(d, manifest)}
        self.renames = manifest.renames
        self.hook_renames = manifest.hook_renames
        self.param_renames = manifest.param_renames
        self._catalog: list[str] | None = None
        #: capability -> the first release up to the target that supersedes it:
        #: folding a capability back is cumulative
        self.superseded_in: dict[str, str] = {}
        for m in sorted((*self.others, manifest), key=lambda m: m.parsed):
            if m.parsed <= manifest.parsed:
                for capability in m.supersedes:
                    self.superseded_in.setdefault(capability, m.version)
        #: (customization, tenant) -> how that tenant leaves it (the target's migrations);
        #: a migrated customization is superseded even when it declares no capability
        self.migrations = {(g.customization, g.tenant): g for g in manifest.migrations}
        self.migrated = {g.customization: g.capability for g in manifest.migrations}

    def catalog(self, past: History) -> list[str]:
        """Every setting key of the target or an earlier release, sorted (once)."""
        if self._catalog is None:
            self._catalog = sorted(set(self.settings) | set(past.settings))
        return self._catalog


def replacement_of(key: str, target: TargetIndex, past: History) -> str | None:
    """The key that replaces ``key``: its rename in the target or the history, else
    the replacement its last definition names; None when nothing does."""
    if key in target.renames:
        return target.renames[key]
    if key in past.renames:
        return past.renames[key][1]
    last = past.settings.get(key)
    return last[1].replacement if last else None
