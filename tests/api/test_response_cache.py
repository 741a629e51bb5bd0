"""Settings answers served from memory (api.http.response_cache): one statement on a
hit, ETag/304 on GET, and never an answer older than a write committed before
the request began, whatever wrote it and whichever app instance answers."""

from __future__ import annotations

import contextlib
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from sqlalchemy import select

from api.http.app import AppOptions, create_app
from core.model.auth import Role
from core.store.db import count_statements
from core.store.models import Tenant
from core.store.services import Services
from tests.conftest import ADMIN
from tests.sample import ACME

DUE = "billing.invoice.due_days"
SETTINGS = """query($t: String!, $k: [String!]) { settings(tenant: $t, keys: $k) {
  __typename ... on Settings { items { key value source revision } } } }"""
VARIABLES = {"t": "acme", "k": [DUE]}


def due(body: dict) -> tuple[object, str]:
    (item,) = body["data"]["settings"]["items"]
    return item["value"], item["source"]


async def post(client: httpx.AsyncClient, token: str, variables: dict = VARIABLES):
    return await client.post(
        "/graphql",
        json={"query": SETTINGS, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_repeated_question_costs_one_statement_and_the_same_bytes(api, services):
    first = await post(api.client, api.tokens["app"])
    assert first.status_code == 200 and due(first.json()) == (30, "DEFAULT")
    assert first.headers["etag"].startswith('"')
    with count_statements(services.engine, keep=True) as counter:
        second = await post(api.client, api.tokens["app"])
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    # the tenant's data version, nothing else (the token is remembered)
    assert counter.count == 1, counter.statements
    assert "data_version" in counter.statements[0]


async def test_the_key_holds_variables_and_the_callers_scope(api):
    acme = await post(api.client, api.tokens["app"])
    other = await post(api.client, api.tokens["app"], {"t": "other", "k": [DUE]})
    # an app token of acme may not read other: its refusal is its own, never acme's answer
    assert other.json()["data"]["settings"]["__typename"] != "Settings"
    assert "etag" not in other.headers  # errors are not kept
    admin = await post(api.client, api.tokens["admin"], {"t": "other", "k": [DUE]})
    assert due(admin.json()) == (30, "DEFAULT")
    again = await post(api.client, api.tokens["app"], {"t": "other", "k": [DUE]})
    assert again.json()["data"]["settings"]["__typename"] != "Settings"
    assert due((await post(api.client, api.tokens["app"])).json()) == due(acme.json())


async def test_get_with_if_none_match_is_answered_304_until_the_data_changes(api, services):
    url = "/graphql?" + urlencode({"query": SETTINGS, "variables": orjson.dumps(VARIABLES)})
    auth = {"Authorization": f"Bearer {api.tokens['app']}"}
    first = await api.client.get(url, headers=auth)
    etag = first.headers["etag"]
    again = await api.client.get(url, headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    # a weak validator and a list of them match too
    listed = await api.client.get(url, headers={**auth, "If-None-Match": f'"x", W/{etag}'})
    assert listed.status_code == 304
    await services.settings.set(ADMIN, "acme", DUE, 45)
    changed = await api.client.get(url, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and due(changed.json()) == (45, "TENANT")
    assert changed.headers["etag"] != etag
    # a POST always gets the body
    posted = await api.client.post(
        "/graphql",
        json={"query": SETTINGS, "variables": VARIABLES},
        headers={**auth, "If-None-Match": changed.headers["etag"]},
    )
    assert posted.status_code == 200 and due(posted.json()) == (45, "TENANT")


async def version(services: Services, slug: str) -> int:
    async with services.sessions() as session:
        return await session.scalar(select(Tenant.data_version).where(Tenant.slug == slug))


async def test_every_write_that_changes_an_answer_bumps_the_tenants_version(services, tenant):
    await services.tenants.create(ADMIN, "bystander", "Bystander", "2.0")
    before = await version(services, tenant)
    await services.settings.set(ADMIN, tenant, DUE, 40)
    assert await version(services, tenant) == before + 1
    await services.settings.set(ADMIN, tenant, DUE, 41, environment="production")
    await services.settings.reset(ADMIN, tenant, DUE, environment="production")
    assert await version(services, tenant) == before + 3
    # a refused write bumps nothing (it rolled back)
    with pytest.raises(Exception, match="no override"):
        await services.settings.reset(ADMIN, tenant, DUE, environment="production")
    assert await version(services, tenant) == before + 3
    assert await version(services, "bystander") == 0


async def test_an_upgrade_bumps_the_tenants_version(services, tenant):
    await services.tenants.create(ADMIN, "old", "Old", "1.0")
    before = await version(services, "old")
    await services.readiness.upgrade(ADMIN, "old", "2.0", force=True, reason="test")
    assert await version(services, "old") == before + 1
    assert await version(services, tenant) == 0


@contextlib.asynccontextmanager
async def instance(database_url: str):
    """One more app instance (its own engine, caches and listener) on the database."""
    app = create_app(Services.from_url(database_url), AppOptions(), product=ACME)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://i") as client:
            yield client


async def test_two_app_instances_never_serve_an_answer_older_than_a_committed_write(
    services, tenant, database_url
):
    admin, _ = await services.tokens.create(Role.ADMIN)
    app_token, _ = await services.tokens.create(Role.APP, [tenant])
    mutation = """mutation($v: JSON!) { setSetting(input: {tenant: "acme",
      key: "billing.invoice.due_days", value: $v}) { __typename } }"""
    async with instance(database_url) as a, instance(database_url) as b:
        for client in (a, b, a, b):  # both have the answer cached
            assert due((await post(client, app_token)).json()) == (30, "DEFAULT")
        for value in (31, 32, 33):
            writer, reader = (a, b) if value % 2 else (b, a)
            r = await writer.post(
                "/graphql",
                json={"query": mutation, "variables": {"v": value}},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert r.json()["data"]["setSetting"]["__typename"] == "SettingChanged", r.text
            # the write committed before these requests began: both see it at once
            assert due((await post(reader, app_token)).json()) == (value, "TENANT")
            assert due((await post(writer, app_token)).json()) == (value, "TENANT")
        # a write outside both apps (the CLI, another host) is seen as well
        await services.settings.reset(ADMIN, tenant, DUE)
        assert due((await post(a, app_token)).json()) == (30, "DEFAULT")
        assert due((await post(b, app_token)).json()) == (30, "DEFAULT")


async def test_statements_per_request_do_not_grow_with_the_number_of_settings(api, services):
    from core.model.definitions import SettingDefinition, SettingType
    from core.model.manifest import ReleaseManifest

    for n in (100, 5_000):
        catalog = tuple(
            SettingDefinition(key=f"s.k{i:05d}", type=SettingType.INT, default=i) for i in range(n)
        )
        await services.releases.register(ReleaseManifest(f"9.{n}", settings=catalog), ADMIN)
        await services.tenants.create(ADMIN, f"t{n}", f"T{n}", f"9.{n}")
    query = """query($t: String!) { settings(tenant: $t) { ... on Settings { items { key } } } }"""
    await api.gql("{ __typename }")  # the admin token is looked up once, then remembered
    counts = {}
    for n in (100, 5_000):
        with count_statements(services.engine) as cold:
            body = await api.gql(query, {"t": f"t{n}"})
        assert len(body["data"]["settings"]["items"]) == n
        with count_statements(services.engine) as warm:
            again = await api.gql(query, {"t": f"t{n}"})
        assert again == body
        counts[n] = (cold.count, warm.count)
    assert counts[100] == counts[5_000], counts
    assert counts[100][1] < counts[100][0]  # the second is answered from the cache
