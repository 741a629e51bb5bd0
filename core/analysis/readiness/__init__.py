"""Upgrade readiness: pure evaluation of tenants, their overrides and their
customizations against a target release's manifest.

Nothing here touches the database (see :mod:`core.store.readiness_service`). Every
finding has a stable ``code`` (DESIGN.md, "Upgrade readiness"), a severity, the
subject it concerns (a customization or a setting), evidence and a suggested action.

The package, one noun a module (import each name from its home; this module
re-exports nothing):

- :mod:`~core.analysis.readiness.vocabulary`: codes, severities, statuses, ``Finding``;
- :mod:`~core.analysis.readiness.releases`: the target manifest and the others, indexed;
- :mod:`~core.analysis.readiness.rules`: the findings and the statuses they give;
- :mod:`~core.analysis.readiness.evaluation`: ``evaluate``, ``check_customization``;
- :mod:`~core.analysis.readiness.report`: the tenants' and customizations' readiness.

Status rules, precisely:

- a **tenant** is ``blocked`` when any finding that applies to it is a blocker,
  ``ready_with_warnings`` when any is a warning or unknown, else ``ready``
  (``info`` findings never change a status). A tenant's findings are its active
  overrides' findings plus the findings of the customizations enabled for it;
- a **customization** is ``obsolete`` when the target supersedes its capability
  (retire it at upgrade), else ``incompatible`` with any blocker, else ``unknown``
  when its code is not installed to verify, else ``needs_update`` with any warning,
  else ``compatible``;
- its **stability level**: ``D`` when the target would refuse it at load
  (REQUIRES_EXCLUDES_TARGET, HOOK_REMOVED, HOOK_PARAM_REMOVED) or its code cannot be
  verified (NOT_INSTALLED, HOOK_CATALOG_MISSING); else ``C`` when it uses an
  experimental hook; else ``B`` when it uses a hook deprecated in the target; else
  ``A`` (stable hooks only).
"""
