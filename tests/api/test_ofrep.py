"""OFREP (OpenFeature Remote Evaluation Protocol) through the real ASGI app over
httpx: the same resolution as GraphQL ``settings``, the spec's reasons, variants,
metadata and errors, ETag and 304, scope, secrets, rate limit and a constant
number of SQL statements."""

from __future__ import annotations

from dataclasses import replace

import pytest

from api.graphql.limits import GraphQLLimits
from api.http.app import AppOptions
from api.http.ofrep import BULK_PATH, SPEC_COMMIT
from core.store.db import count_statements
from tests.api.conftest import bearer
from tests.conftest import ADMIN

DUE = "billing.invoice.due_days"
SECRET = "integrations.webhooks.signing_secret"
ALL = """query($t: String!, $env: String) { settings(tenant: $t, environment: $env) {
  ... on Settings { release items { key value source definition { secret } } } } }"""


async def bulk(api, token: str = "app", context: dict | None = None, **headers: str):
    return await api.client.post(
        BULK_PATH,
        json={"context": context or {}},
        headers=bearer(api.tokens.get(token, token), **headers),
    )


async def flag(api, key: str, token: str = "app", context: dict | None = None):
    return await api.client.post(
        f"{BULK_PATH}/{key}",
        json={"context": context or {}},
        headers=bearer(api.tokens.get(token, token)),
    )


def by_key(answer) -> dict[str, dict]:
    return {f["key"]: f for f in answer.json()["flags"]}


def test_the_spec_commit_is_named():
    assert len(SPEC_COMMIT) == 40 and int(SPEC_COMMIT, 16)


async def test_bulk_is_the_graphql_resolution_without_secrets(api, services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 45)
    await services.settings.set(ADMIN, tenant, DUE, 60, environment="production")
    await services.settings.set(ADMIN, tenant, SECRET, "whsec-VERY-SECRET")
    for environment in (None, "production"):
        context = {"environment": environment} if environment else {}
        answer = await bulk(api, context=context)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        flags = by_key(answer)
        graphql = await api.gql(ALL, {"t": tenant, "env": environment}, token="app")
        items = graphql["data"]["settings"]["items"]
        expected = {i["key"]: i for i in items if not i["definition"]["secret"]}
        assert len(flags) == len(expected) > 50
        for key, item in expected.items():
            assert flags[key].get("value") == item["value"], key
            assert flags[key]["variant"] == item["source"], key
            assert flags[key]["reason"] == (
                "STATIC" if item["source"] == "DEFAULT" else "TARGETING_MATCH"
            )
        assert SECRET not in flags and "whsec-VERY-SECRET" not in answer.text
        metadata = answer.json()["metadata"]
        assert metadata["tenant"] == tenant and metadata["release"] == "2.0"
        assert metadata.get("environment") == environment
    production = by_key(answer)
    assert production[DUE] == {
        "key": DUE,
        "value": 60,
        "reason": "TARGETING_MATCH",
        "variant": "ENVIRONMENT",
        "metadata": {"source": "ENVIRONMENT", "revision": 1},
    }
    tenant_wide = by_key(await bulk(api))
    assert tenant_wide[DUE]["variant"] == "TENANT" and tenant_wide[DUE]["value"] == 45
    untouched = next(f for f in tenant_wide.values() if f["variant"] == "DEFAULT")
    assert untouched["reason"] == "STATIC" and untouched["metadata"] == {
        "source": "DEFAULT",
        "revision": 0,
    }


async def test_etag_and_if_none_match(api, services, tenant):
    first = await bulk(api)
    etag = first.headers["etag"]
    assert etag.startswith('"')
    again = await bulk(api, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    # another token of the tenant gets the same flags, but its own eventStreams URL
    # (a ticket for that token), so its own tag
    consultant = await bulk(api, "consultant", {"tenant": tenant}, **{"If-None-Match": etag})
    assert consultant.status_code == 200 and consultant.headers["etag"] != etag
    assert consultant.json()["flags"] == first.json()["flags"]
    assert consultant.json()["eventStreams"] != first.json()["eventStreams"]
    # a change makes a new answer, and the old tag no longer matches
    await services.settings.set(ADMIN, tenant, DUE, 45)
    changed = await bulk(api, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert by_key(changed)[DUE]["value"] == 45


async def test_one_flag(api, services, tenant):
    await services.settings.set(ADMIN, tenant, DUE, 45)
    answer = await flag(api, DUE)
    assert answer.status_code == 200
    assert answer.json() == {
        "key": DUE,
        "value": 45,
        "reason": "TARGETING_MATCH",
        "variant": "TENANT",
        "metadata": {"source": "TENANT", "revision": 1},
    }
    missing = await flag(api, "billing.nothing_here")
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == "FLAG_NOT_FOUND"
    assert missing.json()["key"] == "billing.nothing_here"
    await services.settings.set(ADMIN, tenant, SECRET, "whsec-VERY-SECRET")
    secret = await flag(api, SECRET)
    assert secret.status_code == 404 and secret.json()["errorCode"] == "FLAG_NOT_FOUND"
    assert "secret" in secret.json()["errorDetails"] and "whsec" not in secret.text


async def test_context_errors(api, tenant):
    # an admin sees every tenant: it must say which
    admin = await bulk(api, "admin")
    assert admin.status_code == 400 and admin.json()["errorCode"] == "INVALID_CONTEXT"
    assert '"tenant"' in admin.json()["errorDetails"]
    unknown_env = await bulk(api, context={"environment": "mars"})
    assert unknown_env.status_code == 400 and unknown_env.json()["errorCode"] == "INVALID_CONTEXT"
    assert "production" in unknown_env.json()["errorDetails"]
    nobody = await bulk(api, "admin", {"tenant": "nobody"})
    assert nobody.status_code == 400 and nobody.json()["errorCode"] == "INVALID_CONTEXT"
    wrong_type = await flag(api, DUE, context={"tenant": 7})
    assert wrong_type.status_code == 400
    assert wrong_type.json() == {
        "key": DUE,
        "errorCode": "INVALID_CONTEXT",
        "errorDetails": wrong_type.json()["errorDetails"],
    }
    for body in (b"{not json", b"[1, 2]"):
        bad = await api.client.post(BULK_PATH, content=body, headers=bearer(api.tokens["app"]))
        assert bad.status_code == 400 and bad.json()["errorCode"] == "PARSE_ERROR", body
    no_context = await api.client.post(
        BULK_PATH, json={"context": "acme"}, headers=bearer(api.tokens["app"])
    )
    assert no_context.json()["errorCode"] == "INVALID_CONTEXT"
    # an SDK without any context sends an empty object: the app token's own tenant
    empty = await api.client.post(BULK_PATH, json={}, headers=bearer(api.tokens["app"]))
    assert empty.status_code == 200
    got = await api.client.get(BULK_PATH, headers=bearer(api.tokens["app"]))
    assert got.status_code == 405 and got.headers["allow"] == "POST"


async def test_authentication_and_scope(api, services, tenant):
    missing = await api.client.post(BULK_PATH, json={"context": {}})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "tailor token create" in missing.json()["errorDetails"]
    unknown = await bulk(api, "tlr_nope")
    assert unknown.status_code == 401
    # another tenant: 403, saying nothing about it
    other = await bulk(api, context={"tenant": "other"})
    assert other.status_code == 403 and "not in your token's scope" in other.json()["errorDetails"]
    nowhere = await bulk(api, context={"tenant": "nowhere"})
    # the same answer as for a tenant that exists
    assert nowhere.status_code == 403
    assert nowhere.json()["errorDetails"] == other.json()["errorDetails"].replace(
        "other", "nowhere"
    )
    assert (await flag(api, DUE, context={"tenant": "other"})).status_code == 403
    # a host token reads no settings
    assert (await bulk(api, "host", {"tenant": tenant})).status_code == 403
    # a revoked token: 401 at once
    secret, info = await services.tokens.create("app", [tenant])
    assert (await bulk(api, secret)).status_code == 200
    await services.tokens.revoke(info.prefix)
    assert (await bulk(api, secret)).status_code == 401


async def test_rate_limit_answers_429_with_retry_after(client_with, services, tenant):
    token, _ = await services.tokens.create("app", [tenant])
    limits = replace(GraphQLLimits(), rate_limit_per_minute=60, rate_limit_burst=30, max_cost=20)
    async with client_with(AppOptions(limits=limits, response_cache=False)) as client:
        statuses = []
        for _ in range(4):
            answer = await client.post(BULK_PATH, json={}, headers=bearer(token))
            statuses.append(answer.status_code)
        assert statuses[:2] == [200, 200] and statuses[-1] == 429, statuses
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.json()["errorCode"] == "GENERAL"


async def test_answers_from_the_cache_cost_the_minimum(client_with, services, tenant):
    token, _ = await services.tokens.create("app", [tenant])
    limits = replace(GraphQLLimits(), rate_limit_per_minute=60, rate_limit_burst=30, max_cost=20)
    async with client_with(AppOptions(limits=limits)) as client:
        statuses = [
            (await client.post(BULK_PATH, json={}, headers=bearer(token))).status_code
            for _ in range(15)
        ]
    assert statuses == [200] * 15  # 11 for the first, then 1 each


async def test_constant_statements(api, services, tenant):
    await services.tenants.create(ADMIN, "busy", "Busy Inc", "2.0")
    # many overrides, at both scopes
    graphql = await api.gql(ALL, {"t": "busy"})
    ints = [i["key"] for i in graphql["data"]["settings"]["items"] if isinstance(i["value"], bool)][
        :40
    ]
    for key in ints:
        await services.settings.set(ADMIN, "busy", key, True)
        await services.settings.set(ADMIN, "busy", key, False, environment="production")
    # the token is known from here on (its own statement, once per few seconds)
    assert (await bulk(api, "admin", {"tenant": "other"})).status_code == 200
    counts = {}
    for slug in (tenant, "busy"):
        with count_statements(services.engine) as cold:
            assert (await bulk(api, "admin", {"tenant": slug})).status_code == 200
        with count_statements(services.engine, keep=True) as warm:
            answer = await bulk(api, "admin", {"tenant": slug})
            assert answer.status_code == 200
        # its eventStreams URL (a stream ticket minted for this token) costs none
        assert answer.json()["eventStreams"][0]["type"] == "sse"
        counts[slug] = (cold.count, warm.count)
        assert warm.count == 1 and "data_version" in warm.statements[0]
    assert counts[tenant] == counts["busy"], counts
    # one flag, too: warm, the data version only
    assert (await flag(api, DUE, "admin", {"tenant": "busy"})).status_code == 200
    with count_statements(services.engine) as one_warm:
        assert (await flag(api, DUE, "admin", {"tenant": "busy"})).status_code == 200
    assert one_warm.count == 1


@pytest.mark.parametrize("path", ["/ofrep/v2/evaluate/flags", f"{BULK_PATH}/a/b"])
async def test_other_paths_are_not_found(api, path):
    answer = await api.client.post(path, json={}, headers=bearer(api.tokens["app"]))
    assert answer.status_code == 404 and BULK_PATH in answer.json()["errorDetails"]


def test_metrics_name_the_route_not_the_flag():
    from api.http.metrics import route_name

    assert route_name(f"{BULK_PATH}/billing.invoice.due_days") == "/ofrep"
    assert route_name(BULK_PATH) == "/ofrep"
