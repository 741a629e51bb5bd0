"""GraphQL: readiness, releaseDiff, importRelease, upgradeTenant."""

from __future__ import annotations

import pytest_asyncio

from core.model.manifest_io import dumps
from core.store.bootstrap import register_planned_releases
from tests.sample import ACME, V30_PLANNED

READINESS = """
query($target: String!, $tenants: [String!]) {
  readiness(target: $target, tenants: $tenants) {
    __typename
    ... on Readiness {
      target targetStatus
      counts { ready readyWithWarnings blocked total }
      tenants { tenant currentRelease status blockers warnings customizations
        findings { code severity subjectKind subject message action evidence sources owner } }
      unblockPlan { rank subjectKind subject codes blocks blockedTenants unblocksAlone
        unblocksInOrder cumulativeUnblocked }
    }
    ... on Error { code message }
  }
}
"""

UPGRADE = """
mutation($tenant: String!, $target: String!, $force: Boolean! = false, $reason: String) {
  upgradeTenant(tenant: $tenant, target: $target, force: $force, reason: $reason) {
    __typename
    ... on TenantUpgraded { tenant { slug release } fromRelease toRelease forced auditId
      overriddenFindings { code subject } }
    ... on UpgradeBlocked { code message tenantSlug target findings { code subject evidence } }
    ... on Error { code message }
  }
}
"""

IMPORT = """
mutation($m: String!, $f: ManifestFormat! = TOML) {
  importRelease(manifest: $m, format: $f) {
    __typename
    ... on Release { version status settingCount }
    ... on Error { code message }
    ... on InvalidInput { field }
  }
}
"""


@pytest_asyncio.fixture
async def planned_api(api, services, tenant):
    await register_planned_releases(services, ACME)
    await services.settings.set(services_admin(), "other", "tax.rounding.per_line", False)
    return api


def services_admin():
    from tests.conftest import ADMIN

    return ADMIN


async def test_readiness_every_field(planned_api):
    data = (await planned_api.gql(READINESS, {"target": "3.0"}))["data"]["readiness"]
    assert data["__typename"] == "Readiness"
    assert data["counts"] == {"ready": 1, "readyWithWarnings": 0, "blocked": 1, "total": 2}
    other = next(t for t in data["tenants"] if t["tenant"] == "other")
    (finding,) = other["findings"]
    assert finding == {
        "code": "OVERRIDE_INVALID",
        "severity": "blocker",
        "subjectKind": "setting",
        "subject": "tax.rounding.per_line",
        "message": finding["message"],
        "action": finding["action"],
        "evidence": {
            "environment": None,
            "rule": "removed",
            "value": False,
            "replacement": "tax.rounding.mode",
        },
        "sources": ["static"],
        "owner": "",
    }
    (step,) = data["unblockPlan"]
    assert step["blockedTenants"] == ["other"] and step["unblocksAlone"] == 1


async def test_readiness_scope_and_errors(planned_api):
    data = await planned_api.gql(READINESS, {"target": "3.0"}, token="consultant")
    assert [t["tenant"] for t in data["data"]["readiness"]["tenants"]] == ["acme"]
    denied = await planned_api.gql(
        READINESS, {"target": "3.0", "tenants": ["other"]}, token="consultant"
    )
    assert denied["data"]["readiness"]["code"] == "PERMISSION_DENIED"
    app = await planned_api.gql(READINESS, {"target": "3.0"}, token="app")
    assert app["data"]["readiness"]["code"] == "PERMISSION_DENIED"
    unknown = (await planned_api.gql(READINESS, {"target": "7.0"}))["data"]["readiness"]
    assert unknown["code"] == "NOT_FOUND" and "3.0" in unknown["message"]


async def test_upgrade_tenant_refuses_then_forces(planned_api, services):
    planned = (await planned_api.gql(UPGRADE, {"tenant": "other", "target": "3.0"}))["data"][
        "upgradeTenant"
    ]
    assert planned["__typename"] == "InvalidInput" and "planned release" in planned["message"]
    await services.releases.promote("3.0", services_admin())  # the 3.0 code is deployed
    refused = (await planned_api.gql(UPGRADE, {"tenant": "other", "target": "3.0"}))["data"][
        "upgradeTenant"
    ]
    assert refused["__typename"] == "UpgradeBlocked"
    assert refused["findings"][0]["subject"] == "tax.rounding.per_line"
    forced = (
        await planned_api.gql(
            UPGRADE, {"tenant": "other", "target": "3.0", "force": True, "reason": "CAB-7"}
        )
    )["data"]["upgradeTenant"]
    assert forced["__typename"] == "TenantUpgraded"
    assert forced["forced"] and forced["tenant"] == {"slug": "other", "release": "3.0"}
    assert forced["overriddenFindings"] == [
        {"code": "OVERRIDE_INVALID", "subject": "tax.rounding.per_line"}
    ]
    ok = (await planned_api.gql(UPGRADE, {"tenant": "acme", "target": "3.0"}))["data"][
        "upgradeTenant"
    ]
    assert ok["__typename"] == "TenantUpgraded" and not ok["forced"]
    rm = await planned_api.gql(
        UPGRADE, {"tenant": "acme", "target": "3.0"}, token="release_manager"
    )
    assert rm["data"]["upgradeTenant"]["code"] == "PERMISSION_DENIED"


async def test_import_release(api):
    manifest = V30_PLANNED
    text = dumps(manifest).replace('version = "3.0"', 'version = "3.1rc1"')
    done = (await api.gql(IMPORT, {"m": text}, token="release_manager"))["data"]["importRelease"]
    assert done == {
        "__typename": "Release",
        "version": "3.1rc1",
        "status": "planned",
        "settingCount": len(manifest.settings),
    }
    again = (await api.gql(IMPORT, {"m": text}))["data"]["importRelease"]
    assert again["code"] == "ALREADY_EXISTS"
    bad = (await api.gql(IMPORT, {"m": '{"version": "4.0", "extra": 1}', "f": "JSON"}))["data"]
    assert bad["importRelease"]["code"] == "INVALID_INPUT"
    assert "extra" in bad["importRelease"]["message"]
    denied = (await api.gql(IMPORT, {"m": text}, token="consultant"))["data"]["importRelease"]
    assert denied["code"] == "PERMISSION_DENIED"


async def test_release_diff(planned_api):
    data = await planned_api.gql(
        '{ releaseDiff(fromVersion: "2.0", toVersion: "3.0") { ... on ReleaseDiff { '
        "changes { kind name change details breaking } supersedesAdded } } }"
    )
    diff = data["data"]["releaseDiff"]
    renamed = next(c for c in diff["changes"] if c["name"] == "security.sso.metadata_url")
    assert renamed["change"] == "renamed" and renamed["breaking"]
    assert "order-approval-routing" in diff["supersedesAdded"]


REPLACE = """
mutation($m: String!) {
  importRelease(manifest: $m, replace: true) {
    __typename
    ... on ReleaseImported { release { version settingCount } warnings }
    ... on Release { version settingCount }
    ... on Error { code message }
  }
}
"""

DELETE = """
mutation($v: String!) {
  deleteRelease(version: $v) { __typename ... on ReleaseDeleted { version }
    ... on Error { code message } }
}
"""


async def test_replace_warn_and_delete_a_planned_release(planned_api):
    """3.0 is planned: a planned 2.1 that drops a setting 3.0 still defines is
    imported with a warning, replaced, and deleted; a released one is refused."""
    from plugins.catalog import tailor_extension_points

    api = planned_api
    manifest = ACME.manifest("2.0", tailor_extension_points)
    text = dumps(manifest).replace('version = "2.0"', 'version = "2.1"')
    first = (await api.gql(IMPORT, {"m": text}))["data"]["importRelease"]
    assert first["__typename"] == "Release"  # same catalog as 3.0: no contradiction
    dropped = "ui.navigation.compact"
    smaller = type(manifest)(
        **{
            **manifest.__dict__,
            "version": "2.1",
            "settings": tuple(d for d in manifest.settings if d.key != dropped),
        }
    )
    replaced = (await api.gql(REPLACE, {"m": dumps(smaller)}))["data"]["importRelease"]
    assert replaced["__typename"] == "ReleaseImported", replaced
    assert replaced["release"] == {"version": "2.1", "settingCount": len(manifest.settings) - 1}
    assert replaced["warnings"] == [
        f"2.1 drops {dropped} (defined in 2.0), but planned 3.0 still defines it: drop it "
        "there too, or keep it in 2.1"
    ]
    released = dumps(manifest)
    refused = (await api.gql(REPLACE, {"m": released}))["data"]["importRelease"]
    assert refused["code"] == "INVALID_INPUT"
    assert "only planned releases can be replaced" in refused["message"]
    assert (await api.gql(DELETE, {"v": "2.0"}))["data"]["deleteRelease"]["code"] == (
        "INVALID_INPUT"
    )
    gone = (await api.gql(DELETE, {"v": "2.1"}))["data"]["deleteRelease"]
    assert gone == {"__typename": "ReleaseDeleted", "version": "2.1"}
    denied = await api.gql(DELETE, {"v": "3.0"}, token="consultant")
    assert denied["data"]["deleteRelease"]["code"] == "PERMISSION_DENIED"
