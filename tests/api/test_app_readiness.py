"""Operation checks in readiness, through the real parts: apps registered with
their documents and flag keys, readiness for Acme's planned 3.0 over GraphQL, the
CLI report and the console's tenant page; the statements of a run do not grow
with the number of apps and documents."""

from __future__ import annotations

import json

import pytest_asyncio
from typer.testing import CliRunner

from api.cli.main import app as cli
from api.graphql.trusted import split_operations
from core.model.apps import PushedOperation
from core.store.bootstrap import register_planned_releases
from core.store.db import count_statements
from tests.api.test_console import new_client, sign_in
from tests.conftest import ADMIN
from tests.sample import ACME

REMOVED = "orders.numbering.prefix"
RETYPED = "hr.leave.annual_days"
RENAMED = "security.sso.metadata_url"
DOCUMENT = f"""query Start($t: String!) {{
  settings(tenant: $t, keys: ["{REMOVED}", "{RETYPED}", "billing.invoice.due_days"]) {{
    __typename }} }}"""
READINESS = """query { readiness(target: "3.0", tenants: ["acme"]) { __typename
  ... on Readiness { tenants { tenant status findings { id code severity subjectKind subject
    message evidence } } unblockPlan { subjectKind subject } } ... on Error { code message } } }"""
APP_CODES = {
    "APP_SETTING_REMOVED",
    "APP_SETTING_TYPE_CHANGED",
    "APP_SETTING_RENAMED",
    "APP_OPERATION_INVALID",
}


async def add_app(services, name: str, document: str = DOCUMENT, flags=(RENAMED,)) -> None:
    await services.apps.register(ADMIN, name, "acme")
    await services.apps.push_operations(ADMIN, name, split_operations(document))
    await services.apps.push_flags(ADMIN, name, flags)


@pytest_asyncio.fixture
async def apps(api, services, tenant):
    await register_planned_releases(services, ACME)
    await add_app(services, "shop-web")
    # a document stored when it validated, that Tailor's schema no longer has
    gone = PushedOperation("Gone", "query Gone { retiredField }")
    await services.apps.push_operations(ADMIN, "shop-web", [gone])
    return api


def app_findings(tenant: dict) -> dict[str, dict]:
    return {f["code"]: f for f in tenant["findings"] if f["subjectKind"] == "app"}


async def test_graphql_readiness_reports_what_the_apps_ask_for(apps):
    data = (await apps.gql(READINESS, token="consultant"))["data"]["readiness"]
    [acme] = data["tenants"]
    assert acme["status"] == "blocked"
    found = app_findings(acme)
    assert set(found) == APP_CODES
    assert found["APP_SETTING_REMOVED"]["subject"] == f"shop-web/{REMOVED}"
    # the subject names the app and the key; no detail beyond it
    assert found["APP_SETTING_REMOVED"]["id"] == f"APP_SETTING_REMOVED:shop-web/{REMOVED}:@acme"
    assert found["APP_SETTING_TYPE_CHANGED"]["evidence"]["target_type"] == "float"
    renamed = found["APP_SETTING_RENAMED"]
    assert renamed["severity"] == "warning"
    assert "security.sso.discovery_url" in renamed["message"]
    invalid = found["APP_OPERATION_INVALID"]
    assert invalid["severity"] == "blocker" and "retiredField" in invalid["message"]
    assert ("app", f"shop-web/{REMOVED}") in {
        (s["subjectKind"], s["subject"]) for s in data["unblockPlan"]
    }


async def test_statements_do_not_grow_with_apps(apps, services):
    await apps.gql(READINESS)  # warm what is remembered
    with count_statements(services.engine) as one:
        await apps.gql(READINESS)
    for i in range(6):
        await add_app(services, f"app-{i}", DOCUMENT.replace("Start", f"Start{i}"))
    with count_statements(services.engine) as seven:
        body = await apps.gql(READINESS)
    assert len(body["data"]["readiness"]["tenants"][0]["findings"]) > 20
    assert one.count == seven.count


def test_cli_report_shows_them(apps, database_url, monkeypatch):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    result = CliRunner().invoke(
        cli,
        ["readiness", "--target", "3.0", "--tenant", "acme", "--full", "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    text = json.dumps(report)
    for code in APP_CODES:
        assert code in text
    markdown = CliRunner().invoke(
        cli, ["readiness", "--target", "3.0", "--tenant", "acme", "--full", "--format", "markdown"]
    )
    assert f"shop-web/{REMOVED}" in markdown.stdout


async def test_console_tenant_page_shows_them(apps, services):
    async with new_client(services) as client:
        await sign_in(client, apps.tokens["release_manager"])
        page = await client.get("/console/tenants/acme?target=3.0")
    assert page.status_code == 200
    for code in APP_CODES:
        assert code in page.text
    assert "security.sso.discovery_url" in page.text


async def test_one_run_indexes_the_target_once(apps, monkeypatch):
    """The rules and the apps' checks read one index of the target and one history
    of the other releases: each is built once per readiness run."""
    from core.analysis.readiness.releases import History, TargetIndex

    built = {TargetIndex: 0, History: 0}
    for cls in built:

        def counted(self, *args, _cls=cls, _real=cls.__init__, **kwargs):
            built[_cls] += 1
            _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counted)
    data = (await apps.gql(READINESS))["data"]["readiness"]
    [acme] = data["tenants"]
    assert set(app_findings(acme)) == APP_CODES  # the apps were checked, from that index
    assert built == {TargetIndex: 1, History: 1}
