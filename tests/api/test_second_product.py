"""A second host product, declared only as files in a temporary directory
(``tests/widgets.py``), served end to end by the real app: settings resolve from
its catalog, readiness and fold-back work on it, and ``invokeExtension`` calls
its customization at its own extension point."""

from __future__ import annotations

import httpx
import pytest

from api.http.app import AppOptions, create_app
from core.model.auth import Role
from core.store.bootstrap import register_planned_releases, sync_product_releases
from plugins.catalog import Catalog, tailor_extension_points
from plugins.product import load_directory
from plugins.runtime import PluginRuntime, RuntimeOptions
from tests.conftest import ADMIN, Api
from tests.widgets import write_customization, write_product

SETTINGS = """query($t: String!) { settings(tenant: $t) { __typename
  ... on Settings { release items { key value source } customizationErrors { message } }
  ... on Error { code message } } }"""


@pytest.fixture
async def widgets(bare_services, tmp_path):
    product = load_directory(write_product(tmp_path))
    services = bare_services
    added = await sync_product_releases(services, product, tailor_extension_points)
    planned = await register_planned_releases(services, product, tailor_extension_points)
    assert (added, planned) == (["2.0", "2.1"], ["3.0"])
    await services.tenants.create(ADMIN, "bolt", "Bolt Ltd", "2.1", ("production",))
    await services.tenants.create(ADMIN, "volt", "Volt GmbH", "2.0", ("production",))
    await services.settings.set(ADMIN, "volt", "shop.theme.color", "#aa0000")
    await services.settings.set(ADMIN, "volt", "shop.cart.max_items", 300)
    runtime = PluginRuntime.load(
        RuntimeOptions(
            directories=[write_customization(tmp_path)], path_env="", use_entry_points=False
        ),
        Catalog.for_product(product),
    )
    assert [c.name for c in runtime.sources()] == ["bolt-express"], runtime.refused()
    app = create_app(services, AppOptions(plugins=runtime), product=product)
    tokens = {
        "admin": (await services.tokens.create(Role.ADMIN))[0],
        "host": (await services.tokens.create(Role.HOST, ["bolt"]))[0],
        "app": (await services.tokens.create(Role.APP, ["bolt"]))[0],
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tailor.test") as client:
        api = Api(client, tokens)
        published = await api.upload(
            """mutation($a: Upload!) { publishCustomization(archive: $a) { __typename
                 ... on Customization { name } ... on Error { message } } }""",
            runtime.sources()[0].source.path,
            name="a",
        )
        assert published["data"]["publishCustomization"]["__typename"] == "Customization"
        for tenant in ("bolt", "volt"):
            await services.registry.set_enabled(ADMIN, tenant, "bolt-express", True)
        yield api


def by_key(items: list[dict]) -> dict[str, tuple]:
    return {i["key"]: (i["value"], i["source"]) for i in items}


async def test_settings_resolve_from_the_products_catalog(widgets):
    bolt = (await widgets.gql(SETTINGS, {"t": "bolt"}, token="app"))["data"]["settings"]
    assert bolt["release"] == "2.1"
    assert by_key(bolt["items"]) == {
        "shop.cart.max_items": (200, "CUSTOMIZATION:bolt-express"),
        "shop.checkout.guest": (True, "DEFAULT"),
        "shop.checkout.mode": ("both", "DEFAULT"),
    }
    volt = (await widgets.gql(SETTINGS, {"t": "volt"}))["data"]["settings"]
    assert volt["release"] == "2.0"
    assert by_key(volt["items"]) == {
        "shop.cart.max_items": (200, "CUSTOMIZATION:bolt-express"),
        "shop.checkout.guest": (True, "DEFAULT"),
        "shop.theme.color": ("#aa0000", "TENANT"),
    }
    releases = await widgets.gql("{ releases { version status } }")
    assert releases["data"]["releases"] == [
        {"version": "2.0", "status": "released"},
        {"version": "2.1", "status": "released"},
        {"version": "3.0", "status": "planned"},
    ]
    points = await widgets.gql(
        "{ extensionPoints { ... on ExtensionPoints { release items { name source } } } }"
    )
    running = points["data"]["extensionPoints"]
    assert running["release"] == "2.1"
    assert {"name": "widgets_shipping_quote", "source": "widgets"} in running["items"]
    assert not [p for p in running["items"] if p["name"].startswith("acme_")]


async def test_readiness_and_foldback_work_on_it(widgets):
    body = await widgets.gql(
        """{ readiness(target: "3.0") { ... on Readiness {
             tenants { tenant status findings { code subject } }
             customizations { name status } } ... on Error { message } } }"""
    )
    report = body["data"]["readiness"]
    found = {t["tenant"]: t for t in report["tenants"]}
    assert found["volt"]["status"] == "blocked"
    volt = {(f["code"], f["subject"]) for f in found["volt"]["findings"]}
    assert ("OVERRIDE_INVALID", "shop.theme.color") in volt
    assert ("OVERRIDE_INVALID", "shop.cart.max_items") in volt  # max 100 in 3.0
    bolt = {(f["code"], f["subject"]) for f in found["bolt"]["findings"]}
    # the customization reads shop.checkout.guest, which 3.0 drops
    assert any(code == "SETTING_REMOVED" for code, _ in bolt), bolt
    assert found["bolt"]["status"] == "blocked"
    assert any(code == "SUPERSEDED_BY_CORE" for code, _ in bolt), bolt
    # 3.0's file lists none of Tailor's hooks: Tailor's own are added, so the
    # customization's tailor_resolve_settings is not "removed"
    assert not any(code == "HOOK_REMOVED" for code, _ in bolt), bolt

    fold = await widgets.gql(
        """{ foldbackCandidates { ... on Foldback { candidates { kind title tenants
             customizations } } ... on Error { message } } }"""
    )
    candidates = fold["data"]["foldbackCandidates"]["candidates"]
    shared = [c for c in candidates if "bolt-express" in c["customizations"]]
    assert shared and sorted(shared[0]["tenants"]) == ["bolt", "volt"], candidates


INVOKE = """mutation($t: String!, $h: String!, $a: JSON!) {
  invokeExtension(tenant: $t, hook: $h, args: $a) { __typename
    ... on ExtensionCall { tenant hook release results { customization result }
                           failures { customization hook message } }
    ... on Error { code message } } }"""


async def test_invoke_extension_calls_its_customization(widgets):
    body = await widgets.gql(
        INVOKE,
        {"t": "bolt", "h": "widgets_shipping_quote", "a": {"order": {"weight": 3}}},
        token="host",
    )
    assert body["data"]["invokeExtension"] == {
        "__typename": "ExtensionCall",
        "tenant": "bolt",
        "hook": "widgets_shipping_quote",
        "release": "2.1",
        "results": [
            {
                "customization": "bolt-express",
                "result": {"carrier": "bolt-express", "tenant": "bolt", "price": 6},
            }
        ],
        "failures": [],
    }
    # the host token is scoped to bolt: volt is refused, and an Acme hook is unknown here
    refused = await widgets.gql(
        INVOKE,
        {"t": "volt", "h": "widgets_shipping_quote", "a": {"order": {"weight": 3}}},
        token="host",
    )
    assert refused["data"]["invokeExtension"]["code"] == "PERMISSION_DENIED"
    unknown = await widgets.gql(
        INVOKE, {"t": "bolt", "h": "acme_invoice_footer", "a": {"invoice": {}}}, token="host"
    )
    assert unknown["data"]["invokeExtension"]["code"] == "INVALID_INPUT"
    assert "widgets_shipping_quote" in unknown["data"]["invokeExtension"]["message"]
