"""Tailor's own extension points: the hooks a consultant's customization implements.

A customization marks its functions with ``pluggy.HookimplMarker("tailor")`` and
names them after one of these hooks; it may take any subset of the parameters.
Every hook is called once per batch (one resolution, one write), for the tenant's
enabled customizations only. ``tenant`` is always the tenant's slug and
``environment`` the environment name, or ``None`` for tenant-wide values.

Tailor's hooks are versioned by Tailor's **hook API** ("1", "2", ...), never by a
product's version numbers: each hookspec's lifecycle (``plugins.lifecycle``) is
numbered in hook APIs, and this module is the one home of that history. A release
manifest names the API it runs on (``tailor_hook_api``, by default ``HOOK_API``,
the one this Tailor runs); ``plugins.catalog`` turns the lifecycles into that API's
``tailor_*`` extension points. API 1 has tailor_register_settings, the per-setting
tailor_resolve_setting, tailor_validate_setting and tailor_setting_changed. API 2
adds the batch tailor_resolve_settings and deprecates tailor_resolve_setting in
its favour. API 3 (announced: no Tailor runs it yet, so a hook that arrives in it
is refused today) removes tailor_resolve_setting, adds the batch
tailor_settings_changed and deprecates tailor_setting_changed in its favour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from plugins.lifecycle import lifecycle

PROJECT = "tailor"
#: the hook API this Tailor runs (calls and accepts implementations of)
HOOK_API = "2"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class TailorHookDeprecationWarning(DeprecationWarning):
    """A customization implements a deprecated Tailor hook."""


@hookspec
@lifecycle(added="1")
def tailor_register_settings() -> list[dict[str, Any]]:
    """Setting definitions a customization adds for its tenants only.

    Parameters:
        none.

    Returns:
        A list of definitions as dicts with the fields of a release manifest's
        settings: ``key``, ``type`` (bool, int, float, string, enum, json),
        ``default`` and optionally ``description``, ``min``, ``max``, ``choices``,
        ``pattern``. A key the product already defines is ignored.

    Example::

        @hookimpl
        def tailor_register_settings():
            return [{"key": "loyalty.points.rate", "type": "float", "default": 0.01}]

    Lifecycle:
        added in hook API 1, stable. Called once per batch (once per resolution
        or write).
    """


@hookspec
@lifecycle(added="2")
def tailor_resolve_settings(
    tenant: str, environment: str | None, values: Mapping[str, Any]
) -> dict[str, Any]:
    """Customized values for one resolution batch.

    Parameters:
        tenant: the tenant's slug.
        environment: the environment resolved, or None for tenant-wide values.
        values: every setting of the batch (key -> value after defaults and
            overrides); read-only.

    Returns:
        A dict of key -> value for the keys the customization decides; keys not
        in ``values`` are ignored, values are validated against the setting's
        definition (an invalid one is reported and the non-customized value is
        served).

    Example::

        @hookimpl
        def tailor_resolve_settings(tenant, values):
            if values.get("billing.currency.default") == "EUR":
                return {"billing.invoice.rounding": "half_even"}
            return {}

    Lifecycle:
        added in hook API 2 (replaces the per-setting tailor_resolve_setting),
        stable.
        Called once per batch, never once per setting.
    """


@hookspec(
    warn_on_impl=TailorHookDeprecationWarning(
        "tailor_resolve_setting is deprecated since Tailor hook API 2 and is removed in API 3: "
        "implement tailor_resolve_settings(tenant, environment, values), called once per batch"
    )
)
@lifecycle(added="1", deprecated="2", removed="3", replacement="tailor_resolve_settings")
def tailor_resolve_setting(tenant: str, environment: str | None, key: str, value: Any) -> Any:
    """Deprecated: a customized value for ONE setting.

    Parameters:
        tenant: the tenant's slug.
        environment: the environment resolved, or None.
        key: the setting's key.
        value: its value after defaults and overrides.

    Returns:
        The customized value, or None to keep ``value``.

    Example::

        @hookimpl
        def tailor_resolve_setting(key, value):
            return 60 if key == "billing.invoice.due_days" else None

    Lifecycle:
        added in hook API 1, deprecated in API 2 in favour of
        tailor_resolve_settings, removed in API 3. Unlike every other hook it is
        called once per setting of the batch, which is why it was replaced;
        registering it warns (TailorHookDeprecationWarning).
    """


@hookspec
@lifecycle(added="1")
def tailor_validate_setting(
    tenant: str, environment: str | None, key: str, value: Any
) -> str | list[str] | None:
    """Business-rule errors for a write, on top of type and constraint checks.

    Parameters:
        tenant: the tenant's slug.
        environment: the environment written, or None for a tenant-wide override.
        key: the setting's key.
        value: the new value, already valid for the setting's definition.

    Returns:
        None (or an empty list) to accept, otherwise a message or a list of
        messages; the write is refused and nothing is written.

    Example::

        @hookimpl
        def tailor_validate_setting(key, value):
            if key == "billing.invoice.due_days" and value > 60:
                return "our credit policy allows at most 60 days"

    Lifecycle:
        added in hook API 1, stable. Called once per batch (once per write).
    """


@hookspec
@lifecycle(added="1", deprecated="3", replacement="tailor_settings_changed")
def tailor_setting_changed(
    tenant: str, environment: str | None, key: str, old: Any, new: Any, actor: str
) -> None:
    """Notification after a write was committed.

    Parameters:
        tenant: the tenant's slug.
        environment: the environment written, or None for tenant-wide.
        key: the setting's key.
        old: the previous override value (None when there was none).
        new: the new override value (None after a reset).
        actor: who made the change (the token's label or the operator).

    Returns:
        Nothing; a raising hook is reported but the write stands.

    Example::

        @hookimpl
        def tailor_setting_changed(tenant, key, new):
            notify_erp(tenant, key, new)

    Lifecycle:
        added in hook API 1, stable; deprecated in API 3 in favour of
        tailor_settings_changed. Called once per batch (once per committed write).
    """


@hookspec
@lifecycle(added="3")
def tailor_settings_changed(
    tenant: str, environment: str | None, changes: list[dict[str, Any]], actor: str
) -> None:
    """After a batch of setting writes is committed (one call per batch, every key).

    Parameters:
        tenant: the tenant's slug.
        environment: the environment written, or None for tenant-wide.
        changes: one dict per changed key: ``key``, ``old``, ``new``.
        actor: who made the change.

    Returns:
        Nothing; a raising hook is reported but the writes stand.

    Example::

        @hookimpl
        def tailor_settings_changed(tenant, changes):
            notify_erp(tenant, [c["key"] for c in changes])

    Lifecycle:
        added in hook API 3 (announced: this Tailor runs API 2, so an
        implementation is refused until it runs API 3). Called once per batch
        (once per committed write).
    """


#: every Tailor hook's name, in declaration order (read from the specs above, so
#: never spelled twice; core.model.hooks.TAILOR_HOOKS names the same hooks)
TAILOR_HOOKS: tuple[str, ...] = tuple(
    name
    for name, value in list(globals().items())
    if name.startswith("tailor_") and hasattr(value, PROJECT + "_spec")
)
