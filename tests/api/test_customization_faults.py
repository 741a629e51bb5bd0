"""A customization that hangs or raises for one tenant: that tenant's request
gets a clear error naming the failure and the non-customized value; the server
keeps answering others."""

import asyncio

import httpx
import pytest

from api.app import AppOptions, create_app
from core.services import Services
from tests.api.conftest import bearer
from tests.conftest import ADMIN
from tests.core.test_faults import FaultyHooks

QUERY = """query($t: String!) { settings(tenant: $t, keys: ["billing.invoice.due_days"]) {
  ... on Settings { items { value source } customizationErrors { customization hook message } }
} }"""


@pytest.mark.parametrize("fault", ["raise", "hang"])
async def test_one_tenants_faulty_customization_spares_the_others(database_url, services, fault):
    await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
    await services.tenants.create(ADMIN, "globex", "Globex", "2.0")
    token, _ = await services.tokens.create("admin")
    hooked = Services.from_url(database_url, hooks=FaultyHooks("acme", fault), hook_timeout=0.05)
    transport = httpx.ASGITransport(app=create_app(hooked, AppOptions(attach_plugins=False)))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

        async def ask(tenant):
            response = await client.post(
                "/graphql",
                json={"query": QUERY, "variables": {"t": tenant}},
                headers=bearer(token),
            )
            assert response.status_code == 200
            return response.json()["data"]["settings"]

        victim, *others = await asyncio.gather(ask("acme"), *(ask("globex") for _ in range(5)))
    await hooked.close()
    assert victim["items"] == [{"value": 30, "source": "DEFAULT"}]
    errors = victim["customizationErrors"]
    assert {e["hook"] for e in errors} == {"tailor_register_settings", "tailor_resolve_settings"}
    assert all(e["customization"] and e["message"] for e in errors)
    assert all(o["items"] == [{"value": 77, "source": "CUSTOMIZATION:globex-due"}] for o in others)
    assert all(o["customizationErrors"] == [] for o in others)
