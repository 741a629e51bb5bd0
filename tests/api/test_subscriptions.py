"""``settingsChanged`` against a real `tailor serve`, as clients use it: over
server-sent events (GraphQL over SSE, ids and Last-Event-ID) and over
graphql-transport-ws, with the caller's scope, resuming, refusals, a clean end
at shutdown, a write from another process, and (PostgreSQL) across the workers
of `tailor serve --workers 2` within a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.model.auth import Role
from tests.api.sse import SUBSCRIBE, set_setting, subscribe
from tests.conftest import ADMIN
from tests.servers import tailor_serve

DUE = "billing.invoice.due_days"


@pytest.fixture
async def tokens(services, tenant):
    await services.tenants.create(ADMIN, "other", "Other", "2.0")
    made = {}
    for role, scope in (
        (Role.ADMIN, ()),
        (Role.APP, ("acme",)),
        (Role.CONSULTANT, ("acme",)),
        (Role.HOST, ("acme",)),
    ):
        made[role.value], _ = await services.tokens.create(role, scope, label=f"{role.value} t")
    return made


@pytest.fixture
async def server(services, tokens, database_url, tmp_path):
    async with tailor_serve(tmp_path / "server", database_url) as url:
        yield url


async def test_sse_events_filter_carry_ids_and_resume(services, tokens, server):
    admin, app = tokens["admin"], tokens["app"]
    head = await services.feed.head()
    async with (
        httpx.AsyncClient() as client,
        subscribe(
            client, server, app, {"tenant": "acme", "environment": "production", "after": head}
        ) as production,
        subscribe(client, server, app, {"tenant": "acme", "after": head}) as everything,
    ):
        assert production.response.status_code == 200
        assert production.response.headers["content-type"].startswith("text/event-stream")
        started = time.monotonic()
        await set_setting(client, server, admin, 41)
        first = await production.next()
        # in-process (the server's own commit): heard at once
        assert time.monotonic() - started < 1.0
        await set_setting(client, server, admin, 42, "production")
        await set_setting(client, server, admin, 43, "sandbox")
        await services.settings.set(ADMIN, "other", DUE, 50)  # another tenant
        await set_setting(client, server, admin, 44)
        heard = [first, await production.next(), await production.next()]
        everything_heard = [await everything.next() for _ in range(4)]
    fed = [e for e in await services.feed.since(head) if e.tenant == "acme"]
    assert [e.environment for e in fed] == [None, "production", "sandbox", None]
    # the production subscriber: tenant-wide and production, never sandbox
    assert [h.payload["sequence"] for h in heard] == [
        fed[0].sequence,
        fed[1].sequence,
        fed[3].sequence,
    ]
    assert [h.payload["sequence"] for h in everything_heard] == [e.sequence for e in fed]
    for event, change in zip(everything_heard, fed, strict=True):
        assert event.event == "next" and event.id == str(change.sequence)
        assert event.payload == {
            "__typename": "ChangeEvent",
            "sequence": change.sequence,
            "tenant": "acme",
            "environment": change.environment,
            "keys": [DUE],
            "source": "set",
            "actor": "admin t",
            "at": event.payload["at"],
        }
        assert "extensions" not in event.data  # the id travels as the SSE id only

    # resume: Last-Event-ID (what EventSource-like clients send) and after
    async with (
        httpx.AsyncClient() as client,
        subscribe(
            client,
            server,
            app,
            {"tenant": "acme", "environment": "production"},
            headers={"Last-Event-ID": str(fed[1].sequence)},
        ) as resumed,
        subscribe(client, server, app, {"tenant": "acme", "after": fed[0].sequence}) as after,
    ):
        assert (await resumed.next()).id == str(fed[3].sequence)
        assert [(await after.next()).id for _ in range(3)] == [str(e.sequence) for e in fed[1:]]

    # the four streams are counted as requests, not timed (they last as long as
    # they listen): the latency histogram stays about requests
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            text = (
                await client.get(f"{server}/metrics", headers={"Authorization": f"Bearer {admin}"})
            ).text
            counted = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("tailor_http_requests_total{") and 'route="/graphql"' in line
            )
            timed = next(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith('tailor_http_request_duration_seconds_count{route="/graphql"}')
            )
            if counted - timed == 4:
                break
            await asyncio.sleep(0.1)
        assert counted - timed == 4, text


async def terminal(stream) -> dict:
    """The one result of a refused subscription, then the stream completes."""
    event = await stream.next()
    assert event.event == "next", event
    assert (await stream.next()).event == "complete"
    return event.payload


async def test_sse_refusals_are_the_settings_query_s(services, tokens, server):
    app, admin, host = tokens["app"], tokens["admin"], tokens["host"]
    async with httpx.AsyncClient() as client:
        cases = [
            (app, {"tenant": "other"}, {}, "PermissionDenied"),
            (app, {"tenant": "nowhere"}, {}, "PermissionDenied"),
            (host, {"tenant": "acme"}, {}, "PermissionDenied"),
            (admin, {"tenant": "nowhere"}, {}, "NotFound"),
            (app, {"tenant": "acme", "environment": "staging"}, {}, "NotFound"),
            (app, {"tenant": "acme", "after": -1}, {}, "InvalidInput"),
            (app, {"tenant": "acme"}, {"Last-Event-ID": "abc"}, "InvalidInput"),
        ]
        for token, variables, headers, typename in cases:
            async with subscribe(client, server, token, variables, headers) as stream:
                payload = await terminal(stream)
            assert payload["__typename"] == typename, (variables, payload)
            assert "Other" not in json.dumps(payload)

        # no token: 401 before any stream, as JSON
        async with subscribe(client, server, None, {"tenant": "acme"}) as stream:
            assert stream.response.status_code == 401
            body = json.loads(await stream.response.aread())
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        # a subscription over plain JSON: told how to stream it
        response = await client.post(
            f"{server}/graphql",
            json={"query": SUBSCRIBE, "variables": {"tenant": "acme"}},
            headers={"Authorization": f"Bearer {app}"},
        )
        assert response.status_code == 400, response.text
        assert "text/event-stream" in response.json()["errors"][0]["message"]

        # a query over SSE is not a subscription: refused, nothing streamed
        async with subscribe(client, server, app, {}, query="{ tenants { slug } }") as stream:
            event = await stream.next()
            assert event.data["errors"] and "tenants" not in json.dumps(event.data.get("data"))

        # everything else is as before
        plain = await client.post(
            f"{server}/graphql",
            json={"query": f'{{ settings(tenant: "acme", keys: ["{DUE}"]) {{ __typename }} }}'},
            headers={"Authorization": f"Bearer {app}"},
        )
        assert plain.status_code == 200 and plain.headers["content-type"].startswith(
            "application/json"
        )
        assert plain.json() == {"data": {"settings": {"__typename": "Settings"}}}


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/graphql"


async def ws_subscribe(ws, variables: dict, operation: str = "1") -> None:
    await ws.send(
        json.dumps(
            {
                "id": operation,
                "type": "subscribe",
                "payload": {"query": SUBSCRIBE, "variables": variables},
            }
        )
    )


async def receive(ws, within: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), within))


async def test_graphql_transport_ws(services, tokens, server):
    app, admin = tokens["app"], tokens["admin"]
    head = await services.feed.head()
    # the token in connection_init (what browsers do)
    async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {app}"}})
        )
        assert (await receive(ws))["type"] == "connection_ack"
        await ws_subscribe(ws, {"tenant": "acme", "after": head})
        await ws_subscribe(ws, {"tenant": "other"}, operation="2")
        refused = await receive(ws)
        assert (refused["id"], refused["payload"]["data"]["settingsChanged"]["__typename"]) == (
            "2",
            "PermissionDenied",
        )
        assert (await receive(ws)) == {"id": "2", "type": "complete"}
        async with httpx.AsyncClient() as client:
            await set_setting(client, server, admin, 45, "sandbox")
        message = await receive(ws)
        assert message["type"] == "next" and message["id"] == "1"
        change = message["payload"]["data"]["settingsChanged"]
        assert (change["sequence"], change["environment"]) == (head + 1, "sandbox")
        # queries and mutations do not travel over the WebSocket
        await ws.send(
            json.dumps(
                {"id": "3", "type": "subscribe", "payload": {"query": "{ tenants { slug } }"}}
            )
        )
        answer = await receive(ws)
        assert answer["id"] == "3" and answer["type"] == "error", answer

    # the token in the handshake's Authorization header (server-side clients)
    async with websockets.connect(
        ws_url(server),
        subprotocols=["graphql-transport-ws"],
        additional_headers={"Authorization": f"Bearer {admin}"},
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert (await receive(ws))["type"] == "connection_ack"
        await ws_subscribe(ws, {"tenant": "acme", "after": head})
        assert (await receive(ws))["payload"]["data"]["settingsChanged"]["sequence"] == head + 1

    # no token, or a wrong one: closed, nothing served
    async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    with pytest.raises(InvalidStatus) as refused_handshake:
        async with websockets.connect(
            ws_url(server),
            subprotocols=["graphql-transport-ws"],
            additional_headers={"Authorization": "Bearer tlr_wrong"},
        ):
            pass
    assert refused_handshake.value.response.status_code == 403


async def test_a_write_by_another_process_is_heard(services, tokens, server):
    """The test process writes, not the server: on SQLite nothing notifies the
    server, its hub's safety re-read finds it (PostgreSQL: the NOTIFY)."""
    from core.store.feed_hub import FeedHub

    head = await services.feed.head()
    async with (
        httpx.AsyncClient() as client,
        subscribe(client, server, tokens["app"], {"tenant": "acme", "after": head}) as stream,
    ):
        await services.settings.set(ADMIN, "acme", DUE, 46)
        started = time.monotonic()
        event = await stream.next(within=FeedHub.POLL_SECONDS + 2)
        assert time.monotonic() - started < FeedHub.POLL_SECONDS + 1
    assert event.payload["sequence"] == await services.feed.head()


async def test_subscriptions_end_cleanly_when_the_server_stops(
    services, tokens, database_url, tmp_path
):
    started: list[asyncio.subprocess.Process] = []
    async with tailor_serve(tmp_path / "server", database_url, on_start=started.append) as url:
        async with (
            httpx.AsyncClient() as client,
            subscribe(client, url, tokens["app"], {"tenant": "acme"}) as stream,
        ):
            async with websockets.connect(ws_url(url), subprotocols=["graphql-transport-ws"]) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "type": "connection_init",
                            "payload": {"Authorization": f"Bearer {tokens['app']}"},
                        }
                    )
                )
                await receive(ws)
                await ws_subscribe(ws, {"tenant": "acme"})
                await asyncio.sleep(0.5)  # both subscribed
                stopping = time.monotonic()
                started[0].send_signal(signal.SIGTERM)
                assert (await stream.next(within=5)).event == "complete"
                assert (await receive(ws)) == {"id": "1", "type": "complete"}
            await asyncio.wait_for(started[0].wait(), 10)
            assert time.monotonic() - stopping < 5
            # uvicorn ends by re-raising the signal it handled gracefully
            assert started[0].returncode in (0, -signal.SIGTERM)
            log = (tmp_path / "server" / "serve.log").read_text()
            assert "Traceback" not in log and "Cancel" not in log, log


async def test_across_the_workers_of_tailor_serve_within_a_second(
    services, tokens, database_url, is_postgres, tmp_path
):
    """`tailor serve --workers 2` on PostgreSQL: subscribers on several
    connections (the kernel spreads them over both workers), writes through fresh
    connections: every subscriber hears every write within a second."""
    if not is_postgres:
        pytest.skip("several workers need PostgreSQL")
    home = tmp_path / "server"
    async with tailor_serve(home, database_url, args=("--workers", "2")) as url:
        deadline = time.monotonic() + 60
        # uvicorn logs (JSON lines) on stderr: both workers up
        while (home / "serve.err").read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, (home / "serve.err").read_text()
            await asyncio.sleep(0.2)
        head = await services.feed.head()
        clients = [httpx.AsyncClient() for _ in range(6)]
        try:
            streams = []
            async with contextlib.AsyncExitStack() as stack:
                for client in clients:
                    streams.append(
                        await stack.enter_async_context(
                            subscribe(client, url, tokens["app"], {"tenant": "acme", "after": head})
                        )
                    )
                for value in range(41, 47):
                    async with httpx.AsyncClient() as fresh:
                        await set_setting(fresh, url, tokens["admin"], value)
                    written = time.monotonic()
                    sequence = await services.feed.head()
                    for stream in streams:
                        event = await stream.next(within=5)
                        assert event.id == str(sequence)
                    assert time.monotonic() - written < 1.0
        finally:
            for client in clients:
                await client.aclose()


async def test_a_revoked_token_stops_hearing(services, tokens, server):
    """A subscription outlives no revocation: the next change ends its stream
    (``complete``), and reconnecting is refused (401)."""
    from core.store.feed_hub import FeedHub
    from core.store.tokens import TOKEN_CACHE_SECONDS

    secret, _ = await services.tokens.create(Role.APP, ["acme"], label="soon revoked")
    head = await services.feed.head()
    async with (
        httpx.AsyncClient() as client,
        subscribe(client, server, secret, {"tenant": "acme", "after": head}) as stream,
    ):
        await services.settings.set(ADMIN, "acme", DUE, 47)
        assert (await stream.next(within=FeedHub.POLL_SECONDS + 2)).event == "next"
        await services.tokens.revoke(secret)
        await asyncio.sleep(TOKEN_CACHE_SECONDS + 0.5)  # what the server may remember
        await services.settings.set(ADMIN, "acme", DUE, 48)
        assert (await stream.next(within=FeedHub.POLL_SECONDS + 2)).event == "complete"
        async with subscribe(client, server, secret, {"tenant": "acme"}) as again:
            assert again.response.status_code == 401
