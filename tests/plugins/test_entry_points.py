"""A customization installed as a distribution with an entry point in the group
``tailor.customizations`` is found and loaded, like one dropped into a directory."""

from __future__ import annotations

import importlib
import textwrap

from plugins.loading import CUSTOMIZATIONS_GROUP, discover
from plugins.runtime import PluginRuntime, RuntimeOptions
from tests.sample import ACME_CATALOG


def install_distribution(site, monkeypatch):
    package = site / "contoso_tailor"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "customization.toml").write_text(
        textwrap.dedent(
            """\
            name = "contoso-rounding"
            version = "1.2.0"
            tenants = ["acme"]
            requires = ">=1.5"
            capability = "custom-rounding"
            """
        )
    )
    (package / "hooks.py").write_text(
        textwrap.dedent(
            """\
            import pluggy

            hookimpl = pluggy.HookimplMarker("tailor")


            @hookimpl
            def tailor_resolve_settings(tenant, values):
                return {"billing.invoice.rounding": "half_even"}
            """
        )
    )
    dist = site / "contoso_tailor-1.2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: contoso-tailor\nVersion: 1.2.0\n")
    (dist / "entry_points.txt").write_text(f"[{CUSTOMIZATIONS_GROUP}]\ncontoso = contoso_tailor\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


def test_entry_point_customizations_are_discovered_and_loaded(tmp_path, monkeypatch):
    install_distribution(tmp_path / "site", monkeypatch)
    sources = discover(directories=[], env="", use_entry_points=True)
    assert [s.path.name for s in sources] == ["contoso_tailor"]
    assert sources[0].origin == "entry point contoso"

    runtime = PluginRuntime.load(RuntimeOptions(directories=[], path_env=""), ACME_CATALOG)
    try:
        installed = {loaded.name: loaded for loaded in runtime.sources()}
        assert "contoso-rounding" in installed, [r.problems for r in runtime.refused()]
        hooks = {h.hook: h.params for h in installed["contoso-rounding"].hooks}
        assert hooks == {"tailor_resolve_settings": ("tenant", "values")}
    finally:
        import asyncio

        asyncio.run(runtime.close())


def test_entry_points_can_be_turned_off(tmp_path, monkeypatch):
    install_distribution(tmp_path / "site", monkeypatch)
    assert discover(directories=[], env="", use_entry_points=False) == []
