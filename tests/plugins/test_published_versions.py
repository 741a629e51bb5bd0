"""Published customizations through the real app: uploads, immutable versions,
pins, rollback and yank; the server owns a customization's identity; every
server runs what the database stores, from its own cache."""

from __future__ import annotations

import zipfile
from io import BytesIO

from core.store.models import AuditEntry
from core.store.services import Services
from plugins import archive
from tests.conftest import ADMIN
from tests.plugins.conftest import manifest

PUBLISH = """
mutation($archive: Upload!, $enable: Boolean! = false) {
  publishCustomization(archive: $archive, enable: $enable) {
    __typename
    ... on Customization { name tenants pins { tenant version }
      versions { version sha256 publishedBy yanked yankReason pinnedFor } }
    ... on Error { code message }
  }
}
"""
PIN = """
mutation($t: String!, $n: String!, $v: String!) {
  setCustomizationVersion(tenant: $t, name: $n, version: $v) {
    __typename ... on Customization { pins { tenant version } } ... on Error { code message }
  }
}
"""
YANK = """
mutation($n: String!, $v: String!, $r: String!) {
  yankCustomizationVersion(name: $n, version: $v, reason: $r) {
    __typename ... on Customization { versions { version yanked yankReason pinnedFor } }
    ... on Error { code message }
  }
}
"""
SETTINGS = """
query($t: String!) { settings(tenant: $t, keys: ["ui.theme.mode"]) {
  ... on Settings { items { value source } customizationErrors { customization message } }
} }
"""


def theme(value: str) -> str:
    return f"""
@hookimpl
def tailor_resolve_settings(values):
    return {{"ui.theme.mode": "{value}"}}
"""


async def settings_of(api, tenant: str, token: str = "admin") -> dict:
    # a distinct document each time: the response cache keys on the document too
    body = await api.gql(SETTINGS + f"# {id(object())}", {"t": tenant}, token=token)
    return body["data"]["settings"]


async def test_publish_pin_roll_back_and_yank(plugin_api, write_customization, plugin_dir):
    """Expected, written before running: 1.0 enabled for acme serves "dark"; 1.1
    published with --enable moves nobody; pinning 1.1 serves "light"; pinning 1.0
    back serves "dark"; 1.1 yanked can never be pinned again."""
    api, _runtime = await plugin_api()
    first = write_customization("theme", theme("dark"))
    published = (await api.upload(PUBLISH, first, {"enable": True}, token="consultant"))["data"][
        "publishCustomization"
    ]
    assert published["__typename"] == "Customization", published
    tree = archive.tree_from_directory(first)
    [v1] = published["versions"]
    assert v1["sha256"] == tree.sha256  # the same hash on any machine
    assert published["pins"] == [{"tenant": "acme", "version": "1.0.0"}]
    assert (await settings_of(api, "acme"))["items"] == [
        {"value": "dark", "source": "CUSTOMIZATION:theme"}
    ]

    # a second version: in another folder, as a consultant's next release would be
    second = plugin_dir / "next" / "theme"
    second.parent.mkdir()
    second.mkdir()
    (second / "customization.toml").write_text(manifest("theme", ["acme"], version="1.1.0"))
    (second / "hooks.py").write_text((first / "hooks.py").read_text().replace("dark", "light"))
    newer = (await api.upload(PUBLISH, second, {"enable": True}, token="consultant"))["data"][
        "publishCustomization"
    ]
    assert [v["version"] for v in newer["versions"]] == ["1.1.0", "1.0.0"]
    assert newer["pins"] == [{"tenant": "acme", "version": "1.0.0"}]  # nobody moved
    assert (await settings_of(api, "acme"))["items"][0]["value"] == "dark"

    observed = await api.gql(
        "{ customizations { ... on CustomizationList { items { observations { version } } } } }"
    )
    [item] = observed["data"]["customizations"]["items"]
    assert [o["version"] for o in item["observations"]] == ["1.0.0"]  # name@version
    moved = await api.gql(PIN, {"t": "acme", "n": "theme", "v": "1.1.0"}, token="consultant")
    assert moved["data"]["setCustomizationVersion"]["pins"] == [
        {"tenant": "acme", "version": "1.1.0"}
    ]
    assert (await settings_of(api, "acme"))["items"][0]["value"] == "light"
    observed = await api.gql(
        "{ customizations { ... on CustomizationList { items { observations { version } } } } }"
    )
    [item] = observed["data"]["customizations"]["items"]
    assert [o["version"] for o in item["observations"]] == ["1.1.0"]  # the latest calls'
    back = await api.gql(PIN, {"t": "acme", "n": "theme", "v": "1.0.0"})
    assert back["data"]["setCustomizationVersion"]["pins"][0]["version"] == "1.0.0"
    assert (await settings_of(api, "acme"))["items"][0]["value"] == "dark"

    yanked = await api.gql(YANK, {"n": "theme", "v": "1.1.0", "r": "light is unreadable"})
    versions = {v["version"]: v for v in yanked["data"]["yankCustomizationVersion"]["versions"]}
    assert versions["1.1.0"]["yanked"] is True
    assert versions["1.1.0"]["yankReason"] == "light is unreadable"
    refused = await api.gql(PIN, {"t": "acme", "n": "theme", "v": "1.1.0"})
    refusal = refused["data"]["setCustomizationVersion"]
    assert refusal["code"] == "INVALID_INPUT"
    assert "was yanked (light is unreadable)" in refusal["message"]


async def test_a_version_never_changes(plugin_api, write_customization, services):
    api, _runtime = await plugin_api()
    path = write_customization("theme", theme("dark"))
    first = await api.upload(PUBLISH, path)
    assert first["data"]["publishCustomization"]["__typename"] == "Customization"
    async with services.sessions() as session:
        from sqlalchemy import func, select

        audited = await session.scalar(select(func.count()).select_from(AuditEntry))
    # the same content again: nothing changes, not even the audit log
    again = await api.upload(PUBLISH, path)
    assert (
        again["data"]["publishCustomization"]["versions"]
        == (first["data"]["publishCustomization"]["versions"])
    )
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == audited
    # other content under the same version: refused, the stored one kept
    (path / "hooks.py").write_text((path / "hooks.py").read_text().replace("dark", "pink"))
    changed = (await api.upload(PUBLISH, path))["data"]["publishCustomization"]
    assert changed["code"] == "ALREADY_EXISTS"
    assert "theme 1.0.0 is already published with other content" in changed["message"]
    assert "raise the version" in changed["message"]


async def test_a_bad_archive_names_every_problem_and_stores_nothing(plugin_api):
    api, _runtime = await plugin_api()
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../escape.py", "x = 1\n")
        zf.writestr("hooks.cpython-311.pyc", b"\0\0")
        zf.writestr("hooks.py", "x = 1\n")
    result = (await api.upload(PUBLISH, buffer.getvalue()))["data"]["publishCustomization"]
    assert result["code"] == "INVALID_INPUT"
    for expected in ("../escape.py", ".pyc", "customization.toml"):
        assert expected in result["message"], result["message"]
    listed = await api.gql("{ customizations { ... on CustomizationList { items { name } } } }")
    assert listed["data"]["customizations"]["items"] == []


FORGER = """
import gc

from core.model.customizations import CustomizationManifest
from plugins.loading import Loaded

# import-time code rewriting what the checking worker reports about this package
for found in gc.get_objects():
    if isinstance(found, Loaded):
        found.manifest = CustomizationManifest(
            name="theme", version="9.9.9", tenants=("acme", "other"), requires=">=1.0"
        )


@hookimpl
def tailor_resolve_settings(values):
    return {"ui.theme.mode": "system"}
"""


async def test_the_server_owns_a_customizations_identity(plugin_api, write_customization, services):
    """A package whose import-time code rewrites the checking worker's answer (name,
    version, tenants) is published under its own manifest's identity only; the
    customization it tried to impersonate, and the other tenant, are untouched."""
    api, _runtime = await plugin_api()
    honest = write_customization("theme", theme("dark"), tenants=("acme", "other"))
    assert (await api.upload(PUBLISH, honest))["data"]["publishCustomization"]["__typename"] == (
        "Customization"
    )
    await services.registry.set_enabled(ADMIN, "other", "theme", True)
    forger = write_customization("forger", FORGER)
    published = (await api.upload(PUBLISH, forger, {"enable": True}, token="consultant"))["data"][
        "publishCustomization"
    ]
    assert published["__typename"] == "Customization", published
    assert published["name"] == "forger"
    assert published["tenants"] == ["acme"]
    assert [v["version"] for v in published["versions"]] == ["1.0.0"]
    theme_versions = await services.registry.versions(ADMIN, "theme")
    assert [v.version for v in theme_versions] == ["1.0.0"]
    # it runs for its own tenant only, under its own name
    mine = await settings_of(api, "acme")
    assert mine["customizationErrors"] == [], mine
    assert mine["items"] == [{"value": "system", "source": "CUSTOMIZATION:forger"}]
    assert (await settings_of(api, "other"))["items"] == [
        {"value": "dark", "source": "CUSTOMIZATION:theme"}
    ]


async def test_a_second_server_runs_what_the_first_published(
    plugin_api, write_customization, database_url, tmp_path
):
    """Two runtimes with no files in common (each its own cache) share only the
    database: a version published and pinned through one is served by the other,
    from its own cache, verified."""
    from api.wiring import attach
    from plugins.runtime import PluginRuntime, RuntimeOptions
    from tests.sample import ACME_CATALOG

    api, _runtime = await plugin_api()
    path = write_customization("theme", theme("dark"))
    await api.upload(PUBLISH, path, {"enable": True})
    other_server = PluginRuntime(ACME_CATALOG, RuntimeOptions(cache_dir=tmp_path / "elsewhere"))
    # the second server's own services on the same database
    elsewhere = Services.from_url(database_url)
    try:
        attach(elsewhere, other_server)
        result = await elsewhere.settings.resolve(ADMIN, "acme", keys=["ui.theme.mode"])
        assert result.failures == []
        assert (result.settings[0].value, result.settings[0].source) == (
            "dark",
            "CUSTOMIZATION:theme",
        )
        sha = archive.tree_from_directory(path).sha256
        assert archive.verify(tmp_path / "elsewhere" / sha, sha)
        assert [c.name for c in other_server.installed()] == ["theme"]
    finally:
        await other_server.close()
        await elsewhere.close()


async def test_a_pinned_version_without_code_is_named_not_silent(services, tenant, make_runtime):
    """Registered before versions stored code (migrated data): its tenant's answer
    names it in the failures instead of silently running without it."""
    from api.wiring import attach
    from core.model.customizations import CustomizationManifest, HookUse, Registration

    await services.registry.publish(
        ADMIN,
        Registration(
            manifest=CustomizationManifest("legacy", "1.0.0", (tenant,), ">=1.0"),
            hooks=(HookUse("tailor_resolve_settings", ("values",), "f"),),
            setting_keys=("ui.theme.mode",),
        ),
    )
    await services.registry.set_enabled(ADMIN, tenant, "legacy", True)
    attach(services, make_runtime())
    result = await services.settings.resolve(ADMIN, tenant, keys=["ui.theme.mode"])
    [failure] = result.failures
    assert failure.customization == "legacy"
    assert "registered without its code" in failure.message
    assert "publish it again" in failure.message


class Calls:
    """Counts the calls of a module's function, through a wrapper around the real one."""

    def __init__(self, monkeypatch, module, name: str) -> None:
        self.count = 0
        real = getattr(module, name)

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


async def test_one_upload_parses_its_manifest_once_and_zips_once(
    plugin_api, write_customization, services, monkeypatch
):
    """An upload's manifest is parsed once (the identity check and the worker's
    check share that reading) and its canonical zip built once (the stored one)."""
    from plugins import manifest

    api, _runtime = await plugin_api()
    path = write_customization("theme", theme("dark"))
    tree = archive.tree_from_directory(path)
    canonical = archive.build_zip(tree)
    # any zip of the folder: not the canonical one, so the server must build that
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in reversed(tree.files):
            zf.writestr(name, data)
    assert buffer.getvalue() != canonical
    parses = Calls(monkeypatch, manifest, "parse_manifest_text")
    zips = Calls(monkeypatch, archive, "build_zip")
    published = (await api.upload(PUBLISH, buffer.getvalue(), token="consultant"))["data"][
        "publishCustomization"
    ]
    assert published["__typename"] == "Customization", published
    assert (parses.count, zips.count) == (1, 1)
    assert await services.registry.artifacts([tree.sha256]) == {tree.sha256: canonical}


async def test_one_folder_publish_parses_its_manifest_once_and_zips_once(
    services, tenant, write_customization, make_runtime, monkeypatch
):
    """A folder published by the operator is zipped once: the zip built from it is
    the one stored."""
    from api.wiring import attach
    from plugins import manifest

    runtime = make_runtime()
    attach(services, runtime)
    path = write_customization("theme", theme("dark"))
    parses = Calls(monkeypatch, manifest, "parse_manifest_text")
    zips = Calls(monkeypatch, archive, "build_zip")
    registration = await runtime.publish(ADMIN, path)
    assert (parses.count, zips.count) == (1, 1)
    tree = archive.tree_from_directory(path)
    assert registration.sha256 == tree.sha256
    assert await services.registry.artifacts([tree.sha256]) == {
        tree.sha256: archive.build_zip(tree)
    }


async def test_a_manifest_that_is_not_utf8_is_refused(plugin_api, write_customization):
    """Bytes that are not UTF-8, even in a comment, refuse the upload with the reason."""
    api, _runtime = await plugin_api()
    path = write_customization("theme", theme("dark"))
    toml = path / "customization.toml"
    toml.write_bytes(toml.read_bytes() + b"# caf\xe9\n")
    result = (await api.upload(PUBLISH, path))["data"]["publishCustomization"]
    assert result["code"] == "INVALID_INPUT", result
    # the reason, and no path of the server's cache
    assert result["message"].startswith("archive: customization.toml:-: cannot read the file: ")
