"""Loading real customization packages, including broken ones: each broken one is
refused with a problem naming its file and field; the others still load."""

from __future__ import annotations

from plugins.loading import Source, inspect_customization, load_all
from tests.sample import ACME_CATALOG

GOOD = """
@hookimpl
def tailor_resolve_settings(values):
    return {"ui.theme.mode": "dark"}
"""


def problems_of(runtime, name):
    return [str(p) for r in runtime.refused() if r.name == name for p in r.problems]


def test_good_customization_loads_and_is_introspected(write_customization, make_runtime):
    write_customization("good", GOOD)
    runtime = make_runtime()
    [loaded] = runtime.sources()
    assert loaded.name == "good"
    assert [(h.hook, h.params) for h in loaded.hooks] == [("tailor_resolve_settings", ("values",))]
    assert loaded.setting_keys == ("ui.theme.mode",)
    assert loaded.module is None  # imported in a worker, never in the server
    assert runtime.refused() == []


def test_import_error_is_refused_with_traceback_summary(write_customization, make_runtime):
    write_customization("boom", "import not_a_module_anywhere\n" + GOOD)
    write_customization("fine", GOOD)
    runtime = make_runtime()
    assert [item.name for item in runtime.sources()] == ["fine"]
    [problem] = problems_of(runtime, "boom")
    assert "boom/hooks.py:import: ModuleNotFoundError" in problem
    assert "not_a_module_anywhere" in problem
    assert "(at hooks.py:5: import not_a_module_anywhere)" in problem


def test_raise_at_import_is_refused(write_customization, make_runtime):
    write_customization("raiser", 'raise RuntimeError("no config file")\n')
    runtime = make_runtime()
    [problem] = problems_of(runtime, "raiser")
    assert "RuntimeError: no config file" in problem
    assert runtime.sources() == []


def test_unknown_hook_and_bad_param_reported_together(write_customization, make_runtime):
    write_customization(
        "wrong",
        """
        @hookimpl
        def tailor_resolve_everything(values):
            return {}

        @hookimpl
        def tailor_validate_setting(key, value, user):
            return None
        """,
    )
    runtime = make_runtime()
    found = problems_of(runtime, "wrong")
    assert len(found) == 2
    assert any(
        "hooks.py:tailor_resolve_everything: unknown hook 'tailor_resolve_everything'" in p
        for p in found
    )
    assert any(
        "hooks.py:tailor_validate_setting(user): hook 'tailor_validate_setting' has no "
        "parameter 'user'" in p
        for p in found
    )
    assert "wrong" not in {c.name for c in runtime.sources()}


def test_bad_manifest_reports_every_field(write_customization, make_runtime):
    write_customization(
        "badmanifest",
        GOOD,
        toml='name = "Bad Name"\nversion = "one"\ntenants = []\nrequires = ">>2"\ncolour = "red"\n',
    )
    runtime = make_runtime()
    found = problems_of(runtime, "badmanifest")
    fields = sorted(p.split("customization.toml:")[1].split(":")[0] for p in found)
    assert fields == ["colour", "name", "requires", "tenants", "version"]
    assert any("'>>2' is not a PEP 440 version specifier" in p for p in found)


def test_missing_fields_and_invalid_toml(write_customization, make_runtime):
    write_customization("missing", GOOD, toml='name = "missing"\n')
    write_customization("nottoml", GOOD, toml="name = \n")
    runtime = make_runtime()
    missing = problems_of(runtime, "missing")
    assert sorted(p.split(":")[-2] for p in missing) == ["requires", "tenants", "version"]
    assert all("missing required field" in p for p in missing)
    assert "not valid TOML" in problems_of(runtime, "nottoml")[0]


def test_requires_excluding_the_running_release_is_refused(write_customization, make_runtime):
    write_customization("old", GOOD, requires=">=1.0,<2")
    write_customization("pre", GOOD, requires=">=2.0rc1")
    runtime = make_runtime()
    [problem] = problems_of(runtime, "old")
    assert problem.endswith(
        "customization.toml:requires: '>=1.0,<2' excludes the running release 2.0"
    )
    assert [item.name for item in runtime.sources()] == ["pre"]
    # against a planned release, with pre-releases matching
    loaded = inspect_customization(
        Source(runtime.sources()[0].source.path, "t"), ACME_CATALOG, "3.0rc1"
    )
    assert not loaded.refused


def test_name_collision_refuses_the_second(write_customization, make_runtime):
    write_customization("first", GOOD, name="same-name")
    write_customization("second", GOOD, name="same-name")
    runtime = make_runtime()
    assert [item.source.path.name for item in runtime.sources()] == ["first"]
    [problem] = problems_of(runtime, "same-name")
    assert (
        "second/customization.toml:name: name collision: 'same-name' is already loaded" in problem
    )


def test_same_directory_listed_twice_is_reported(write_customization, plugin_dir):
    path = write_customization("twice", GOOD)
    catalog = ACME_CATALOG
    loaded = load_all(
        [Source(path, "customizations/"), Source(path, "TAILOR_CUSTOMIZATIONS_PATH")], catalog
    )
    assert not loaded[0].refused
    assert "registered twice" in str(loaded[1].problems[0])


def test_deprecated_hook_warns_through_pluggy(write_customization, make_runtime):
    write_customization(
        "legacy",
        """
        @hookimpl
        def tailor_resolve_setting(key, value):
            return None
        """,
    )
    runtime = make_runtime()
    [loaded] = runtime.sources()
    assert any(
        "tailor_resolve_setting is deprecated since Tailor hook API 2" in w for w in loaded.warnings
    )


def test_path_env_and_repository_samples_load(write_customization, plugin_dir, make_runtime):
    write_customization("from_env", GOOD)
    runtime = make_runtime(directories=None, path_env=str(plugin_dir))
    names = {item.name for item in runtime.sources()}
    assert "from-env" in names
    assert len(names) >= 11  # the repository's samples
    assert "wayne-legacy-export" in {r.name for r in runtime.refused()}
