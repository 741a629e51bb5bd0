"""OFREP ``eventStreams`` against a real `tailor serve`, over real HTTP as a
provider uses them (the Python OFREP provider from PyPI evaluates server-side
and reads no event stream; the web provider's use is in
tests/browser/test_ofrep_web_browser.py): the bulk answer's SSE URL carries a
stream ticket, never the token; a change sends ``refetchEvaluation`` within a
second, only for the ticket's tenant; ``Last-Event-ID`` resumes; expired,
altered, other-tenant and revoked-token tickets are refused; CORS as for the
rest of /ofrep/; a revocation ends a stream; SIGTERM ends it cleanly; and
(PostgreSQL) a ticket minted by one node opens a stream on another that hears a
write made through the first."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from api.http.ofrep import BULK_PATH
from api.http.ofrep_stream import STREAM_PATH
from core.model.auth import Role
from core.model.stream_tickets import mint
from core.store.tokens import TOKEN_CACHE_SECONDS, hash_token
from tests.api.sse import Event, Stream, set_setting
from tests.conftest import ADMIN
from tests.servers import start_node, tailor_serve

DUE = "billing.invoice.due_days"
SHOP = "http://shop.example"


@pytest.fixture
async def tokens(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    made = {}
    made["admin"], _ = await services.tokens.create(Role.ADMIN, (), label="admin t")
    made["app"], info = await services.tokens.create(
        Role.APP, ("acme",), label="shop", origins=[SHOP]
    )
    made["app_id"] = info.id
    made["other_app"], _ = await services.tokens.create(
        Role.APP, ("other",), label="other shop", origins=["http://other.example"]
    )
    return made


@pytest.fixture
async def server(services, tokens, database_url, tmp_path):
    async with tailor_serve(tmp_path / "server", database_url) as url:
        yield url


async def evaluate(
    client: httpx.AsyncClient, url: str, token: str, context: dict | None = None, **headers: str
) -> httpx.Response:
    return await client.post(
        f"{url}{BULK_PATH}",
        json={"context": context or {}},
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=10,
    )


async def stream_url(client: httpx.AsyncClient, url: str, token: str, **context: str) -> str:
    """The SSE URL of a bulk evaluation's ``eventStreams``, as a provider joins it
    (``endpoint.requestUri`` on the OFREP base URL's origin)."""
    answer = await evaluate(client, url, token, context)
    assert answer.status_code == 200, answer.text
    (entry,) = answer.json()["eventStreams"]
    assert entry["type"] == "sse" and set(entry) == {"type", "endpoint"}
    uri = entry["endpoint"]["requestUri"]
    assert uri.startswith(f"{STREAM_PATH}?ticket=")
    assert token not in uri and token[4:20] not in uri  # the bearer token stays out
    return f"{url}{uri}"


@contextlib.asynccontextmanager
async def listen(
    client: httpx.AsyncClient, url: str, **headers: str
) -> AsyncIterator[tuple[httpx.Response, Stream]]:
    """GET the stream, as ``EventSource`` does: no Authorization header."""
    async with client.stream(
        "GET",
        url,
        headers={"Accept": "text/event-stream", **headers},
        timeout=httpx.Timeout(10.0, read=None),
    ) as response:
        yield response, Stream(response)


async def refetch(stream: Stream, within: float) -> Event:
    """The next event with data (the opening carries only ``retry``)."""
    deadline = time.monotonic() + within
    while True:
        event = await stream.next(within=max(0.01, deadline - time.monotonic()))
        if event.data is not None:
            return event


async def test_a_change_sends_refetch_evaluation_within_a_second(services, tokens, server):
    async with httpx.AsyncClient() as client:
        first = await evaluate(client, server, tokens["app"], {"environment": "production"})
        etag = first.headers["etag"]
        url = await stream_url(client, server, tokens["app"], environment="production")
        async with listen(client, url) as (response, stream):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            opening = await stream.next(within=5)
            assert opening.data is None  # retry: only
            # another tenant's change is not told; this tenant's is, within a second
            await services.settings.set(ADMIN, "other", DUE, 91)
            await set_setting(client, server, tokens["admin"], 61, environment="production")
            written = time.monotonic()
            event = await refetch(stream, within=5)
            assert time.monotonic() - written < 1.0
            head = await services.feed.head()
            assert event.id == str(head)
            assert event.event == "message"
            assert event.data["type"] == "refetchEvaluation"
            assert abs(event.data["lastModified"] - time.time()) < 60
            # what the provider does then: the bulk evaluation again, conditionally
            again = await evaluate(
                client,
                server,
                tokens["app"],
                {"environment": "production"},
                **{"If-None-Match": etag},
            )
            assert again.status_code == 200
            assert {f["key"]: f for f in again.json()["flags"]}[DUE]["value"] == 61
            unchanged = await evaluate(
                client,
                server,
                tokens["app"],
                {"environment": "production"},
                **{"If-None-Match": again.headers["etag"]},
            )
            assert unchanged.status_code == 304
        # a reconnect with Last-Event-ID gets what it missed
        await services.settings.set(ADMIN, "acme", DUE, 62)
        async with listen(client, url, **{"Last-Event-ID": str(head)}) as (_, resumed):
            missed = await refetch(resumed, within=5)
            assert missed.id == str(await services.feed.head())


def _forge(ticket: str, **changes: object) -> str:
    """The ticket with its payload altered and its MAC kept."""
    encoded, mac = ticket.split(".")
    fields = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    for name, value in changes.items():
        fields[{"token": 1, "tenant": 2, "environment": 3, "expires": 4}[name]] = value
    payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    return f"{payload}.{mac}"


async def test_tickets_are_refused_clearly(services, tokens, server):
    app, app_id = tokens["app"], tokens["app_id"]
    async with httpx.AsyncClient() as client:
        url = await stream_url(client, server, app)
        ticket = url.split("ticket=")[1]

        async def status(target: str, method: str = "GET") -> tuple[int, str]:
            answer = await client.request(method, target, timeout=10)
            return answer.status_code, answer.json()["errorDetails"]

        assert (await status(f"{server}{STREAM_PATH}"))[0] == 401
        assert "no stream ticket" in (await status(f"{server}{STREAM_PATH}"))[1]
        code, details = await status(f"{server}{STREAM_PATH}?ticket=not-a-ticket")
        assert code == 401 and "malformed" in details
        # expired: minted with the token's real key, an expiry in the past
        expired = mint(app_id, hash_token(app), "acme", None, int(time.time()) - 1)
        code, details = await status(f"{server}{STREAM_PATH}?ticket={expired}")
        assert (
            code == 401 and "expired at" in details and "POST /ofrep/v1/evaluate/flags" in details
        )
        # moved to another tenant, or extended, with the MAC kept: not valid
        for forged in (_forge(ticket, tenant="other"), _forge(ticket, expires=2**40)):
            code, details = await status(f"{server}{STREAM_PATH}?ticket={forged}")
            assert code == 401 and "not valid" in details
        # minted for another tenant with the right key: the token may not read it
        foreign = mint(app_id, hash_token(app), "other", None, int(time.time()) + 300)
        code, details = await status(f"{server}{STREAM_PATH}?ticket={foreign}")
        assert code == 403 and "other" in details
        # a tenant's environment that does not exist
        nowhere = mint(app_id, hash_token(app), "acme", "mars", int(time.time()) + 300)
        assert (await status(f"{server}{STREAM_PATH}?ticket={nowhere}"))[0] == 404
        code, details = await status(url, "POST")
        assert code == 405 and "GET" in details
        bad_resume = await client.get(url, headers={"Last-Event-ID": "yesterday"}, timeout=10)
        assert bad_resume.status_code == 400
        assert "Last-Event-ID" in bad_resume.json()["errorDetails"]
        # the token revoked: its tickets are refused
        await services.tokens.revoke(app)
        await asyncio.sleep(TOKEN_CACHE_SECONDS + 0.5)  # what the server may remember
        code, details = await status(url)
        assert code == 401 and "revoked" in details


async def test_the_stream_answers_cross_origin_gets_under_cors(services, tokens, server):
    async with httpx.AsyncClient() as client:
        url = await stream_url(client, server, tokens["app"])
        async with listen(client, url, Origin=SHOP) as (response, _):
            assert response.headers["access-control-allow-origin"] == SHOP
            assert "Origin" in response.headers["vary"]
        # an origin another app token allows, not this ticket's token
        async with listen(client, url, Origin="http://other.example") as (response, _):
            assert response.status_code == 200
            assert "access-control-allow-origin" not in response.headers
        # a refusal is readable by an allowed origin (the app learns why)
        refused = await client.get(f"{server}{STREAM_PATH}?ticket=x.y", headers={"Origin": SHOP})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == SHOP
        # an EventSource reconnecting sends Last-Event-ID: the preflight allows it
        preflight = await client.options(
            f"{server}{STREAM_PATH}",
            headers={
                "Origin": SHOP,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "last-event-id",
            },
        )
        assert preflight.status_code == 204
        assert "Last-Event-ID" in preflight.headers["access-control-allow-headers"]


async def test_a_revoked_token_ends_its_streams(services, tokens, server):
    from core.store.feed_hub import FeedHub

    secret, _ = await services.tokens.create(Role.APP, ["acme"], label="soon revoked")
    async with httpx.AsyncClient() as client:
        url = await stream_url(client, server, secret)
        async with listen(client, url) as (_, stream):
            await stream.next(within=5)  # the opening
            await services.settings.set(ADMIN, "acme", DUE, 47)
            assert (await refetch(stream, within=FeedHub.POLL_SECONDS + 2)).data
            await services.tokens.revoke(secret)
            await asyncio.sleep(TOKEN_CACHE_SECONDS + 0.5)  # what the server may remember
            await services.settings.set(ADMIN, "acme", DUE, 48)
            with pytest.raises(EOFError):
                await stream.next(within=FeedHub.POLL_SECONDS + 2)


async def test_streams_end_cleanly_when_the_server_stops(services, tokens, database_url, tmp_path):
    started: list[asyncio.subprocess.Process] = []
    async with (
        tailor_serve(tmp_path / "server", database_url, on_start=started.append) as url,
        httpx.AsyncClient() as client,
    ):
        target = await stream_url(client, url, tokens["app"])
        async with listen(client, target) as (_, stream):
            await stream.next(within=5)  # the opening: connected
            stopping = time.monotonic()
            started[0].send_signal(signal.SIGTERM)
            with pytest.raises(EOFError):
                await stream.next(within=5)
        await asyncio.wait_for(started[0].wait(), 10)
        assert time.monotonic() - stopping < 5
        assert started[0].returncode in (0, -signal.SIGTERM)
        log = (tmp_path / "server" / "serve.log").read_text()
        assert "Traceback" not in log and "Cancel" not in log, log
        assert "ticket=" not in log  # access lines name the path only


async def test_two_nodes_sharing_only_the_database(
    services, tokens, database_url, is_postgres, tmp_path
):
    """A ticket minted by one node opens a stream on another (they share
    PostgreSQL, nothing else); a write through the first is told by the second
    within a second (the NOTIFY wakes its hub)."""
    if not is_postgres:
        pytest.skip("two nodes hear each other's commits through PostgreSQL")
    first = await start_node(tmp_path / "a", database_url)
    second = await start_node(tmp_path / "b", database_url)
    try:
        async with httpx.AsyncClient() as client:
            target = await stream_url(client, first.url, tokens["app"])
            on_second = target.replace(first.url, second.url)
            async with listen(client, on_second) as (response, stream):
                assert response.status_code == 200
                await stream.next(within=5)
                for value in (71, 72, 73):
                    await set_setting(client, first.url, tokens["admin"], value)
                    written = time.monotonic()
                    event = await refetch(stream, within=5)
                    assert time.monotonic() - written < 1.0
                    assert event.id == str(await services.feed.head())
    finally:
        for node in (first, second):
            with contextlib.suppress(AssertionError):
                await node.stop(limit=10)


async def test_opening_a_stream_costs_constant_statements(services, tokens):
    """Admitting a ticket reads its token once (then from memory for a couple of
    seconds, however many browsers share the token); joining the hub checks the
    tenant: the same statements for the first stream and the tenth."""
    from api.http.ofrep_stream import EventStreams
    from core.store.db import count_statements
    from core.store.feed_hub import FeedHub

    streams = EventStreams(services.tokens, FeedHub(services.feed))
    principal = await services.tokens.authenticate(tokens["app"])
    ticket = streams.ticket_for(principal, f"Bearer {tokens['app']}", "acme", "production")
    assert ticket is not None
    subscriptions = []
    counts = []
    for _ in range(10):
        with count_statements(services.engine) as opened:
            admitted, holder = await streams.admit(ticket)
            subscriptions.append(await streams.subscribe(admitted, holder, None))
        counts.append(opened.count)
    assert holder == principal
    # the first also reads the token and the feed's head (settling what is pending:
    # core.store.feed.settle, up to 3 statements on PostgreSQL); then the tenant's check
    assert counts[0] <= 5 and set(counts[1:]) == {1}, counts
    for subscription in subscriptions:
        subscription.close()
