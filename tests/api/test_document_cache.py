"""A document is parsed once (its price, the response cache's plan and strawberry
read the same parse) and validated once per app (api.graphql.document_cache); what
depends on more than its text (variables, operation name) is checked every time,
and a refused document is refused again, with the same errors."""

from __future__ import annotations

import pytest
import strawberry.schema.schema as strawberry_schema

import api.graphql.document_cache as document_cache

TENANTS = "query Q($s: String!) { tenant(slug: $s) { __typename ... on Tenant { slug } } }"


@pytest.fixture
def counted(monkeypatch):
    """How many times a document was parsed (by the app's store or by strawberry)
    and validated."""
    counts = {"parse": 0, "validate": 0}
    parse, validate = strawberry_schema.parse, strawberry_schema.validate_document
    assert document_cache.parse is parse  # both are graphql-core's

    def counting_parse(*args, **kwargs):
        counts["parse"] += 1
        return parse(*args, **kwargs)

    def counting_validate(*args, **kwargs):
        counts["validate"] += 1
        return validate(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "parse", counting_parse)
    monkeypatch.setattr(document_cache, "parse", counting_parse)
    monkeypatch.setattr(strawberry_schema, "validate_document", counting_validate)
    return counts


async def test_a_known_document_is_neither_parsed_nor_validated_again(api, counted):
    for slug in ("acme", "other", "acme"):
        body = await api.gql(TENANTS, {"s": slug})
        assert body["data"]["tenant"] == {"__typename": "Tenant", "slug": slug}
    assert counted == {"parse": 1, "validate": 1}


async def test_a_refused_document_is_refused_every_time_with_the_same_errors(api, counted):
    bad = "{ tenant(slug: 1) { nope } }"
    first = await api.gql(bad)
    second = await api.gql(bad)
    assert first == second
    assert first.get("data") is None
    messages = " ".join(e["message"] for e in first["errors"])
    assert "'nope'" in messages and "String cannot represent" in messages, messages
    assert counted["validate"] == 2


async def test_checks_on_variables_and_operation_name_still_run_on_a_known_document(api, counted):
    assert (await api.gql(TENANTS, {"s": "acme"}))["data"]["tenant"]["slug"] == "acme"
    nul = await api.gql(TENANTS, {"s": "ac\x00me"})
    assert [e["extensions"]["code"] for e in nul["errors"]] == ["NUL_CHARACTER"]
    two = TENANTS + " query R { __typename }"
    assert (await api.gql(two, {"s": "acme"}))["errors"][0]["extensions"]["code"] == (
        "OPERATION_NAME_REQUIRED"
    )
    # and the known document still answers
    assert (await api.gql(TENANTS, {"s": "other"}))["data"]["tenant"]["slug"] == "other"


async def test_a_long_document_is_answered_but_never_kept(api, counted):
    """A string token may be as long as the body limit allows: such a text is parsed
    every time instead of being kept (1,024 kept megabyte texts would hold
    gigabytes), and still answered the same, parsed once per request."""
    from api.graphql.document_cache import MAX_DOCUMENT_CHARS

    long_query = (
        '{ tenant(slug: "acme") { __typename ... on Tenant { slug } } }' + " " * MAX_DOCUMENT_CHARS
    )
    other = long_query.replace("slug }", "slug name }")
    for query in (long_query, other, long_query):
        body = await api.gql(query)
        assert body["data"]["tenant"]["slug"] == "acme"
    # one parse per request (only the last long text is at hand), validated each time
    assert counted == {"parse": 3, "validate": 3}


async def test_a_settings_request_is_parsed_once_for_its_price_its_plan_and_its_run(api, counted):
    """The request's price (api.graphql.cost), the response cache's plan and
    strawberry's execution read one parse, made with the configured token limit."""
    settings = "query S($t: String!) { settings(tenant: $t) { __typename } }"
    body = await api.gql(settings, {"t": "acme"})
    assert body["data"]["settings"]["__typename"] == "Settings", body
    assert counted["parse"] == 1
    # over the configured max_tokens (2,000): refused, whoever parses it
    many = "query S($t: String!) { settings(tenant: $t) { " + "__typename " * 2_100 + "} }"
    refused = await api.gql(many, {"t": "acme"})
    assert refused.get("data") is None
    assert "token" in refused["errors"][0]["message"].lower(), refused
