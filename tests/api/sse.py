"""A small GraphQL-over-SSE and graphql-transport-ws client for tests and benches:
what a client of ``settingsChanged`` does, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

SUBSCRIBE = """subscription($tenant: String!, $environment: String, $after: Int) {
  settingsChanged(tenant: $tenant, environment: $environment, after: $after) {
    __typename
    ... on ChangeEvent { sequence tenant environment keys source actor at }
    ... on Error { code message }
  }
}"""

SET = """mutation($tenant: String!, $key: String!, $value: JSON!, $environment: String) {
  setSetting(input: {tenant: $tenant, key: $key, value: $value, environment: $environment}) {
    __typename ... on Error { code message } } }"""


@dataclass
class Event:
    event: str
    id: str | None
    data: Any

    @property
    def payload(self) -> dict[str, Any]:
        """The ``settingsChanged`` result of a ``next`` event."""
        return self.data["data"]["settingsChanged"]


class Stream:
    """The events of one SSE response, read one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, within: float = 5.0) -> Event:
        return await asyncio.wait_for(self._read(), within)

    async def _read(self) -> Event:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if not line:
                if fields:
                    data = fields.get("data") or None
                    return Event(
                        fields.get("event", "message"), fields.get("id"), data and json.loads(data)
                    )
                continue
            if line.startswith(":"):
                continue  # a heartbeat comment
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        raise EOFError("the stream ended")


@contextlib.asynccontextmanager
async def subscribe(
    client: httpx.AsyncClient,
    url: str,
    token: str | None,
    variables: dict[str, Any],
    headers: dict[str, str] | None = None,
    query: str = SUBSCRIBE,
) -> AsyncIterator[Stream]:
    """``settingsChanged`` over SSE (POST, ``Accept: text/event-stream``)."""
    sent = {"Accept": "text/event-stream", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    async with client.stream(
        "POST",
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers=sent,
        timeout=httpx.Timeout(10.0, read=None),
    ) as response:
        yield Stream(response)


async def set_setting(
    client: httpx.AsyncClient, url: str, token: str, value: Any, environment: str | None = None
) -> None:
    response = await client.post(
        f"{url}/graphql",
        json={
            "query": SET,
            "variables": {
                "tenant": "acme",
                "key": "billing.invoice.due_days",
                "value": value,
                "environment": environment,
            },
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["setSetting"]["__typename"] == "SettingChanged", response.text
