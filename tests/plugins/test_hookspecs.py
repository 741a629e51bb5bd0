"""The extension-point catalog: lifecycle read back from the hookspecs, release
manifests built from it, host hooks, and a meta-test that every hook is
documented and tested."""

from __future__ import annotations

import inspect
from pathlib import Path

from api.wiring import attach
from core.model.auth import Principal
from plugins.catalog import spec_functions
from plugins.loading import default_directory
from plugins.runtime import RuntimeOptions
from tests.conftest import ADMIN
from tests.sample import ACME_CATALOG, acme_points

TESTS = Path(__file__).resolve().parents[1]
SECTIONS = ("Parameters:", "Returns:", "Example", "Lifecycle:", "once per")


def test_every_hookspec_is_documented_and_tested():
    catalog = ACME_CATALOG
    # every test module, minus this meta-test's own text
    own = inspect.getsource(test_every_hookspec_is_documented_and_tested)
    sources = "\n".join(p.read_text() for p in TESTS.rglob("test_*.py")).replace(own, "")
    problems = []
    for module in catalog.modules:
        for function in spec_functions(module.module):
            doc = inspect.getdoc(function) or ""
            problems += [f"{function.__name__}: no {s!r}" for s in SECTIONS if s not in doc]
            if function.__name__ not in sources:
                problems.append(f"{function.__name__}: no test mentions it")
            if catalog.get(function.__name__).added is None:
                problems.append(f"{function.__name__}: no lifecycle")
    assert problems == []
    assert len(catalog.all()) >= 8


def test_lifecycle_per_version():
    names = {v: {p.name for p in acme_points(v)} for v in ("1.0", "1.5", "2.0", "3.0")}
    assert (
        "tailor_resolve_setting" in names["1.0"] and "tailor_resolve_settings" not in names["1.0"]
    )
    assert {"tailor_resolve_setting", "tailor_resolve_settings", "acme_price_adjustments"} <= (
        names["1.5"]
    )
    assert "acme_order_approval_route" in names["2.0"]
    assert "tailor_resolve_setting" not in names["3.0"]
    [deprecated] = [p for p in acme_points("2.0") if p.name == "tailor_resolve_setting"]
    # Tailor's own hooks are numbered in hook APIs (Acme 1.5 and 2.0 run API 2)
    assert deprecated.deprecated == "2" and deprecated.removed == "3"
    assert deprecated.params == ("tenant", "environment", "key", "value")


async def test_release_manifests_carry_extension_points(services):
    release = await services.releases.get("1.5", Principal.system())
    points = {p["name"]: p for p in release.manifest["extension_points"]}
    assert release.manifest["tailor_hook_api"] == "2"
    assert points["tailor_resolve_setting"]["deprecated"] == "2"
    assert points["tailor_register_settings"]["params"] == []
    assert "acme_order_approval_route" not in points


async def test_host_extension_point_called_per_tenant(services, tenant):
    from plugins.runtime import PluginRuntime

    await services.tenants.create(ADMIN, "stark", "Stark", "2.0")
    runtime = PluginRuntime.load(
        RuntimeOptions(directories=[default_directory()], path_env="", use_entry_points=False),
        ACME_CATALOG,
    )
    attach(services, runtime)
    [footer] = [c for c in runtime.sources() if c.name == "stark-invoice-footer"]
    await services.registry.publish(ADMIN, footer.registration())
    results, failures = await runtime.call_extension(
        "stark", "acme_invoice_footer", {"tenant": "stark", "invoice": {"number": "INV-7"}}
    )
    assert results == []  # published, not enabled yet
    await services.registry.set_enabled(ADMIN, "stark", "stark-invoice-footer", True)
    results, failures = await runtime.call_extension(
        "stark", "acme_invoice_footer", {"tenant": "stark", "invoice": {"number": "INV-7"}}
    )
    assert failures == []
    assert results == [
        ("stark-invoice-footer", "Invoice INV-7: subject to US export control (EAR99).")
    ]
    other, _ = await runtime.call_extension(
        tenant, "acme_invoice_footer", {"tenant": tenant, "invoice": {"number": "INV-8"}}
    )
    assert other == []
    await runtime.close()


def test_hook_names_have_one_home():
    """core.model.hooks spells Tailor's hook names once; the hookspecs declare
    exactly those hooks, in the same order, and every replacement a lifecycle
    names is one of them."""
    from core.model import hooks
    from plugins import hookspecs
    from plugins.lifecycle import ATTRIBUTE

    assert hookspecs.TAILOR_HOOKS == hooks.TAILOR_HOOKS
    replacements = {
        getattr(getattr(hookspecs, name), ATTRIBUTE).replacement for name in hookspecs.TAILOR_HOOKS
    } - {None}
    assert replacements and replacements <= set(hooks.TAILOR_HOOKS)
