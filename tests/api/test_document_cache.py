"""A document is parsed and validated once per app (api.graphql.document_cache); what
depends on more than its text (variables, operation name) is checked every time,
and a refused document is refused again, with the same errors."""

from __future__ import annotations

import pytest
import strawberry.schema.schema as strawberry_schema

TENANTS = "query Q($s: String!) { tenant(slug: $s) { __typename ... on Tenant { slug } } }"


@pytest.fixture
def counted(monkeypatch):
    """How many times strawberry parsed and validated a document."""
    counts = {"parse": 0, "validate": 0}
    parse, validate = strawberry_schema.parse, strawberry_schema.validate_document

    def counting_parse(*args, **kwargs):
        counts["parse"] += 1
        return parse(*args, **kwargs)

    def counting_validate(*args, **kwargs):
        counts["validate"] += 1
        return validate(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "parse", counting_parse)
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
    gigabytes), and still answered the same."""
    from api.graphql.document_cache import MAX_DOCUMENT_CHARS

    long_query = (
        '{ tenant(slug: "acme") { __typename ... on Tenant { slug } } }' + " " * MAX_DOCUMENT_CHARS
    )
    for _ in range(2):
        body = await api.gql(long_query)
        assert body["data"]["tenant"] == {"__typename": "Tenant", "slug": "acme"}
    assert counted == {"parse": 2, "validate": 2}
