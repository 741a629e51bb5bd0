"""Operation checks: what the tenants' front-end apps ask for, against a target
release (as Apollo's operation checks do for schemas).

Every stored document of an app (:mod:`core.model.apps`) names setting keys
(literal ``keys:`` of its ``settings`` fields) and prefixes (``prefix:``); the
app also declares the keys it reads as OFREP flags. A key the target removes is
``APP_SETTING_REMOVED``; one it renames (the manifest's ``[renamed]``: the same
setting under a new key) ``APP_SETTING_RENAMED``, naming the new key; a
deprecated setting's replacement is another setting, so its old key is removed.
A key whose type differs from the tenant's current release is
``APP_SETTING_TYPE_CHANGED``. A prefix stands for every key under it in the
tenant's current release; one under which the target defines nothing is
``APP_SETTING_REMOVED`` itself. A document that no longer validates against
Tailor's schema is ``APP_OPERATION_INVALID``. Findings are on the app (subject
kind ``app``, subject ``APP/KEY``) and its tenant. Pure: :mod:`core.store.readiness_service` loads
the apps in one statement and hands the schema check's answers in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.analysis.readiness.evaluation import TenantRelease
from core.analysis.readiness.releases import History, TargetIndex, really_defined, replacement_of
from core.analysis.readiness.vocabulary import Code, Finding
from core.model.apps import App
from core.model.definitions import SettingDefinition

APP = "app"


def subject(app: App, what: str) -> str:
    """A finding's subject: the app and what it asks for (a key, a prefix, an
    operation), so each is triaged on its own (``CODE:APP/KEY@tenant``)."""
    return f"{app.name}/{what}"


def app_findings(
    apps: Iterable[App],
    tenants: Sequence[TenantRelease],
    target: TargetIndex,
    invalid: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[Finding]]:
    """tenant -> the findings on its apps (only tenants in ``tenants``) against
    ``target`` (indexed once per readiness run, with the other releases' history).
    ``invalid``: document sha256 -> why it does not validate (None: not checked)."""
    releases = {m.version: m for m in (*target.others, target.manifest)}
    current = {t.slug: t.release for t in tenants}
    defined: dict[str, dict[str, SettingDefinition]] = {}
    out: dict[str, list[Finding]] = {}
    for app in sorted(apps, key=lambda a: a.name):
        release = current.get(app.tenant)
        if release is None:
            continue
        if release not in defined:
            m = releases.get(release)
            defined[release] = (
                {d.key: d for d in m.settings if really_defined(d, m)} if m is not None else {}
            )
        found = _app(app, defined[release], target, target.past, invalid or {})
        if found:
            out.setdefault(app.tenant, []).extend(found)
    return out


def _app(
    app: App,
    now: Mapping[str, SettingDefinition],
    target: TargetIndex,
    past: History,
    invalid: Mapping[str, Sequence[str]],
) -> list[Finding]:
    tv = target.manifest.version
    #: key -> where the app asks for it (operation names, "flag", "prefix P")
    asked: dict[str, list[str]] = {}
    findings: list[Finding] = []
    for flag in app.flags:
        asked.setdefault(flag, []).append("OFREP flag")
    for op in app.operations:
        label = f"operation {op.name or op.id}"
        for key in op.keys:
            asked.setdefault(key, []).append(label)
        for prefix in op.prefixes:
            under = [k for k in now if k.startswith(prefix)]
            if under and not any(k.startswith(prefix) for k in target.settings):
                findings.append(
                    Finding(
                        Code.APP_SETTING_REMOVED,
                        APP,
                        subject(app, prefix),
                        f"app {app.name}'s {label} asks for the prefix {prefix!r}, under which "
                        f"{tv} defines no setting (it has {len(under)} now)",
                        f"change {label} of {app.name} before {app.tenant} upgrades",
                        {"app": app.name, "prefix": prefix, "operation": op.id},
                    )
                )
                continue
            for key in under:
                asked.setdefault(key, []).append(f"{label} (prefix {prefix!r})")
        errors = invalid.get(op.sha256)
        if errors:
            findings.append(
                Finding(
                    Code.APP_OPERATION_INVALID,
                    APP,
                    subject(app, op.name or op.sha256[:12]),
                    f"app {app.name}'s {label} no longer validates against Tailor's schema: "
                    f"{errors[0]}",
                    f"change {label} and push it again (tailor app operations push {app.name} "
                    "FILE.graphql)",
                    {"app": app.name, "operation": op.id, "errors": list(errors)},
                )
            )
    for key in sorted(asked):
        finding = _key(app, key, asked[key], now, target, past)
        if finding is not None:
            findings.append(finding)
    return findings


def _key(
    app: App,
    key: str,
    where: list[str],
    now: Mapping[str, SettingDefinition],
    target: TargetIndex,
    past: History,
) -> Finding | None:
    tv = target.manifest.version
    evidence: dict[str, Any] = {"app": app.name, "setting": key, "asked_by": where}
    asks = f"app {app.name} reads {key} ({', '.join(where)})"
    definition = target.settings.get(key)
    if definition is None:
        if key not in now and key not in past.settings:
            return None  # not a product setting: a customization's own, or a typo
        # a rename (the manifest's [renamed]): the same setting under a new key
        renamed = target.renames.get(key) or (past.renames.get(key, (None, None))[1])
        if renamed is not None and renamed in target.settings:
            evidence["replacement"] = renamed
            return Finding(
                Code.APP_SETTING_RENAMED,
                APP,
                subject(app, key),
                f"{asks}, which {tv} renames to {renamed}",
                f"ask for {renamed} in {app.name} (it answers nothing for {key} in {tv})",
                evidence,
            )
        # a replacement is another setting (its own type and meaning): removed
        replacement = replacement_of(key, target, past)
        evidence.update(replacement=replacement, last_defined_in=past.last_defined_in(key))
        return Finding(
            Code.APP_SETTING_REMOVED,
            APP,
            subject(app, key),
            f"{asks}, which {tv} no longer defines"
            + (f" (its replacement: {replacement})" if replacement else ""),
            f"read {replacement} instead in {app.name}"
            if replacement
            else f"stop asking for {key} in {app.name} before {app.tenant} upgrades",
            evidence,
        )
    before = now.get(key)
    if before is not None and before.type is not definition.type:
        evidence.update(type=before.type.value, target_type=definition.type.value)
        return Finding(
            Code.APP_SETTING_TYPE_CHANGED,
            APP,
            subject(app, key),
            f"{asks}: its type is {before.type.value} now and {definition.type.value} in {tv}",
            f"read {key} as {definition.type.value} in {app.name} before {app.tenant} upgrades",
            evidence,
        )
    return None
