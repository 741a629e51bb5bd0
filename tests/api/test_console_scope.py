"""One rule for what a principal sees of a customization (``visible_customization``):
the console's customization page, GraphQL and the CLI's JSON agree on a shared
customization's tenants and last error, and a scoped caller cannot tell a name
published only for other tenants from a name that does not exist."""

from __future__ import annotations

import json

import pytest_asyncio
from typer.testing import CliRunner

from api.cli.main import app
from core.model.auth import Principal, Role
from core.model.clock import utcnow
from core.model.customizations import (
    CustomizationManifest,
    Health,
    HealthDelta,
    HookUse,
    Registration,
    visible_customization,
)
from tests.api.test_console import new_client, sign_in
from tests.conftest import ADMIN

#: in the last error: a detail of the "other" tenant's request
LEAK = "KeyError: 'other-customer-4711'"

QUERY = """{ customizations { ... on CustomizationList { items {
  name tenants enabledFor pins { tenant version } health { failures lastError } } } } }"""


def _registration(name: str, tenants: tuple[str, ...]) -> Registration:
    return Registration(
        CustomizationManifest(name, "1.0", tenants, ">=1.0"),
        (HookUse("tailor_validate_setting", ("key", "value"), "fp"),),
        (),
        package=name.replace("-", "_"),
    )


async def _publish(services, name: str, tenants: tuple[str, ...]) -> None:
    await services.registry.publish(ADMIN, _registration(name, tenants))
    for slug in tenants:
        await services.registry.set_enabled(ADMIN, slug, name, True)


@pytest_asyncio.fixture
async def shared(api, services):
    """ "shared-guard" for acme and other, enabled for both, its last error from
    other's request; "other-only" made for other alone."""
    await _publish(services, "shared-guard", ("acme", "other"))
    await _publish(services, "other-only", ("other",))
    await services.registry.record_health([HealthDelta("shared-guard", 3, 1, LEAK, utcnow())])
    return api


async def test_the_console_shows_a_shared_customization_as_graphql_does(shared, services):
    async with new_client(services) as client:
        await sign_in(client, shared.tokens["consultant"])  # scoped to acme
        page = await client.get("/console/customizations/shared-guard")
        others = [await client.get(p) for p in ("/console/fleet", "/console/tenants/acme")]
    for other in others:  # the fleet's and the tenant's customization rows
        assert other.status_code == 200 and "shared-guard" in other.text
        assert "other-customer-4711" not in other.text and "acme, other" not in other.text
    assert page.status_code == 200
    assert "other" not in page.text.replace("other-only", "")  # no slug, no error of it
    assert "other-customer-4711" not in page.text
    assert "1 failure(s)" in page.text and "last error" not in page.text
    assert "shared-guard@1.0" in page.text  # its own tenant, enabled, with its pin

    graphql = await shared.gql(QUERY, token="consultant")
    (item,) = [i for i in graphql["data"]["customizations"]["items"] if i["name"] == "shared-guard"]
    assert item["tenants"] == ["acme"] and item["enabledFor"] == ["acme"]
    assert item["pins"] == [{"tenant": "acme", "version": "1.0"}]
    assert item["health"] == {"failures": 1, "lastError": None}

    async with new_client(services) as client:
        await sign_in(client, shared.tokens["admin"])
        page = await client.get("/console/customizations/shared-guard")
    assert page.status_code == 200
    assert "other-customer-4711" in page.text and "/console/tenants/other" in page.text


async def test_not_found_reads_the_same_whether_the_name_exists_elsewhere_or_not(shared, services):
    """A name published only for another tenant, and one never published: the
    same 404 page, byte for byte, in one consultant's session and in another's."""
    second = await services.tokens.create(Role.CONSULTANT, ("acme",), label="second")
    bodies: list[dict[str, str]] = []
    for token in (shared.tokens["consultant"], second[0]):
        async with new_client(services) as client:
            await sign_in(client, token)
            answers = {}
            for name in ("other-only", "never-publ"):
                page = await client.get(f"/console/customizations/{name}")
                assert page.status_code == 404, page.text
                answers[name] = page.text.replace(name, "NAME")
            bodies.append(answers)
    for answers in bodies:
        assert answers["other-only"] == answers["never-publ"]
        assert "customization &#39;NAME&#39; not found" in answers["other-only"]
    # and GraphQL's versions of it say the same (the registry decides both)
    for name in ("other-only", "never-publ"):
        refused = await shared.gql(
            """mutation($n: String!) { yankCustomizationVersion(name: $n, version: "1.0",
                 reason: "x") { ... on Error { code message } } }""",
            {"n": name},
            token="consultant",
        )
        error = refused["data"]["yankCustomizationVersion"]
        assert error["code"] == "NOT_FOUND"
        assert error["message"].replace(name, "NAME") == (
            "customization 'NAME' not found; publish it first ('tailor customization publish PATH')"
        )


def test_the_visibility_rule_for_each_role():
    """The rule itself: a scoped principal loses the other tenants and the last
    error; an operator keeps everything; a customization of its tenants alone
    keeps its last error for the consultant too."""
    health = Health(3, 1, LEAK, utcnow())
    pins = (("acme", "1.0"), ("other", "1.1"))
    consultant = Principal(Role.CONSULTANT, "c", frozenset({"acme"}))
    seen = visible_customization(consultant, ("acme", "other"), pins, health)
    assert (seen.tenants, seen.pins, seen.enabled_for) == (("acme",), (("acme", "1.0"),), ("acme",))
    assert seen.shared_beyond_scope and seen.health == Health(3, 1)
    own = visible_customization(consultant, ("acme",), pins[:1], health)
    assert own.health == health and not own.shared_beyond_scope
    for operator in (Principal.system("cli"), Principal(Role.RELEASE_MANAGER, "rm")):
        everything = visible_customization(operator, ("acme", "other"), pins, health)
        assert everything.tenants == ("acme", "other") and everything.pins == pins
        assert everything.health == health


@pytest_asyncio.fixture
async def shared_db(api, services, database_url, monkeypatch):
    await _publish(services, "shared-guard", ("acme", "other"))
    await services.registry.record_health([HealthDelta("shared-guard", 3, 1, LEAK, utcnow())])
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    return services


def test_the_cli_json_is_the_operators_view(shared_db):
    """The CLI acts as the operator: every tenant, every pin and the last error,
    through the same rule."""
    listed = CliRunner().invoke(app, ["customization", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "shared-guard")
    assert row["tenants"] == ["acme", "other"] and row["enabled_for"] == ["acme", "other"]
    assert row["pins"] == {"acme": "1.0", "other": "1.0"}
    assert row["last_error"] == LEAK and row["failures"] == 1
