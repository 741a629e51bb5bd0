"""pluggy's semantics per tenant, through the worker processes: call order
(tryfirst, trylast, registration order), precedence of the first-called
customization, firstresult, the forms a customization may take, and whole
inputs whatever the query's filter."""

from __future__ import annotations

import textwrap

from api.wiring import attach
from tests.conftest import ADMIN
from tests.plugins.conftest import HEADER, manifest, publish_enable

KEY = "billing.invoice.due_days"


def returning(value: int, mark: str = "") -> str:
    return f"""
@hookimpl{mark}
def tailor_resolve_settings(values):
    return {{"{KEY}": {value}}}
"""


async def _value(services, runtime, tenant: str) -> tuple:
    attach(services, runtime)
    result = await services.settings.resolve(ADMIN, tenant, keys=[KEY])
    assert result.failures == []
    return result.settings[0].value, result.settings[0].source


async def test_the_first_customization_pluggy_calls_wins(
    services, tenant, write_customization, make_runtime
):
    # expected: tryfirst beats everything, trylast loses to everything, and among
    # equals the name order (registration in reverse name order) decides
    write_customization("alpha", returning(11))
    write_customization("beta", returning(12))
    write_customization("omega", returning(13, "(tryfirst=True)"))
    write_customization("aardvark", returning(14, "(trylast=True)"))
    runtime = make_runtime()
    await publish_enable(services, runtime, tenant, "alpha", "beta", "aardvark")
    assert await _value(services, runtime, tenant) == (11, "CUSTOMIZATION:alpha")
    await services.registry.set_enabled(ADMIN, tenant, "omega", True)
    assert await _value(services, runtime, tenant) == (13, "CUSTOMIZATION:omega")
    await services.registry.set_enabled(ADMIN, tenant, "omega", False)
    await services.registry.set_enabled(ADMIN, tenant, "alpha", False)
    await services.registry.set_enabled(ADMIN, tenant, "beta", False)
    assert await _value(services, runtime, tenant) == (14, "CUSTOMIZATION:aardvark")


SPECS = """
import pluggy

hookspec = pluggy.HookspecMarker("tailor")


@hookspec(firstresult=True)
def test_pick_carrier(tenant, order):
    \"\"\"The carrier for an order: the first answer wins.\"\"\"


@hookspec
def test_collect_notes(tenant, order):
    \"\"\"Notes for an order: every answer counts.\"\"\"
"""


async def test_firstresult_extension_points_stop_at_the_first_answer(
    services, tenant, tmp_path, write_customization, plugin_dir
):
    import importlib.util

    from plugins.catalog import Catalog, SpecModule
    from plugins.runtime import PluginRuntime, RuntimeOptions
    from tests.sample import ACME

    specs_file = tmp_path / "test_product_specs.py"
    specs_file.write_text(SPECS)
    spec = importlib.util.spec_from_file_location("test_product_specs", specs_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    catalog = Catalog.for_product(ACME, extra=[SpecModule("testproduct", module)])
    body = """
@hookimpl{mark}
def test_pick_carrier(order):
    return {answer!r}

@hookimpl
def test_collect_notes(order):
    return "note from {name}"
"""
    write_customization("c1", body.format(mark="", answer=None, name="c1"))
    write_customization("c2", body.format(mark="", answer="DHL", name="c2"))
    write_customization("c3", body.format(mark="", answer="UPS", name="c3"))
    runtime = PluginRuntime.load(
        RuntimeOptions(directories=[plugin_dir], path_env="", use_entry_points=False), catalog
    )
    try:
        assert [c.name for c in runtime.sources()] == ["c1", "c2", "c3"]
        attach(services, runtime)
        await publish_enable(services, runtime, tenant, "c1", "c2", "c3")
        order = {"tenant": tenant, "order": {"id": 1}}
        # expected: c1 answers None (not a result), c2 answers first: c3 is never called
        results, failures = await runtime.call_extension(tenant, "test_pick_carrier", order)
        assert failures == []
        assert results == [("c1", None), ("c2", "DHL")]
        notes, failures = await runtime.call_extension(tenant, "test_collect_notes", order)
        assert notes == [("c1", "note from c1"), ("c2", "note from c2"), ("c3", "note from c3")]
    finally:
        await runtime.close()


async def test_a_class_and_a_package_init_are_customizations_too(
    services, tenant, plugin_dir, make_runtime
):
    cls = plugin_dir / "classy"
    cls.mkdir()
    (cls / "customization.toml").write_text(manifest("classy", [tenant]))
    (cls / "__init__.py").write_text("")
    (cls / "hooks.py").write_text(
        HEADER
        + textwrap.dedent(
            f"""
            class Rules:
                def __init__(self):
                    self.days = 45

                @hookimpl
                def tailor_resolve_settings(self, values):
                    return {{"{KEY}": self.days}}
            """
        )
    )
    pkg = plugin_dir / "initonly"
    pkg.mkdir()
    (pkg / "customization.toml").write_text(manifest("initonly", [tenant]))
    (pkg / "__init__.py").write_text(
        HEADER
        + '@hookimpl\ndef tailor_resolve_settings(values):\n    return {"ui.theme.mode": "dark"}\n'
    )
    runtime = make_runtime()
    assert [c.name for c in runtime.sources()] == ["classy", "initonly"], [
        [str(p) for p in r.problems] for r in runtime.refused()
    ]
    [classy] = [c for c in runtime.sources() if c.name == "classy"]
    assert [(h.hook, h.params) for h in classy.hooks] == [("tailor_resolve_settings", ("values",))]
    await publish_enable(services, runtime, tenant, "classy", "initonly")
    attach(services, runtime)
    result = await services.settings.resolve(ADMIN, tenant, keys=[KEY, "ui.theme.mode"])
    assert result.failures == []
    assert {s.key: (s.value, s.source) for s in result.settings} == {
        KEY: (45, "CUSTOMIZATION:classy"),
        "ui.theme.mode": ("dark", "CUSTOMIZATION:initonly"),
    }


async def test_wrappers_are_refused_at_check_with_a_reason(write_customization, make_runtime):
    write_customization(
        "wrapper",
        """
        @hookimpl(wrapper=True)
        def tailor_resolve_settings(values):
            result = yield
            return result
        """,
    )
    runtime = make_runtime()
    [refused] = runtime.refused()
    assert "wrappers" in " ".join(str(p) for p in refused.problems)
    assert runtime.sources() == []


async def test_async_and_generator_hooks_are_refused_at_check(write_customization, make_runtime):
    write_customization(
        "asyncish",
        """
        @hookimpl
        async def tailor_resolve_settings(values):
            return {}
        """,
    )
    write_customization(
        "yielding",
        """
        @hookimpl
        def tailor_register_settings():
            yield {"key": "x.y.z", "type": "int", "default": 1}
        """,
    )
    runtime = make_runtime()
    reasons = {r.name: " ".join(str(p) for p in r.problems) for r in runtime.refused()}
    assert "async hook implementations are not supported" in reasons["asyncish"]
    assert "returns a generator" in reasons["yielding"]
    assert runtime.sources() == []


async def test_values_do_not_depend_on_the_query_filter(services, tenant, make_runtime):
    # the repository's samples: globex's rounding reads other settings than the
    # ones a prefix query asks for
    from plugins.loading import default_directory

    for slug in ("globex", "hooli", "initech", "northwind", "stark", "umbrella", "wayne"):
        await services.tenants.create(ADMIN, slug, slug.title(), "2.0")
    runtime = make_runtime(directories=[default_directory()])
    for c in runtime.sources():
        await services.registry.publish(ADMIN, c.registration())
        for t in c.manifest.tenants:
            if t in ("globex", tenant):
                await services.registry.set_enabled(ADMIN, t, c.name, True)
    attach(services, runtime)
    for who in ("globex", tenant):
        full = await services.settings.resolve(ADMIN, who)
        everything = {s.key: (s.value, s.source) for s in full.settings}
        prefixes = sorted({k.rsplit(".", 1)[0] + "." for k in everything})
        for prefix in prefixes:
            part = await services.settings.resolve(ADMIN, who, prefix=prefix)
            for s in part.settings:
                assert everything[s.key] == (s.value, s.source), (who, prefix, s.key)
        some = sorted(everything)[::7]
        picked = await services.settings.resolve(ADMIN, who, keys=some)
        assert {s.key: (s.value, s.source) for s in picked.settings} == {
            k: everything[k] for k in some
        }
