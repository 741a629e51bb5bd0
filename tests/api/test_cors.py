"""CORS through the real ASGI app: origins are allowed per app token, none by
default; a preflight (no token) is answered when some active app token allows
its origin, the actual request by its own token's origins; ``Vary: Origin``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from api.http.cors import ALLOW_HEADERS, MAX_AGE
from core.model.clock import utcnow
from core.model.errors import InvalidInputError
from core.model.origins import parse_origin
from core.store.db import count_statements
from core.store.models import ApiToken
from tests.conftest import ADMIN

SHOP = "https://shop.example"
OTHER = "http://localhost:3000"
QUERY = '{ settings(tenant: "acme", keys: ["billing.invoice.due_days"]) { __typename } }'


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


def cors_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_no_origin_is_allowed_by_default(api):
    # api's app token allows no origin
    answer = await api.client.options("/graphql", headers=preflight(OTHER))
    assert answer.status_code == 403
    assert cors_headers(answer) == {}
    assert answer.json()["errors"][0]["extensions"]["code"] == "ORIGIN_NOT_ALLOWED"
    assert "--origin" in answer.json()["errors"][0]["message"]
    assert "Origin" in answer.headers["vary"]
    # and the actual request, with a valid token, is not readable from there
    got = await api.client.post(
        "/graphql",
        json={"query": QUERY},
        headers={"Authorization": f"Bearer {api.tokens['app']}", "Origin": OTHER},
    )
    assert got.status_code == 200
    assert "access-control-allow-origin" not in got.headers
    assert "Origin" in got.headers["vary"]


async def test_an_app_tokens_origin_is_answered_and_only_its_own(api, services, tenant):
    await services.apps.register(ADMIN, "shop", tenant)  # its tokens name it
    shop_token, _ = await services.tokens.create("app", [tenant], origins=[SHOP], app="shop")
    # another token allows OTHER
    await services.tokens.create("app", [tenant], origins=[OTHER])

    for path in ("/graphql", "/ofrep/v1/evaluate/flags"):
        answer = await api.client.options(path, headers=preflight(SHOP))
        assert answer.status_code == 204, (path, answer.text)
        assert answer.headers["access-control-allow-origin"] == SHOP
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert answer.headers["access-control-allow-headers"] == ALLOW_HEADERS
        assert answer.headers["access-control-max-age"] == str(MAX_AGE)
        assert "Origin" in answer.headers["vary"]
        assert answer.content == b""

    async def post(token: str, origin: str):
        return await api.client.post(
            "/graphql",
            json={"query": QUERY},
            headers={"Authorization": f"Bearer {token}", "Origin": origin},
        )

    mine = await post(shop_token, SHOP)
    assert mine.status_code == 200 and mine.json()["data"]["settings"]["__typename"] == "Settings"
    assert mine.headers["access-control-allow-origin"] == SHOP
    assert "ETag" in mine.headers["access-control-expose-headers"]
    assert "Origin" in mine.headers["vary"]
    # the same answer again (from the response cache) says the same
    again = await post(shop_token, SHOP)
    assert again.headers.get("etag") and again.headers["access-control-allow-origin"] == SHOP
    # a token used from an origin it does not allow (another token does): not readable
    crossed = await post(shop_token, OTHER)
    assert crossed.status_code == 200 and "access-control-allow-origin" not in crossed.headers
    # a token allowing no origin, used from an allowed one: not readable
    admin = await post(api.tokens["admin"], SHOP)
    assert "access-control-allow-origin" not in admin.headers
    # an unknown token from an allowed origin: the 401 is readable, so the app knows why
    refused = await post("tlr_unknown", SHOP)
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == SHOP
    # no Origin at all (curl, servers): no CORS header, but the Vary
    plain = await api.client.post(
        "/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {shop_token}"}
    )
    assert cors_headers(plain) == {} and "Origin" in plain.headers["vary"]
    # an unrelated origin still gets nothing
    assert (
        await api.client.options("/graphql", headers=preflight("https://evil.example"))
    ).status_code == 403


async def test_revoked_and_expired_tokens_allow_nothing(api, services, tenant):
    _, revoked = await services.tokens.create("app", [tenant], origins=[SHOP])
    _, expired = await services.tokens.create("app", [tenant], origins=[OTHER])
    assert (await api.client.options("/graphql", headers=preflight(SHOP))).status_code == 204
    await services.tokens.revoke(revoked.prefix)
    # this process's revocation applies at once
    assert (await api.client.options("/graphql", headers=preflight(SHOP))).status_code == 403
    async with services.sessions.begin() as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == expired.id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    services.tokens._origins = None  # as after TOKEN_CACHE_SECONDS
    assert (await api.client.options("/graphql", headers=preflight(OTHER))).status_code == 403


async def test_preflights_cost_a_constant_number_of_statements(api, services, tenant):
    for n in range(30):
        await services.tokens.create("app", [tenant], origins=[f"https://shop{n}.example"])
    with count_statements(services.engine) as first:
        answer = await api.client.options("/graphql", headers=preflight("https://shop7.example"))
    assert answer.status_code == 204
    assert first.count == 1  # the allowed origins, whatever the number of tokens
    with count_statements(services.engine) as later:
        for n in range(10):
            await api.client.options("/graphql", headers=preflight(f"https://shop{n}.example"))
            await api.client.options("/graphql", headers=preflight("https://nope.example"))
    assert later.count == 0  # kept briefly per process


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443/", "https://shop.example"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origins_are_written_as_browsers_send_them(given, origin):
    assert parse_origin(given) == origin


@pytest.mark.parametrize(
    "given",
    [
        "*",
        "null",
        "shop.example",
        "ftp://shop.example",
        "https://shop.example/app",
        "https://u:p@shop.example",
        "https://shop.example?x=1",
        "https://bücher.example",
        "https://shop.example:99999",
    ],
)
def test_what_is_not_an_origin_is_refused_clearly(given):
    with pytest.raises(InvalidInputError) as refused:
        parse_origin(given)
    assert refused.value.field == "origin" and "https://shop.example" in refused.value.message


async def test_only_app_tokens_allow_origins(services, tenant):
    with pytest.raises(InvalidInputError, match="only an app token"):
        await services.tokens.create("consultant", [tenant], origins=[SHOP])
    with pytest.raises(InvalidInputError, match="not an app name"):
        await services.tokens.create("app", [tenant], app="Shop Front")
    assert await services.tokens.list_all() == []
