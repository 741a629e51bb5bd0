"""Stream tickets as values: what a ticket carries, which key admits it, when it
expires, and clear refusals of anything else (the HTTP side is in
tests/api/test_ofrep_events.py)."""

from __future__ import annotations

import base64

import orjson
import pytest

from core.model.auth import Principal, Role
from core.model.errors import AuthenticationError
from core.model.stream_tickets import (
    MAX_TICKET_LENGTH,
    WINDOW_SECONDS,
    expiry_for,
    mint,
    parse,
    token_id_of,
    verify,
)

KEY = "ab" * 32  # a token's stored hash (hex SHA-256)
OTHER_KEY = "cd" * 32


def test_a_ticket_carries_its_token_tenant_environment_and_expiry():
    text = mint(7, KEY, "acme", "production", 1_800_000_000)
    ticket = parse(text)
    assert (ticket.token_id, ticket.tenant, ticket.environment, ticket.expires) == (
        7,
        "acme",
        "production",
        1_800_000_000,
    )
    verify(ticket, KEY)
    # URL-safe as it is: no padding, no character a query value must escape
    assert "=" not in text and "+" not in text and "/" not in text
    assert parse(mint(7, KEY, "acme", None, 1)).environment is None


def test_only_the_key_of_its_token_admits_it():
    ticket = parse(mint(7, KEY, "acme", None, 1_800_000_000))
    with pytest.raises(AuthenticationError, match="not valid"):
        verify(ticket, OTHER_KEY)


@pytest.mark.parametrize("change", [(1, 8), (2, "other"), (3, "production"), (4, 1_900_000_000)])
def test_a_changed_payload_is_refused(change):
    text = mint(7, KEY, "acme", None, 1_800_000_000)
    encoded, mac = text.split(".")
    fields = orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    index, value = change
    fields[index] = value
    forged = base64.urlsafe_b64encode(orjson.dumps(fields)).rstrip(b"=").decode() + "." + mac
    with pytest.raises(AuthenticationError, match="not valid"):
        verify(parse(forged), KEY)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no-dot",
        "a.b.c",
        "!!!.???",
        base64.urlsafe_b64encode(b"not json").decode() + ".AAAA",
        base64.urlsafe_b64encode(orjson.dumps([2, 7, "acme", None, 1])).decode() + ".AAAA",
        base64.urlsafe_b64encode(orjson.dumps([1, "7", "acme", None, 1])).decode() + ".AAAA",
        base64.urlsafe_b64encode(orjson.dumps({"tenant": "acme"})).decode() + ".AAAA",
        # the right shape, a MAC of the wrong length
        mint(7, KEY, "acme", None, 1).split(".")[0] + ".AAAA",
        "A" * (MAX_TICKET_LENGTH + 1) + ".A",
    ],
)
def test_what_is_no_ticket_is_refused_clearly(text):
    with pytest.raises(AuthenticationError, match=r"malformed.*POST /ofrep/v1/evaluate/flags"):
        parse(text)


def test_expiry_is_one_to_two_windows_and_the_same_within_a_window():
    start = 1_800_000_000 - 1_800_000_000 % WINDOW_SECONDS
    expiries = {expiry_for(start + s) for s in range(0, WINDOW_SECONDS, 7)}
    assert expiries == {start + 2 * WINDOW_SECONDS}
    for moment in (start, start + 1, start + WINDOW_SECONDS - 0.5):
        assert WINDOW_SECONDS <= expiry_for(moment) - moment <= 2 * WINDOW_SECONDS
    assert expiry_for(start + WINDOW_SECONDS) == start + 3 * WINDOW_SECONDS
    ticket = parse(mint(7, KEY, "acme", None, expiry_for(start)))
    assert not ticket.expired(start + 2 * WINDOW_SECONDS - 1)
    assert ticket.expired(start + 2 * WINDOW_SECONDS)


def test_the_token_behind_a_principal():
    assert token_id_of(Principal(role=Role.APP, name="shop", identity="token:42")) == 42
    assert token_id_of(Principal.system()) is None
    assert token_id_of(Principal(role=Role.ADMIN, name="x", identity="session:3")) is None
