"""One key finder: what counts as reading or returning a setting key is decided
by plugins.evidence alone, and a package is analyzed once from load to publish."""

from __future__ import annotations

from pathlib import Path

from plugins import evidence, introspection
from tests.plugins.conftest import load_runtime

CODE = """
KEYS = {"due": "billing.invoice.due_days"}

def _unused():
    return "security.password.expiry_days"

@hookimpl
def tailor_resolve_settings(values):
    return {KEYS["due"]: 30} if values.get("billing.dunning.max_reminders") else {}
"""


def test_a_package_is_analyzed_once_from_check_to_registration(
    write_customization, plugin_dir: Path, monkeypatch
):
    write_customization("once", CODE)
    calls: list[Path] = []
    real = evidence.analyze_package

    def counting(root: Path, *args: object, **kwargs: object) -> evidence.PackageEvidence:
        calls.append(Path(root))
        return real(root, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(evidence, "analyze_package", counting)
    runtime = load_runtime(plugin_dir)
    (loaded,) = runtime.sources()
    registration = loaded.registration()
    assert [p.name for p in calls] == ["once"]
    # the keys are the finder's: the dead helper's key is not among them
    assert registration.setting_keys == (
        "billing.dunning.max_reminders",
        "billing.invoice.due_days",
    )
    assert {r.key for r in registration.references} == set(registration.setting_keys)
    (hook,) = registration.hooks
    assert hook.location == "hooks.py:12" and hook.features  # merged from the source


def test_introspection_has_no_key_finder_of_its_own():
    assert not hasattr(introspection, "setting_keys_in_source")
    assert not hasattr(introspection, "introspect")


HIDDEN = """
def _make():
    def tailor_resolve_settings(values):
        return {}

    return hookimpl(tailor_resolve_settings)


tailor_resolve_settings = _make()
"""


def test_a_hook_only_the_import_finds_points_inside_the_package(
    write_customization, plugin_dir: Path
):
    """No static rule sees this hook (made by a function at import): its location
    is still file:line inside the package, never the private module it was
    imported under."""
    write_customization("hidden", HIDDEN)
    (loaded,) = load_runtime(plugin_dir).sources()
    (hook,) = loaded.registration().hooks
    assert hook.hook == "tailor_resolve_settings"
    assert hook.location == "hooks.py:7", hook.location  # the def, after the header
    assert "_tailor_customization_" not in hook.location
