"""The console's customization page shows the proposed fix (the codemod's diff)
of the registered version's stored code for the selected target release."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest_asyncio

from core.store.demo import register_planned_releases
from plugins import archive
from plugins.evidence import read_package
from tests import renames
from tests.api.test_console import new_client, sign_in
from tests.conftest import ADMIN
from tests.sample import ACME

PACKAGES = Path(__file__).parents[1] / "corpus" / "codemods"


async def _publish(services, tenant: str, name: str) -> str:
    pkg = PACKAGES / name
    tree = archive.tree_from_directory(pkg)
    registration = read_package(pkg, categories={"billing", "ui", "shipping"}).registration
    assert registration is not None
    registration = dataclasses.replace(
        registration,
        manifest=dataclasses.replace(registration.manifest, tenants=(tenant,)),
        enabled_for=(),
        sha256=tree.sha256,
        archive=archive.build_zip(tree),
    )
    await services.registry.publish(ADMIN, registration)
    return registration.manifest.name


@pytest_asyncio.fixture
async def renaming(api, services, tenant):
    await register_planned_releases(services, ACME)
    await services.releases.import_planned(renames.manifest(), ADMIN)
    return api


async def test_the_customization_page_shows_the_proposed_diff_for_the_target(
    renaming, services, tenant
):
    literals = await _publish(services, tenant, "k01_literals")
    clean = await _publish(services, tenant, "k05_clean")
    async with new_client(services) as client:
        await sign_in(client, renaming.tokens["admin"])
        page = await client.get(f"/console/customizations/{literals}?target=3.1")
        assert page.status_code == 200, page.text[:500]
        html = page.text
        assert "<h2>Proposed fix for 3.1</h2>" in html
        assert '<pre id="fix-diff">--- a/hooks.py\n+++ b/hooks.py\n' in html
        assert (
            "-def acme_invoice_footer(tenant, invoice):\n"
            "+def acme_invoice_trailer(tenant, document):" in html
        )
        assert "+    if key == &#39;billing.invoice.payment_days&#39; and value &gt; 45:" in html
        # on 3.0 nothing of 3.1's is proposed
        on_30 = (await client.get(f"/console/customizations/{literals}?target=3.0")).text
        assert "payment_days" not in on_30 and "acme_invoice_trailer" not in on_30
        untouched = (await client.get(f"/console/customizations/{clean}?target=3.1")).text
        assert '<p class="muted" id="fix">Nothing to rewrite for 3.1.</p>' in untouched
        assert 'id="fix-diff"' not in untouched


async def test_what_no_rename_fixes_is_listed_on_the_page(renaming, services, tenant):
    name = await _publish(services, tenant, "k06_unfixable")
    async with new_client(services) as client:
        await sign_in(client, renaming.tokens["admin"])
        html = (await client.get(f"/console/customizations/{name}?target=3.1")).text
    assert '<ul id="fix-unfixable">' in html
    assert "setting shipping.legacy_rates.enabled: 3.1 removes it" in html
    assert 'id="fix-diff"' not in html
