"""Delivering the change feed to webhooks: a background job of every node.

:class:`WebhookDeliverer` runs for as long as the server does
(:meth:`api.http.background.Background.run`). It wakes when this process commits
a change (:func:`core.store.feed.on_commit`), when another worker does (the
``feed`` topic on the invalidation channel) and every :attr:`poll` seconds (for
retries that come due). Each turn it leases at most :attr:`concurrency` webhooks
that have changes to deliver (:meth:`core.store.webhooks.WebhookService.claim`)
and delivers each one's changes in feed order, one at a time, concurrently
across webhooks. A request or a write never waits for it: it holds no database
connection while a receiver answers, and a receiver has
:data:`~core.model.webhooks.TIMEOUT_SECONDS` to answer.

Each attempt resolves the URL's host again and checks every address
(:func:`core.model.webhooks.checked_address`), then connects to the checked
address (the host name still in ``Host`` and, for https, in SNI and the
certificate check). Redirects are never followed: a 3xx is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
import uuid
from dataclasses import dataclass

import httpx

from core.model import webhooks as rules
from core.model.errors import InvalidInputError
from core.store.feed import feed_tenants
from core.store.webhooks import Pending, WebhookService

log = logging.getLogger("tailor.webhooks")


@dataclass(frozen=True)
class DeliveryOptions:
    #: seconds between turns when nothing wakes the deliverer (retries come due)
    poll: float = 1.0
    #: webhooks delivered to at once by one node
    concurrency: int = 8
    #: seconds a receiver has to connect and answer
    timeout: float = rules.TIMEOUT_SECONDS
    #: seconds before the second attempt (doubling after each failure)
    backoff: float = rules.BACKOFF_SECONDS
    max_attempts: int = rules.MAX_ATTEMPTS
    #: changes delivered to one webhook per lease
    batch: int = 100
    #: None: TAILOR_WEBHOOK_ALLOW_PRIVATE
    private_allowed: bool | None = None

    @property
    def lease(self) -> float:
        """Seconds a worker holds a webhook: longer than any one attempt."""
        return 2 * self.timeout + 10.0


class WebhookDeliverer:
    def __init__(
        self,
        service: WebhookService,
        options: DeliveryOptions | None = None,
        *,
        resolver: rules.Resolver = rules.system_resolver,
    ) -> None:
        self.service = service
        self.options = options or DeliveryOptions()
        self.owner = uuid.uuid4().hex
        self._resolver = resolver
        self._wake = asyncio.Event()
        #: no webhook was active at the last empty turn
        self._none_active = False
        self._private = (
            rules.allow_private()
            if self.options.private_allowed is None
            else self.options.private_allowed
        )

    def wake(self, topic: str | None = None) -> None:
        """Deliver now (a change was committed; ``topic``: the feed notice); safe
        to call from any callback. A notice of one tenant's change is let pass
        while no webhook is active (a webhook's creation or resumption is a notice
        of no tenant, and wakes it: :func:`core.store.feed.feed_topic`)."""
        if self._none_active and topic is not None and feed_tenants(topic) is not None:
            return
        self._wake.set()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.options.timeout),
            # no connection is reused: each attempt connects to the address it
            # checked, under the host name (SNI) of its own webhook
            limits=httpx.Limits(
                max_connections=self.options.concurrency, max_keepalive_connections=0
            ),
        )

    async def run(self) -> None:
        """Deliver until cancelled."""
        async with self.client() as client:
            while True:
                self._wake.clear()
                busy = await self.deliver_due(client)
                if busy:
                    continue  # as many were due as may run at once: more may be
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll)

    async def deliver_due(self, client: httpx.AsyncClient) -> bool:
        """One turn: lease the due webhooks and deliver to them; whether the turn
        was full (more may be due)."""
        o = self.options
        ids = await self.service.claim(self.owner, o.lease, o.concurrency)
        if ids:
            self._none_active = False
            await asyncio.gather(*(self._drain(client, webhook) for webhook in ids))
        else:
            self._none_active = not await self.service.any_active()
        return len(ids) >= o.concurrency

    async def _drain(self, client: httpx.AsyncClient, webhook: int) -> None:
        try:
            for _ in range(self.options.batch):
                pending = await self.service.next_pending(webhook, self.owner)
                if pending is None or not await self.attempt(client, pending):
                    return
            # a long backlog: let the next turn (any worker) go on with it
            await self.service.release(webhook, self.owner)
        except Exception:  # one webhook's trouble never stops the others
            log.exception("delivering to webhook %s failed; its lease ends by itself", webhook)

    async def attempt(self, client: httpx.AsyncClient, pending: Pending) -> bool:
        """Post ``pending`` once and record the attempt; whether it was delivered."""
        status, error, latency = await self.post(client, pending)
        o = self.options
        return await self.service.record(
            self.owner,
            pending,
            status_code=status,
            error=error,
            latency_ms=latency,
            lease_seconds=o.lease,
            backoff_seconds=o.backoff,
            max_attempts=o.max_attempts,
        )

    async def post(
        self, client: httpx.AsyncClient, pending: Pending
    ) -> tuple[int | None, str | None, float]:
        """(status code, error or None when delivered, milliseconds)."""
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            target = rules.parse_url(pending.url)
            address = await rules.checked_address(
                target, private_allowed=self._private, resolver=self._resolver
            )
        except InvalidInputError as exc:
            return None, f"refused: {exc.message}", elapsed()
        payload = pending.body()
        timestamp = int(time.time())
        host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        default_port = 443 if target.scheme == "https" else 80
        name = f"[{target.host}]" if ":" in target.host else target.host
        host_header = name if target.port == default_port else f"{name}:{target.port}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = client.build_request(
            "POST",
            f"{target.scheme}://{host}:{target.port}{target.path}",
            content=payload,
            headers={
                "Host": host_header,
                "Content-Type": "application/json",
                "User-Agent": "Tailor-Webhooks/1",
                rules.SIGNATURE_HEADER: rules.signature(pending.secret, timestamp, payload),
                rules.DELIVERY_HEADER: pending.delivery,
            },
            extensions=extensions,
        )
        try:
            # the whole exchange is bounded (a receiver dripping its headers too);
            # the answer's body is never read
            async with asyncio.timeout(self.options.timeout):
                response = await client.send(request, stream=True)
                await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return None, f"timed out after {self.options.timeout:g}s", elapsed()
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}".rstrip(": "), elapsed()
        if 200 <= response.status_code < 300:
            return response.status_code, None, elapsed()
        if 300 <= response.status_code < 400:
            return (
                response.status_code,
                f"HTTP {response.status_code}: redirects are not followed; give the final URL",
                elapsed(),
            )
        return response.status_code, f"HTTP {response.status_code}", elapsed()
