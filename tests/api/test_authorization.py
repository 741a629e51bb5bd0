"""Authorization on every root field, for every role, and tenant isolation:
no query shape returns another tenant's data to a tenant-scoped token."""

from __future__ import annotations

import asyncio
import json

import pytest

from api.graphql.context import Context
from api.graphql.schema import build_schema
from api.http.bearer import bearer_principal
from core.model.auth import Role
from core.store.feed_hub import FeedHub
from plugins.product import load_product
from tests.api.authz_rules import (
    ALLOW,
    DENY,
    FILTERED,
    MUTATION_RULES,
    OWN,
    QUERY_RULES,
    SUBSCRIPTION_RULES,
    Rule,
)
from tests.conftest import ADMIN, fresh_runtime

RIVAL = "rival"
RIVAL_NAME = "Rival Secretco"
MARKERS = (RIVAL_NAME, "LEAK-MARKER-RIVAL", "LEAK-REASON-RIVAL")
SCOPED = (Role.CONSULTANT, Role.APP, Role.HOST)


@pytest.fixture
async def rival(api, services):
    """A tenant outside the scoped tokens' scope, full of recognisable data."""
    await services.tenants.create(ADMIN, RIVAL, RIVAL_NAME, "2.0")
    for environment in (None, "production"):
        await services.settings.set(
            ADMIN,
            RIVAL,
            "tax.exemption.codes",
            ["LEAK-MARKER-RIVAL"],
            environment=environment,
            reason="LEAK-REASON-RIVAL",
        )
    # the scoped tokens' own tenant has an override to reset, too
    await services.settings.set(ADMIN, "acme", "tax.exemption.codes", ["ACME"])
    return RIVAL


def root_fields(operation: str) -> set[str]:
    schema = build_schema()._schema
    root = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }[operation]
    return set(root.fields) if root is not None else set()


@pytest.mark.parametrize(
    ("operation", "rules"),
    [("query", QUERY_RULES), ("mutation", MUTATION_RULES), ("subscription", SUBSCRIPTION_RULES)],
)
def test_every_root_field_has_an_authorization_rule(operation, rules):
    fields = root_fields(operation)
    missing = sorted(fields - set(rules))
    assert not missing, (
        f"root {operation} fields without an authorization rule: {missing}; "
        "add one to tests/api/authz_rules.py"
    )
    stale = sorted(set(rules) - fields)
    assert not stale, f"rules for {operation} fields that do not exist: {stale}"
    for name, rule in rules.items():
        assert set(rule.access) == set(Role), f"{name}: give a rule for every role"


def codes(body: dict) -> list[str]:
    """Every error code in the answer: raised errors and typed (union) errors."""
    found = [(e.get("extensions") or {}).get("code", "") for e in body.get("errors") or ()]

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("code"), str):
                found.append(node["code"])
            if node.get("__typename") == "PermissionDenied":
                found.append("PERMISSION_DENIED")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body.get("data"))
    return found


def data_strings(node, key=None):
    """Strings in the answer's data, error messages excepted (they may quote the
    slug the caller asked for)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k != "message":
                yield from data_strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from data_strings(v, key)
    elif isinstance(node, str):
        yield node


async def run(api, role: Role, rule: Rule, tenant: str, services=None) -> dict:
    if rule.query.lstrip().startswith("subscription"):
        return await first_result(services, api.tokens[role.value], rule, tenant)
    response = await api.client.post(
        "/graphql",
        json={"query": rule.query, "variables": {"tenant": tenant}},
        headers={"Authorization": f"Bearer {api.tokens[role.value]}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    request_errors = [e for e in body.get("errors") or () if not e.get("path")]
    assert not request_errors, f"the rule's query is broken: {body}"
    return body


async def first_result(services, token: str, rule: Rule, tenant: str) -> dict:
    """A subscription's first result, through the schema as the app runs it (an
    HTTP test client buffers a whole response, and a subscription never ends)."""
    principal = await bearer_principal(services, f"Bearer {token}")
    plugins = fresh_runtime(load_product())
    context = Context(services, principal, "authz", plugins, feed_hub=FeedHub(services.feed))
    try:
        stream = await build_schema().subscribe(
            rule.query, variable_values={"tenant": tenant}, context_value=context
        )
        if not hasattr(stream, "__anext__"):  # refused before it ran
            return body_of(stream)
        try:
            result = await asyncio.wait_for(anext(stream), 5)
        finally:
            await stream.aclose()
        return body_of(result)
    finally:
        await plugins.close()


def body_of(result) -> dict:
    body = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    return body


def assert_allowed(body: dict, where: str) -> None:
    assert "PERMISSION_DENIED" not in codes(body), f"{where}: refused but should work: {body}"
    assert not body.get("errors"), f"{where}: unexpected errors: {body}"


def assert_denied(body: dict, where: str) -> None:
    assert "PERMISSION_DENIED" in codes(body), f"{where}: should be refused: {body}"
    leaks = [m for m in MARKERS if m in json.dumps(body)]
    assert not leaks, f"{where}: refused, yet it shows {leaks}"


def assert_no_rival_data(body: dict, where: str) -> None:
    text = json.dumps(body)
    assert not [m for m in MARKERS if m in text], f"{where}: another tenant's data: {body}"
    assert RIVAL not in set(data_strings(body.get("data"))), f"{where}: {body}"


RULES = [
    *[("query", n, r) for n, r in QUERY_RULES.items()],
    *[("mutation", n, r) for n, r in MUTATION_RULES.items()],
    *[("subscription", n, r) for n, r in SUBSCRIPTION_RULES.items()],
]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize(("operation", "field", "rule"), RULES, ids=lambda x: str(x)[:40])
async def test_role_access_per_field(api, rival, services, role, operation, field, rule):
    access = rule.access[role]
    own = "acme"  # the scoped tokens' tenant
    for tenant in (own, rival):
        where = f"{role.value} {operation} {field}(tenant={tenant})"
        body = await run(api, role, rule, tenant, services)
        if access == ALLOW or (access == OWN and tenant == own):
            assert_allowed(body, where)
        elif access == FILTERED:
            assert_allowed(body, where)
            assert_no_rival_data(body, where)
        elif access == DENY or access == OWN:
            assert_denied(body, where)
        else:  # pragma: no cover - a typo in the table
            pytest.fail(f"unknown access {access!r} for {field}")
        if role in SCOPED:
            assert_no_rival_data(body, where)


CRAFTED = [
    # aliases and fragments aimed at the other tenant alongside one's own
    """{ mine: settings(tenant: "acme") { ...S } theirs: settings(tenant: "rival") { ...S } }
       fragment S on SettingsResult { __typename ... on Settings { tenant items { key value
         tenantOverride { value } environmentOverride { value } } } }""",
    """{ a: tenant(slug: "rival") { ... on Tenant { slug name environments } }
         b: tenant(slug: "acme") { ... on Tenant { slug name } } }""",
    """{ tenants { ...T } again: tenants { ... on Tenant { name slug release } } }
       fragment T on Tenant { slug name environments createdAt }""",
    # list filters: prefixes, keys, environments, audit filters
    """{ settings(tenant: "rival", environment: "production", prefix: "tax") {
         ... on Settings { items { value } } } }""",
    """{ settings(tenant: "rival", keys: ["tax.exemption.codes"]) {
         ... on Settings { items { value } } } }""",
    """{ all: auditLog { ... on AuditLog { entries { tenant reason new } } }
         rival: auditLog(tenant: "rival") { ... on AuditLog { entries { reason new } } }
         key: auditLog(key: "tax.exemption.codes") { ... on AuditLog { entries { new } } }
         mine: auditLog(tenant: "acme", key: "tax.exemption.codes", limit: 500) {
           ... on AuditLog { entries { tenant reason new } } } }""",
    """mutation { w: setSetting(input: {tenant: "rival", key: "tax.exemption.codes",
         value: ["X"]}) { ... on SettingChanged { old new setting { value } } }
       r: resetSetting(input: {tenant: "rival", key: "tax.exemption.codes"}) {
         ... on SettingChanged { old } } }""",
]


@pytest.mark.parametrize("role", SCOPED, ids=lambda r: r.value)
@pytest.mark.parametrize("query", CRAFTED, ids=range(len(CRAFTED)))
async def test_no_query_shape_reaches_another_tenant(api, rival, services, role, query):
    response = await api.client.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {api.tokens[role.value]}"},
    )
    assert response.status_code == 200, response.text
    assert_no_rival_data(response.json(), f"{role.value}: {query[:60]}")
    # and nothing of the other tenant changed
    resolved = await services.settings.resolve(ADMIN, RIVAL, "production", ["tax.exemption.codes"])
    assert resolved.settings[0].value == ["LEAK-MARKER-RIVAL"]
