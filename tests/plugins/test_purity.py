"""``pure = false`` in customization.toml: the tenants of such a customization
get their settings answer computed on every request (never from the cache);
tenants of pure customizations (the default) get cached answers, with the
customization's values in them."""

from __future__ import annotations

import textwrap

from core.store.db import count_statements
from plugins.manifest import parse_manifest
from tests.plugins.conftest import manifest, publish_enable

SETTINGS = """query($tenant: String!) { settings(tenant: $tenant, keys: ["ui.theme.mode"]) {
  ... on Settings { items { key value source } customizationErrors { message } } } }"""
CODE = """
@hookimpl
def tailor_resolve_settings(values):
    return {"ui.theme.mode": "dark"}
"""


async def ask(api, tenant: str = "acme"):
    return await api.client.post(
        "/graphql",
        json={"query": SETTINGS, "variables": {"tenant": tenant}},
        headers={"Authorization": f"Bearer {api.tokens['admin']}"},
    )


async def test_an_impure_customizations_tenants_are_never_served_from_the_cache(
    services, plugin_api, write_customization, two_tenants
):
    toml = manifest("live-theme", ["acme"]) + "pure = false\n"
    write_customization("live_theme", CODE, toml=toml)
    write_customization("still_theme", CODE, tenants=("other",))
    api, runtime = await plugin_api()
    await publish_enable(services, runtime, "acme", "live-theme")
    await publish_enable(services, runtime, "other", "still-theme")
    for tenant in ("acme", "other"):
        first = await ask(api, tenant)
        (item,) = first.json()["data"]["settings"]["items"]
        assert item["value"] == "dark" and item["source"].startswith("CUSTOMIZATION:"), first.text
    with count_statements(services.engine) as impure:
        again = await ask(api, "acme")
    with count_statements(services.engine) as pure:
        cached = await ask(api, "other")
    assert "etag" not in again.headers and "etag" in cached.headers
    assert impure.count > 1  # resolved again: tenant, definitions, overrides
    assert pure.count == 1  # the data version only


def test_pure_must_be_a_boolean(tmp_path):
    path = tmp_path / "customization.toml"
    path.write_text(manifest("x-y", ["acme"]) + 'pure = "no"\n')
    parsed, problems = parse_manifest(path)
    assert parsed is None
    assert [(p.field, "true or false" in p.message) for p in problems] == [("pure", True)]
    path.write_text(manifest("x-y", ["acme"]) + "pure = false\n")
    parsed, problems = parse_manifest(path)
    assert problems == [] and parsed is not None and parsed.manifest.pure is False
    path.write_text(textwrap.dedent(manifest("x-y", ["acme"])))
    parsed, _ = parse_manifest(path)
    assert parsed is not None and parsed.manifest.pure is True
