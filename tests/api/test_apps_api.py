"""Front-end apps over HTTP: register an app, push its operations (stored by
sha256), run them by ``documentId`` or Apollo's ``persistedQuery`` hash instead of
the text, and restrict a trusted-only app's tokens to its registered documents."""

from __future__ import annotations

import hashlib

from core.model.auth import Principal
from core.store.db import count_statements

DUE = "billing.invoice.due_days"
STARTUP = """query Startup($tenant: String!) {
  settings(tenant: $tenant, keys: ["billing.invoice.due_days"]) {
    __typename ... on Settings { items { key value source } } } }"""
INVOICE = """query Invoice($tenant: String!) {
  settings(tenant: $tenant, prefix: "billing.invoice") { ...Values } }"""
FRAGMENT = """fragment Values on SettingsResult { __typename ... on Settings { items { key } } }"""
REGISTER = """mutation($name: String!, $tenant: String!, $trusted: Boolean!) {
  registerApp(name: $name, tenant: $tenant, trustedOnly: $trusted) { __typename
    ... on App { name tenant trustedOnly } ... on Error { code message } } }"""
PUSH = """mutation($app: String!, $document: String!) {
  pushAppOperations(app: $app, document: $document) { __typename
    ... on AppOperationsPushed { app { name operations { id name } }
      pushed { stored operation { id name document keys prefixes } } }
    ... on InvalidInput { field } ... on Error { code message } } }"""
FLAGS = """mutation($app: String!, $keys: [String!]!) { pushAppFlags(app: $app, keys: $keys) {
  __typename ... on App { flags } ... on InvalidInput { field } ... on Error { code message } } }"""
APPS = """query($tenant: String) { apps(tenant: $tenant) { __typename
  ... on Apps { apps { name tenant flags operations { id } } } ... on Error { code } } }"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def post(api, body: dict, token: str = "app", **headers: str):
    return await api.client.post(
        "/graphql",
        json=body,
        headers={"Authorization": f"Bearer {api.tokens.get(token, token)}", **headers},
    )


async def register(api, name="shop-web", tenant="acme", trusted=False, token="consultant"):
    data = await api.gql(REGISTER, {"name": name, "tenant": tenant, "trusted": trusted}, token)
    return data["data"]["registerApp"]


async def push(api, document: str, app="shop-web", token="consultant"):
    data = await api.gql(PUSH, {"app": app, "document": document}, token)
    return data["data"]["pushAppOperations"]


async def test_register_push_and_list(api, services):
    assert (await register(api))["__typename"] == "App"
    # a document of several operations: one stored document each, with its fragments
    pushed = await push(api, f"{STARTUP}\n\n{INVOICE}\n\n{FRAGMENT}")
    assert pushed["__typename"] == "AppOperationsPushed", pushed
    by_name = {p["operation"]["name"]: p for p in pushed["pushed"]}
    assert set(by_name) == {"Startup", "Invoice"}
    startup, invoice = by_name["Startup"]["operation"], by_name["Invoice"]["operation"]
    assert startup["document"] == STARTUP and startup["id"] == "sha256:" + sha(STARTUP)
    assert invoice["document"] == f"{INVOICE}\n\n{FRAGMENT}"
    assert startup["keys"] == [DUE] and invoice["prefixes"] == ["billing.invoice"]
    assert all(p["stored"] for p in pushed["pushed"])
    # pushing again stores nothing new
    again = await push(api, STARTUP)
    assert [p["stored"] for p in again["pushed"]] == [False]
    flags = await api.gql(FLAGS, {"app": "shop-web", "keys": [DUE]}, "consultant")
    assert flags["data"]["pushAppFlags"]["flags"] == [DUE]
    listed = await api.gql(APPS, {}, "release_manager")
    [app] = listed["data"]["apps"]["apps"]
    assert app["name"] == "shop-web" and app["tenant"] == "acme" and app["flags"] == [DUE]
    assert {o["id"] for o in app["operations"]} == {startup["id"], invoice["id"]}
    audit = await services.audit.list_all(Principal.system(), "acme")
    actions = [e.action for e in audit]
    assert "app_registered" in actions and "app_operations_pushed" in actions


async def test_bad_input_is_refused_and_changes_nothing(api, services):
    await register(api)
    bad = await push(api, "query { nope }")
    assert bad["__typename"] == "InvalidInput" and "Tailor's schema" in bad["message"]
    syntax = await push(api, "query {")
    assert syntax["__typename"] == "InvalidInput" and "not a GraphQL document" in syntax["message"]
    anonymous = await push(api, "{ a: __typename } { b: __typename }")
    assert "must name each" in anonymous["message"]
    assert (await services.apps.app(Principal.system(), "shop-web")).operations == ()
    name = await register(api, name="Shop Web")
    assert name["__typename"] == "InvalidInput" and "app name" in name["message"]
    flags = await api.gql(FLAGS, {"app": "shop-web", "keys": ["not a key"]}, "consultant")
    assert flags["data"]["pushAppFlags"]["__typename"] == "InvalidInput"


async def test_scope_an_app_elsewhere_is_not_found(api, services):
    await register(api, name="other-web", tenant="other", token="admin")
    # the consultant of acme: another tenant's app is "not found", like none
    pushed = await push(api, STARTUP, app="other-web")
    assert pushed["code"] == "NOT_FOUND"
    flags = await api.gql(FLAGS, {"app": "other-web", "keys": [DUE]}, "consultant")
    assert flags["data"]["pushAppFlags"]["code"] == "NOT_FOUND"
    listed = await api.gql(APPS, {}, "consultant")
    assert listed["data"]["apps"]["apps"] == []
    refused = await register(api, name="acme-web", tenant="other")
    assert refused["code"] == "PERMISSION_DENIED"
    taken = await register(api, name="other-web", tenant="acme")
    assert taken["code"] == "ALREADY_EXISTS"


async def test_run_by_document_id_and_apollo_hash(api, services):
    await register(api)
    await push(api, STARTUP)
    by_text = (await post(api, {"query": STARTUP, "variables": {"tenant": "acme"}})).json()
    assert by_text["data"]["settings"]["items"][0]["key"] == DUE
    by_id = await post(
        api, {"documentId": "sha256:" + sha(STARTUP), "variables": {"tenant": "acme"}}
    )
    assert by_id.status_code == 200 and by_id.json() == by_text
    apollo = {"persistedQuery": {"version": 1, "sha256Hash": sha(STARTUP)}}
    by_hash = await post(api, {"extensions": apollo, "variables": {"tenant": "acme"}})
    assert by_hash.status_code == 200 and by_hash.json() == by_text
    got = await api.client.get(
        "/graphql",
        params={"documentId": "sha256:" + sha(STARTUP), "variables": '{"tenant": "acme"}'},
        headers={"Authorization": f"Bearer {api.tokens['app']}"},
    )
    assert got.status_code == 200 and got.json() == by_text
    # Apollo's answer for an unknown hash: its clients then send the text
    unknown = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    missing = await post(api, {"extensions": unknown})
    assert missing.status_code == 200
    assert missing.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    no_doc = await post(api, {"documentId": "sha256:" + "f" * 64})
    assert no_doc.status_code == 400
    error = no_doc.json()["errors"][0]
    assert error["extensions"]["code"] == "PERSISTED_DOCUMENT_NOT_FOUND"
    assert "tailor app operations push" in error["message"]
    malformed = await post(api, {"documentId": "md5:abc"})
    assert malformed.status_code == 400 and "sha256:<64 hex digits>" in malformed.text
    # another tenant's token: acme's documents are not found for it
    other, _ = await services.tokens.create("app", ["other"])
    foreign = await post(api, {"documentId": "sha256:" + sha(STARTUP)}, other)
    assert foreign.status_code == 400
    assert foreign.json()["errors"][0]["extensions"]["code"] == "PERSISTED_DOCUMENT_NOT_FOUND"
    # the text with a hash that is not its own
    mismatch = await post(api, {"query": "{ __typename }", "extensions": apollo})
    assert mismatch.status_code == 400 and "does not match" in mismatch.text


async def test_trusted_only_app_runs_only_its_documents(api, services):
    await register(api, trusted=True)
    await push(api, STARTUP)
    await register(api, name="admin-web")
    await push(api, INVOICE + "\n" + FRAGMENT, app="admin-web")
    secret, info = await services.tokens.create("app", ["acme"], app="shop-web")
    assert info.app == "shop-web"
    variables = {"tenant": "acme"}
    ok = await post(api, {"documentId": "sha256:" + sha(STARTUP), "variables": variables}, secret)
    assert ok.status_code == 200 and ok.json()["data"]["settings"]["__typename"] == "Settings"
    # its own document sent as text is its document
    same = await post(api, {"query": STARTUP, "variables": variables}, secret)
    assert same.status_code == 200
    free = await post(api, {"query": "{ __typename }"}, secret)
    assert free.status_code == 403
    error = free.json()["errors"][0]
    assert error["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
    assert "tailor app operations push shop-web" in error["message"]
    # another app's document is not its own
    other = await post(
        api,
        {"documentId": "sha256:" + sha(INVOICE + "\n" + FRAGMENT), "variables": variables},
        secret,
    )
    assert other.status_code == 403
    # an app token of no app, and the untrusted app's tokens, run any document
    assert (await post(api, {"query": "{ __typename }"})).status_code == 200
    loose, _ = await services.tokens.create("app", ["acme"], app="admin-web")
    assert (await post(api, {"query": "{ __typename }"}, loose)).status_code == 200


async def test_token_app_must_exist_and_be_the_tokens_tenants(api, services):
    import pytest

    from core.model.errors import InvalidInputError, NotFoundError

    await register(api, name="other-web", tenant="other", token="admin")
    with pytest.raises(NotFoundError):
        await services.tokens.create("app", ["acme"], app="nope")
    with pytest.raises(InvalidInputError, match="another tenant"):
        await services.tokens.create("app", ["acme"], app="other-web")
    with pytest.raises(InvalidInputError, match="only an app token"):
        await services.tokens.create("consultant", ["other"], app="other-web")


async def test_statements_per_request_stay_constant(api, services):
    await register(api, trusted=True)
    await push(api, STARTUP)
    secret, _ = await services.tokens.create("app", ["acme"], app="shop-web")
    body = {"documentId": "sha256:" + sha(STARTUP), "variables": {"tenant": "acme"}}
    plain = {"query": STARTUP, "variables": {"tenant": "acme"}}
    await post(api, plain)  # warm the token and the enabled-customizations caches
    await post(api, body, secret)
    with count_statements(services.engine) as text:
        await post(api, {**plain, "variables": {"tenant": "acme", "x": 1}})
    with count_statements(services.engine) as by_id:
        await post(api, {**body, "variables": {"tenant": "acme", "x": 2}}, secret)
    # documents and the app's trusted set are remembered: no statement of their own
    assert by_id.count == text.count
    # a batch of unknown ids: one statement for all of them
    batch = [{"documentId": "sha256:" + f"{i:064x}"} for i in range(5)]
    with count_statements(services.engine) as unknown:
        response = await post(api, batch)  # type: ignore[arg-type]
    assert response.status_code == 400 and unknown.count == 1
