"""Products stand alone (issue 19): a vendor's product numbered 1.0, 1.1 and
planned 2.0 (``tests/ledger.py``) is served next to the sample customizations
without either leaking into the other. Tailor's own hooks come from the hook API
each release names, never from the product's numbers; the sample (Acme)
customizations name their product and are refused, with that reason, when Tailor
serves another one; the server still starts."""

from __future__ import annotations

import httpx
import pytest

from api.http.app import AppOptions, create_app
from core.analysis.readiness.vocabulary import Code, CustomizationStatus, TenantStatus
from core.model.auth import Role
from core.store.bootstrap import register_planned_releases, sync_product_releases
from plugins.catalog import Catalog, tailor_extension_points
from plugins.loading import default_directory
from plugins.product import load_directory
from plugins.runtime import PluginRuntime, RuntimeOptions
from tests.conftest import ADMIN, Api
from tests.ledger import write_ledger, write_ledger_customizations

#: every sample customization in customizations/ (all of them Acme ERP's)
SAMPLES = sorted(
    p.name for p in default_directory().iterdir() if (p / "customization.toml").is_file()
)


@pytest.fixture
async def ledger(bare_services, tmp_path):
    product = load_directory(write_ledger(tmp_path))
    assert product.id == "ledger"
    services = bare_services
    assert await sync_product_releases(services, product, tailor_extension_points) == [
        "1.0",
        "1.1",
    ]
    assert await register_planned_releases(services, product, tailor_extension_points) == ["2.0"]
    await services.tenants.create(ADMIN, "books", "Books Inc", "1.1")
    runtime = PluginRuntime.load(
        RuntimeOptions(
            # the sample directory first: served with another product, it must not load
            directories=[default_directory(), write_ledger_customizations(tmp_path)],
            path_env="",
            use_entry_points=False,
        ),
        Catalog.for_product(product),
    )
    return product, services, runtime


async def test_the_sample_customizations_do_not_load_for_another_product(ledger):
    product, services, runtime = ledger
    assert [c.name for c in runtime.sources()] == ["ledger-batch", "ledger-legacy"]
    refused = {c.package: c.problems for c in runtime.refused()}
    assert sorted(refused) == SAMPLES and len(SAMPLES) == 14
    for package, problems in refused.items():
        # one problem, before any code was imported: the product, naming both
        assert [p.field for p in problems] == ["product"], package
        assert "is a customization of product 'acme_erp'" in problems[0].message
        assert "this Tailor serves product 'ledger'" in problems[0].message

    # the server starts with them refused and serves the vendor's settings
    app = create_app(services, AppOptions(plugins=runtime), product=product)
    token = (await services.tokens.create(Role.ADMIN))[0]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tailor.test") as client:
        api = Api(client, {"admin": token})
        body = await api.gql(
            """{ settings(tenant: "books") { ... on Settings { release items { key } } } }"""
        )
        releases = await api.gql("{ releases { version tailorHookApi } }")
    assert releases["data"]["releases"] == [
        {"version": v, "tailorHookApi": "2"} for v in ("1.0", "1.1", "2.0")
    ]
    settings = body["data"]["settings"]
    assert settings["release"] == "1.1"
    assert [i["key"] for i in settings["items"]] == ["ledger.invoice.prefix", "ledger.tax.rate"]


async def test_no_tailor_finding_the_vendor_did_not_cause(ledger):
    _product, services, runtime = ledger
    for loaded in runtime.sources():
        await services.registry.publish(ADMIN, loaded.registration())
        await services.registry.set_enabled(ADMIN, "books", loaded.name, True)
    releases = {r.version: r.manifest for r in await services.releases.list_all(ADMIN)}
    # every release runs the running Tailor's hook API: the same tailor_* hooks
    assert {v: m["tailor_hook_api"] for v, m in releases.items()} == {
        "1.0": "2",
        "1.1": "2",
        "2.0": "2",
    }
    for target in ("1.1", "2.0"):
        report = await services.readiness.readiness(ADMIN, target)
        by_name = {c.name: c for c in report.customizations}
        # the batch hook is in hook API 2 whatever the product's numbers: nothing
        assert by_name["ledger-batch"].findings == (), target
        assert by_name["ledger-batch"].status is CustomizationStatus.COMPATIBLE
        # the per-setting hook: deprecated by Tailor's API 2, said as such, and nothing else
        legacy = by_name["ledger-legacy"].findings
        assert [(f.code, f.message) for f in legacy] == [
            (
                Code.HOOK_DEPRECATED,
                "implements tailor_resolve_setting, deprecated since Tailor hook API 2 "
                f"(the API of {target}); use tailor_resolve_settings [static: hooks.py:7]",
            )
        ], target
        (books,) = report.tenants
        assert books.status is TenantStatus.READY_WITH_WARNINGS
        assert not [f for f in books.findings if f.code is Code.HOOK_REMOVED]
