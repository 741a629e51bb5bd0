"""Webhooks through the real app and a real receiver on 127.0.0.1: retries with
backoff, the README's verification recipe, feed order, a dead receiver that
never slows a write, pausing after the last attempt, address refusals at creation
and at delivery, no key, and two workers that never deliver at once."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from api.http.background import Background
from api.http.webhooks import DeliveryOptions, WebhookDeliverer
from core.model import webhooks as rules
from core.model.secrets import SecretBox, is_sealed
from core.store import feed
from core.store.db import count_statements
from core.store.models import WebhookRow
from core.store.webhooks import WebhookService
from tests.conftest import ADMIN
from tests.receiver import receiver

README = Path(__file__).resolve().parents[2] / "README.md"
DUE = "billing.invoice.due_days"

CREATE = """mutation($url: String!, $events: [String!]! = [], $tenants: [String!]! = []) {
  createWebhook(input: {url: $url, events: $events, tenants: $tenants}) { __typename
    ... on WebhookCreated { secret webhook { id url events tenants state cursor } }
    ... on InvalidInput { code field message }
    ... on Error { code message } } }"""
DELIVERIES = """query($id: Int!) { webhookDeliveries(webhook: $id) { __typename
    ... on WebhookDeliveries { items { delivery sequence attempt at statusCode error
      latencyMs outcome } }
    ... on Error { code message } } }"""
SET = """mutation($tenant: String!, $value: JSON!) { setSetting(input: {tenant: $tenant,
    key: "billing.invoice.due_days", value: $value}) { __typename
    ... on SettingChanged { revision } ... on Error { code message } } }"""


def readme_verify():
    """The verification recipe exactly as the README documents it."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- webhook-verify -->\n```python\n(.*?)```", text, re.S)
    assert block, "README.md lost its webhook verification recipe"
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    return namespace["verify"]


@pytest.fixture
def private_allowed(monkeypatch):
    monkeypatch.setenv(rules.ALLOW_PRIVATE_ENV, "1")


@contextlib.asynccontextmanager
async def delivering(service: WebhookService, **options) -> AsyncIterator[WebhookDeliverer]:
    """The delivery job as a server runs it (a background job woken by commits),
    with short backoffs."""
    defaults = {"poll": 0.05, "backoff": 0.05, "private_allowed": True}
    deliverer = WebhookDeliverer(service, DeliveryOptions(**{**defaults, **options}))
    background = Background()
    background.run("deliver webhooks", deliverer.run)
    stop = feed.on_commit(deliverer.wake)
    background.start()
    try:
        yield deliverer
    finally:
        stop()
        await background.stop()


async def logged(service: WebhookService, webhook: int, delivered: int) -> None:
    """Until the delivery log holds ``delivered`` delivered attempts (the receiver
    answers before the deliverer records)."""
    async with asyncio.timeout(30):
        while True:
            found = await service.deliveries(ADMIN, webhook)
            if sum(a.outcome == "delivered" for a in found) >= delivered:
                return
            await asyncio.sleep(0.02)


async def create(api, url: str, token: str = "admin", **variables) -> dict:
    body = await api.gql(CREATE, {"url": url, **variables}, token=token)
    return body["data"]["createWebhook"]


async def set_due(api, tenant: str, value: int) -> None:
    result = (await api.gql(SET, {"tenant": tenant, "value": value}))["data"]["setSetting"]
    assert result["__typename"] == "SettingChanged", result


async def test_fails_twice_then_delivered_once_with_three_attempts_logged(
    api, services, tenant, private_allowed
):
    verify = readme_verify()
    async with receiver(script=[500, 503]) as got:
        created = await create(api, got.url)
        assert created["__typename"] == "WebhookCreated", created
        secret, hook = created["secret"], created["webhook"]
        assert secret.startswith("whsec_") and hook["state"] == "active"
        async with delivering(services.webhooks):
            await set_due(api, tenant, 45)
            await got.wait_for(1)
            await logged(services.webhooks, hook["id"], 1)
            # nothing more comes for the delivered change
            await asyncio.sleep(0.3)
        assert [r.status for r in got.requests] == [500, 503, 200]
        ids = {r.headers["tailor-delivery"] for r in got.requests}
        assert len(ids) == 1
        for request in got.requests:
            assert request.method == "POST" and request.path == "/hooks/tailor?source=test"
            assert request.headers["content-type"] == "application/json"
            assert verify(secret, request.headers["tailor-signature"], request.body)
            # the signature covers the body: one byte changed, or another secret, fails
            assert not verify(secret, request.headers["tailor-signature"], request.body + b" ")
            assert not verify("whsec_other", request.headers["tailor-signature"], request.body)
        event = got.delivered[0].json
        change = (await services.feed.since(hook["cursor"]))[0]
        assert event == {
            "delivery": ids.pop(),
            "sequence": change.sequence,
            "tenant": tenant,
            "environment": None,
            "keys": [DUE],
            "action": "set",
            "actor": change.actor,
            "at": change.at.isoformat(),
        }
    log = (await api.gql(DELIVERIES, {"id": hook["id"]}))["data"]["webhookDeliveries"]
    attempts = list(reversed(log["items"]))
    assert [(a["attempt"], a["statusCode"], a["outcome"]) for a in attempts] == [
        (1, 500, "retrying"),
        (2, 503, "retrying"),
        (3, 200, "delivered"),
    ]
    assert [a["error"] for a in attempts] == ["HTTP 500", "HTTP 503", None]
    assert all(a["latencyMs"] > 0 and a["sequence"] == change.sequence for a in attempts)
    (listed,) = await services.webhooks.list_all(ADMIN)
    assert (listed.cursor, listed.attempts, listed.state) == (change.sequence, 0, "active")


async def test_the_secret_is_stored_sealed_and_shown_once(api, services, private_allowed):
    async with receiver() as got:
        created = await create(api, got.url)
    async with services.sessions() as session:
        stored = (await session.scalars(select(WebhookRow))).one().secret
    assert is_sealed(stored) and created["secret"] not in str(stored)
    listed = await api.gql("{ webhooks { ... on WebhookList { items { id url state } } } }")
    assert created["secret"] not in str(listed)
    assert listed["data"]["webhooks"]["items"][0]["url"] == created["webhook"]["url"]
    # audited (and fed), never with the secret; the webhook starts after its own creation
    hook_id = created["webhook"]["id"]
    await api.gql("mutation($id: Int!) { deleteWebhook(id: $id) { __typename } }", {"id": hook_id})
    audit = await api.gql("{ auditLog { ... on AuditLog { entries { action key new } } } }")
    entries = audit["data"]["auditLog"]["entries"][:2]
    assert [(e["action"], e["key"]) for e in entries] == [
        ("delete_webhook", f"webhook:{hook_id}"),
        ("create_webhook", f"webhook:{hook_id}"),
    ]
    assert entries[1]["new"]["url"] == got.url and created["secret"] not in str(audit)
    fed = await services.feed.since(0)
    assert [(e.action, e.tenant, e.keys) for e in fed[-2:]] == [
        ("create_webhook", None, ()),
        ("delete_webhook", None, ()),
    ]
    assert created["webhook"]["cursor"] == fed[-2].sequence


async def test_changes_arrive_in_feed_order_filtered_even_across_a_retry(
    api, services, tenant, private_allowed
):
    # the second change of acme fails once: the third must not overtake it
    async with receiver(script=[200, 500]) as got:
        created = await create(api, got.url, events=["set"], tenants=[tenant])
        hook = created["webhook"]
        async with delivering(services.webhooks):
            for value in (41, 42, 43, 44):
                await set_due(api, tenant, value)
                await set_due(api, "other", value)
            await api.gql(
                """mutation { resetSetting(input: {tenant: "acme",
                   key: "billing.invoice.due_days"}) { __typename } }"""
            )
            await got.wait_for(4)
            await asyncio.sleep(0.3)
    expected = [
        e.sequence
        for e in await services.feed.since(hook["cursor"], tenants=[tenant])
        if e.action == "set"
    ]
    assert len(expected) == 4
    assert [r.json["sequence"] for r in got.delivered] == expected
    assert [r.json["sequence"] for r in got.requests] == [
        expected[0],
        expected[1],
        expected[1],
        expected[2],
        expected[3],
    ]
    assert {r.json["tenant"] for r in got.requests} == {tenant}


async def test_a_dead_receiver_never_holds_a_write(api, services, tenant, private_allowed):
    async with receiver() as got:
        got.open.clear()  # accepts connections, never answers
        created = await create(api, got.url)
        async with delivering(services.webhooks, timeout=60):
            await set_due(api, tenant, 45)
            await got.waiting(1)
            # the receiver holds the first delivery: writes and reads go on
            for value in (46, 47, 48):
                await set_due(api, tenant, value)
            settings = await api.gql(
                'query { settings(tenant: "acme", keys: ["billing.invoice.due_days"]) {'
                " ... on Settings { items { value } } } }"
            )
            assert settings["data"]["settings"]["items"][0]["value"] == 48
            assert got.in_flight == 1 and got.requests == []
            got.open.set()
            await got.wait_for(4)
    assert [r.json["sequence"] for r in got.delivered] == sorted(
        r.json["sequence"] for r in got.delivered
    )
    assert created["webhook"]["cursor"] < got.delivered[0].json["sequence"]


async def test_a_receiver_that_times_out_is_logged_and_retried(
    api, services, tenant, private_allowed
):
    async with receiver() as got:
        got.open.clear()
        hook = (await create(api, got.url))["webhook"]
        async with delivering(services.webhooks, timeout=0.2, backoff=0.2):
            await set_due(api, tenant, 45)
            await got.waiting(1)
            for _ in range(100):
                if await services.webhooks.deliveries(ADMIN, hook["id"]):
                    break
                await asyncio.sleep(0.05)
            got.open.set()
            for _ in range(200):
                attempts = await services.webhooks.deliveries(ADMIN, hook["id"])
                if attempts[0].outcome == "delivered":
                    break
                await asyncio.sleep(0.05)
    attempts = list(reversed(await services.webhooks.deliveries(ADMIN, hook["id"])))
    assert attempts[0].error == "timed out after 0.2s" and attempts[0].status_code is None
    assert attempts[-1].outcome == "delivered"


async def test_refused_connections_pause_the_webhook_after_the_last_attempt(
    api, services, tenant, private_allowed
):
    from tests.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}/hook"
    hook = (await create(api, dead))["webhook"]
    async with delivering(services.webhooks, backoff=0.01, max_attempts=5):
        await set_due(api, tenant, 45)
        await set_due(api, tenant, 46)
        for _ in range(200):
            (listed,) = await services.webhooks.list_all(ADMIN)
            if listed.state == "paused":
                break
            await asyncio.sleep(0.05)
    assert listed.state == "paused" and listed.attempts == 5
    assert listed.cursor == hook["cursor"]  # nothing skipped
    assert "resumeWebhook" in (listed.paused_reason or "")
    attempts = list(reversed(await services.webhooks.deliveries(ADMIN, hook["id"])))
    assert [a.attempt for a in attempts] == [1, 2, 3, 4, 5]
    assert [a.outcome for a in attempts] == ["retrying"] * 4 + ["failed"]
    assert all("ConnectError" in (a.error or "") for a in attempts)
    assert len({a.sequence for a in attempts}) == 1  # the second change was never tried
    resumed = await api.gql(
        "mutation($id: Int!) { resumeWebhook(id: $id) { ... on Webhook { state attempts } } }",
        {"id": hook["id"]},
    )
    assert resumed["data"]["resumeWebhook"] == {"state": "active", "attempts": 0}


REFUSED_ALWAYS = [
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://169.254.10.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://0.0.0.0:8080/", "not a unicast"),
    ("ftp://example.com/", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("http://user:pw@example.com/", "credentials"),
    ("http:///nohost", "no host"),
]
REFUSED_PRIVATE = [
    ("http://127.0.0.1:9/", "loopback"),
    ("http://localhost:9/", "loopback"),
    ("http://[::1]:9/", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://192.168.0.10/", "private"),
    ("http://172.20.0.1/", "private"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED_ALWAYS + REFUSED_PRIVATE)
async def test_unsafe_urls_are_refused_at_creation(api, services, monkeypatch, url, why):
    monkeypatch.delenv(rules.ALLOW_PRIVATE_ENV, raising=False)
    created = await create(api, url)
    assert created["__typename"] == "InvalidInput" and created["field"] == "url", created
    assert why in created["message"]
    assert await services.webhooks.list_all(ADMIN) == []


@pytest.mark.parametrize(("url", "why"), REFUSED_ALWAYS)
async def test_link_local_and_metadata_stay_refused_when_private_is_allowed(
    api, services, private_allowed, url, why
):
    created = await create(api, url)
    assert created["__typename"] == "InvalidInput" and why in created["message"], created
    assert await services.webhooks.list_all(ADMIN) == []


async def test_a_name_that_moves_is_refused_at_delivery(services, tenant):
    """The receiver's name resolved to an allowed address at creation, then to the
    metadata address: the attempt is refused and logged, nothing is sent."""
    answers = {"hooks.example.test": ["127.0.0.1"]}

    async def dns(host: str, _port: int) -> list[str]:
        return answers[host]

    service = WebhookService(services.sessions, services.secrets, resolver=dns)
    async with receiver() as got:
        port = got.url.split(":")[2].split("/")[0]
        info, _ = await service.create(
            ADMIN, f"http://hooks.example.test:{port}/", private_allowed=True
        )
        answers["hooks.example.test"] = ["169.254.169.254"]
        deliverer = WebhookDeliverer(
            service, DeliveryOptions(private_allowed=True, backoff=0.01), resolver=dns
        )
        await services.settings.set(ADMIN, tenant, DUE, 45)
        async with deliverer.client() as client:
            await deliverer.deliver_due(client)
            answers["hooks.example.test"] = ["127.0.0.1", "fe80::1"]
            await asyncio.sleep(0.02)
            await deliverer.deliver_due(client)
            answers["hooks.example.test"] = ["127.0.0.1"]
            await asyncio.sleep(0.05)
            await deliverer.deliver_due(client)
        assert len(got.requests) == 1
        assert got.requests[0].headers["host"] == f"hooks.example.test:{port}"
    attempts = list(reversed(await service.deliveries(ADMIN, info.id)))
    assert [a.outcome for a in attempts] == ["retrying", "retrying", "delivered"]
    assert "169.254.169.254 is a cloud metadata address" in (attempts[0].error or "")
    assert "fe80::1 is a link-local address" in (attempts[1].error or "")
    assert all(a.error.startswith("refused: ") for a in attempts[:2])


async def test_without_a_secret_key_create_webhook_is_refused_with_the_reason(
    api, services, client_with, private_allowed
):
    from api.http.app import AppOptions

    keyless = replace(services, webhooks=WebhookService(services.sessions, SecretBox()))
    with pytest.raises(Exception) as err:
        await keyless.webhooks.create(ADMIN, "http://127.0.0.1:9/")
    assert "TAILOR_SECRET_KEY" in str(err.value)
    # the same refusal, typed, through GraphQL
    import httpx

    from api.http.app import create_app
    from plugins.product import load_product
    from tests.conftest import fresh_runtime

    plugins = fresh_runtime(load_product())
    app = create_app(keyless, AppOptions(plugins=plugins))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/graphql",
                json={"query": CREATE, "variables": {"url": "http://127.0.0.1:9/"}},
                headers={"Authorization": f"Bearer {api.tokens['admin']}"},
            )
    finally:
        await plugins.close()
    result = response.json()["data"]["createWebhook"]
    assert result["__typename"] == "InvalidInput" and result["field"] == "TAILOR_SECRET_KEY"
    assert "webhook signing secrets are stored encrypted" in result["message"]
    assert await services.webhooks.list_all(ADMIN) == []


@pytest.mark.parametrize("role", ["release_manager", "consultant", "app", "host"])
async def test_only_admins_see_or_touch_webhooks(api, services, role, private_allowed):
    async with receiver() as got:
        info, _ = await services.webhooks.create(ADMIN, got.url)
        created = await create(api, got.url, token=role)
    assert created["__typename"] == "PermissionDenied"
    for query, variables in (
        ("{ webhooks { __typename ... on Error { code } } }", {}),
        (DELIVERIES, {"id": info.id}),
        (
            "mutation($id: Int!) { deleteWebhook(id: $id) { __typename ... on Error { code } } }",
            {"id": info.id},
        ),
        (
            "mutation($id: Int!) { resumeWebhook(id: $id) { __typename ... on Error { code } } }",
            {"id": info.id},
        ),
    ):
        body = await api.gql(query, variables, token=role)
        (answer,) = body["data"].values()
        assert answer["__typename"] == "PermissionDenied", (query, answer)
        assert got.url not in str(body)
    assert len(await services.webhooks.list_all(ADMIN)) == 1


async def test_delete_and_unknown_ids(api, services, private_allowed):
    async with receiver() as got:
        info, _ = await services.webhooks.create(ADMIN, got.url)
    gone = await api.gql(
        "mutation($id: Int!) { deleteWebhook(id: $id) { __typename ... on Webhook { id } } }",
        {"id": info.id},
    )
    assert gone["data"]["deleteWebhook"] == {"__typename": "Webhook", "id": info.id}
    for query in (DELIVERIES, "mutation($id: Int!) { deleteWebhook(id: $id) { __typename } }"):
        body = await api.gql(query, {"id": info.id})
        assert next(iter(body["data"].values()))["__typename"] == "NotFound"


async def test_unknown_tenants_and_bad_events_are_refused(api, services, private_allowed):
    async with receiver() as got:
        missing = await create(api, got.url, tenants=["acme", "nobody"])
        bad = await create(api, got.url, events=["Set Setting"])
    assert missing["__typename"] == "NotFound" and "nobody" in missing["message"]
    assert bad["__typename"] == "InvalidInput" and bad["field"] == "events"
    assert await services.webhooks.list_all(ADMIN) == []


async def test_two_workers_never_deliver_to_one_webhook_at_once(services, tenant, private_allowed):
    async with receiver() as got:
        got.delay = 0.05
        info, _ = await services.webhooks.create(ADMIN, got.url)
        for value in range(40, 48):
            await services.settings.set(ADMIN, tenant, DUE, value)
        async with delivering(services.webhooks), delivering(services.webhooks):
            await got.wait_for(8)
            await logged(services.webhooks, info.id, 8)
    assert got.most_in_flight == 1
    sequences = [r.json["sequence"] for r in got.requests]
    assert sequences == sorted(set(sequences)) and len(sequences) == 8
    assert (await services.webhooks.list_all(ADMIN))[0].cursor == sequences[-1]
    assert info.cursor < sequences[0]


async def test_the_delivery_log_is_pruned_after_its_retention(services, tenant, private_allowed):
    from datetime import timedelta

    from sqlalchemy import update

    from core.model.clock import utcnow
    from core.store.models import WebhookAttemptRow

    async with receiver() as got:
        info, _ = await services.webhooks.create(ADMIN, got.url)
        async with delivering(services.webhooks):
            await services.settings.set(ADMIN, tenant, DUE, 45)
            await services.settings.set(ADMIN, tenant, DUE, 46)
            await got.wait_for(2)
            await logged(services.webhooks, info.id, 2)
    old, new = list(reversed(await services.webhooks.deliveries(ADMIN, info.id)))
    async with services.sessions.begin() as session:
        await session.execute(
            update(WebhookAttemptRow)
            .where(WebhookAttemptRow.id == old.id)
            .values(at=utcnow() - timedelta(days=rules.DEFAULT_RETENTION_DAYS + 1))
        )
    assert await services.webhooks.prune() == 1
    assert [a.id for a in await services.webhooks.deliveries(ADMIN, info.id)] == [new.id]


async def test_webhooks_and_deliveries_cost_constant_statements(api, services, private_allowed):
    from core.store.db import count_statements

    lists = "{ webhooks { ... on WebhookList { items { id url state } } } }"
    async with receiver() as got:
        first, _ = await services.webhooks.create(ADMIN, got.url, tenants=["acme"])
        await api.gql(lists)  # the token, looked up once
        with count_statements(services.engine, keep=True) as one:
            await api.gql(lists)
            await api.gql(DELIVERIES, {"id": first.id})
        for _ in range(4):
            await services.webhooks.create(ADMIN, got.url, tenants=["acme"])
        async with delivering(services.webhooks):
            for value in (41, 42, 43):
                await services.settings.set(ADMIN, "acme", DUE, value)
            await got.wait_for(15)
            for hook in await services.webhooks.list_all(ADMIN):
                await logged(services.webhooks, hook.id, 3)
        await api.gql(lists)  # the token, looked up again if its cache ran out
        with count_statements(services.engine, keep=True) as five:
            body = await api.gql(lists)
            log = await api.gql(DELIVERIES, {"id": first.id})
    assert len(body["data"]["webhooks"]["items"]) == 5
    assert len(log["data"]["webhookDeliveries"]["items"]) == 3
    # one statement a request (the token is known by then), whatever the number of
    # webhooks or attempts; an empty log takes a second: is there such a webhook?
    assert (five.count, one.count) == (2, 3), (five.statements, one.statements)


async def test_redirects_are_not_followed_and_a_long_backlog_is_handed_on(
    services, tenant, private_allowed
):
    async with receiver(script=[302]) as got:
        info, _ = await services.webhooks.create(ADMIN, got.url)
        for value in range(40, 45):
            await services.settings.set(ADMIN, tenant, DUE, value)
        # two changes a lease: the backlog goes on in later turns, never stuck
        async with delivering(services.webhooks, batch=2):
            await got.wait_for(5, limit=10)
            await logged(services.webhooks, info.id, 5)
    attempts = list(reversed(await services.webhooks.deliveries(ADMIN, info.id)))
    assert attempts[0].status_code == 302 and "redirects are not followed" in (
        attempts[0].error or ""
    )
    assert [a.outcome for a in attempts] == ["retrying"] + ["delivered"] * 5
    assert len(got.requests) == 6 and all(r.path.startswith("/hooks/") for r in got.requests)


async def test_an_ipv6_receiver_gets_its_host_header(services, tenant, private_allowed):
    async with receiver(host="::1") as got:
        info, _ = await services.webhooks.create(ADMIN, got.url)
        async with delivering(services.webhooks):
            await services.settings.set(ADMIN, tenant, DUE, 45)
            await got.wait_for(1)
    port = got.url.split("]:")[1].split("/")[0]
    assert got.delivered[0].headers["host"] == f"[::1]:{port}"
    assert info.url.startswith("http://[::1]:")


async def test_tenant_notices_cost_nothing_while_no_webhook_is_active(
    services, tenant, private_allowed
):
    """Every worker hears every commit's notice: while no webhook is active, one
    naming a tenant costs the deliverer no statement; a webhook's creation is a
    notice of no tenant, and wakes it."""
    deliverer = WebhookDeliverer(
        services.webhooks, DeliveryOptions(poll=30, backoff=0.05, private_allowed=True)
    )
    background = Background()
    background.run("deliver webhooks", deliverer.run)
    background.start()
    try:
        await asyncio.sleep(0.3)  # its first turn: nothing is active
        tenant_id = await services.feed.check_watch(ADMIN, tenant, None)
        with count_statements(services.engine) as counter:
            deliverer.wake(feed.feed_topic({tenant_id}))
            await asyncio.sleep(0.3)
        assert counter.count == 0
        async with receiver() as got:
            info, _ = await services.webhooks.create(ADMIN, got.url, private_allowed=True)
            deliverer.wake(feed.FEED)  # the creation's notice (no tenant)
            await asyncio.sleep(0.3)
            await services.settings.set(ADMIN, tenant, DUE, 45)
            deliverer.wake(feed.feed_topic({tenant_id}))
            await logged(services.webhooks, info.id, 1)
            assert got.requests
    finally:
        await background.stop()
