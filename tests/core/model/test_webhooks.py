"""Webhook rules as values: which addresses may be called, URLs, event filters,
the signature and the backoff."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core.model import webhooks as rules
from core.model.errors import InvalidInputError


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("169.254.0.1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "not a unicast"),
        ("::", "not a unicast"),
        ("224.0.0.1", "not a unicast"),
        ("ff02::1", "not a unicast"),
        ("255.255.255.255", "not a unicast"),
        ("192.0.2.1", "not a public address"),
    ],
)
def test_never_callable_whatever_the_configuration(address, reason):
    for allowed in (False, True):
        refusal = rules.address_refusal(address, private_allowed=allowed)
        assert refusal is not None and reason in refusal


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.8.9.1", "::1", "10.0.0.1", "172.31.255.1", "192.168.1.1",
     "100.64.0.1", "fd12::1", "::ffff:10.0.0.1"],
)  # fmt: skip
def test_private_and_loopback_only_when_allowed(address):
    refusal = rules.address_refusal(address, private_allowed=False)
    assert refusal is not None and rules.ALLOW_PRIVATE_ENV in refusal
    assert rules.address_refusal(address, private_allowed=True) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_callable(address):
    assert rules.address_refusal(address, private_allowed=False) is None


def test_allow_private_reads_the_environment():
    assert not rules.allow_private({})
    assert not rules.allow_private({rules.ALLOW_PRIVATE_ENV: "0"})
    for on in ("1", "true", "YES", " on "):
        assert rules.allow_private({rules.ALLOW_PRIVATE_ENV: on})


def test_urls_are_taken_apart_or_refused_with_the_reason():
    target = rules.parse_url(" https://Hooks.Example.com/in?a=1 ")
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        443,
        "/in?a=1",
    )
    assert rules.parse_url("http://[::1]:8080").path == "/"
    for bad, why in (
        ("", "http(s) URL"),
        ("gopher://x/", "only http and https"),
        ("//example.com/x", "only http and https"),
        ("http://a:b@example.com/", "credentials"),
        ("http://example.com:99999/", "not a URL"),
        ("http://example.com/#frag", "fragment"),
        ("https:///x", "no host"),
        ("http://example.com/" + "x" * 2000, "at most"),
    ):
        with pytest.raises(InvalidInputError) as err:
            rules.parse_url(bad)
        assert err.value.field == "url" and why in err.value.message, bad


async def test_every_resolved_address_is_checked():
    async def dns(host: str, _port: int) -> list[str]:
        return {"mixed.test": ["93.184.215.14", "169.254.169.254"], "none.test": []}[host]

    target = rules.parse_url("http://mixed.test/")
    with pytest.raises(InvalidInputError, match="metadata"):
        await rules.checked_address(target, private_allowed=True, resolver=dns)
    with pytest.raises(InvalidInputError, match="resolves to no address"):
        await rules.checked_address(
            rules.parse_url("http://none.test/"), private_allowed=True, resolver=dns
        )

    async def unknown(host: str, _port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(InvalidInputError, match="does not resolve"):
        await rules.checked_address(
            rules.parse_url("http://nowhere.test/"), private_allowed=True, resolver=unknown
        )
    # a literal address is checked without any lookup
    literal = rules.parse_url("http://127.0.0.1:9/")
    assert await rules.checked_address(literal, private_allowed=True, resolver=unknown) == (
        "127.0.0.1"
    )


def test_event_filters():
    assert rules.check_events([]) == ()
    assert rules.check_events(["*"]) == ()
    assert rules.check_events(["set", " reset", "set"]) == ("set", "reset")
    with pytest.raises(InvalidInputError) as err:
        rules.check_events(["set", "Setting Changed"])
    assert err.value.field == "events"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"sequence":1}'
    header = rules.signature("whsec_k", 1700000000, body)
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_backoff_doubles():
    assert [rules.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert rules.backoff(3, base=0.5) == 2.0
    assert rules.MAX_ATTEMPTS >= 5


def test_retention_is_read_from_the_environment_or_refused():
    assert rules.retention_days({}) == rules.DEFAULT_RETENTION_DAYS
    assert rules.retention_days({rules.RETENTION_ENV: "3"}) == 3
    with pytest.raises(InvalidInputError) as err:
        rules.retention_days({rules.RETENTION_ENV: "0"})
    assert err.value.field == rules.RETENTION_ENV
