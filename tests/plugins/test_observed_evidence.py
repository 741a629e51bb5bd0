"""Run-time observations reach readiness: a customization whose code hides the
key it reads from static analysis (built at run time) is still reported, with
observed evidence, once the runtime has seen it read the key."""

from __future__ import annotations

from core.store.bootstrap import register_planned_releases
from tests.conftest import ADMIN
from tests.plugins.conftest import publish_enable
from tests.sample import ACME

# the key is assembled at run time from pieces no static analysis joins
# (reversed strings): only running the code reveals it. Planned 3.0 removes it.
SNEAKY = """
PARTS = ["ytiruces", "drowssap", "syad_yripxe"]

@hookimpl
def tailor_resolve_settings(values):
    key = ".".join(part[::-1] for part in PARTS)
    days = values[key] if key in values else None
    return {"billing.invoice.due_days": 30 if days is None else 31}
"""

QUERY = """query($t: String!) { settings(tenant: $t, keys: ["billing.invoice.due_days"]) {
  ... on Settings { items { value source } customizationErrors { message } } } }"""

READINESS = """{ readiness(target: "3.0") { ... on Readiness {
  tenants { tenant status findings { code subject severity sources evidence } } } } }"""


async def test_a_key_only_seen_at_run_time_blocks_with_observed_evidence(
    plugin_api, write_customization, two_tenants, services
):
    acme, _ = two_tenants
    await register_planned_releases(services, ACME)
    write_customization("sneaky", SNEAKY, tenants=(acme,))
    api, runtime = await plugin_api()
    await publish_enable(services, runtime, acme, "sneaky")

    def findings(body: dict) -> list[dict]:
        [row] = [t for t in body["data"]["readiness"]["tenants"] if t["tenant"] == acme]
        return [f for f in row["findings"] if f["code"] == "SETTING_REMOVED"]

    # expected before any call: static analysis does not see the key: no finding
    before = findings(await api.gql(READINESS))
    assert [f for f in before if "security.password.expiry_days" in str(f)] == []

    served = await api.gql(QUERY, {"t": acme})
    assert served["data"]["settings"]["items"] == [{"value": 31, "source": "CUSTOMIZATION:sneaky"}]
    await runtime.flush_health()

    # expected after: a blocker for the key 3.0 removes, from observed evidence
    after = [
        f
        for f in findings(await api.gql(READINESS))
        if "security.password.expiry_days" in str(f["evidence"])
    ]
    assert after, findings(await api.gql(READINESS))
    [finding] = after
    assert finding["severity"] == "blocker"
    assert "observed" in finding["sources"]
    assert "static" not in finding["sources"]


# a scan of every value (looking for blanks) beside one key used by name: the
# scan is recorded once, and only the named key is evidence of use
SCANNER = """
@hookimpl
def tailor_resolve_settings(values):
    blanks = {key for key, value in values.items() if value in (None, "")}
    total = len(values) + len(list(values.keys())) + sum(1 for _ in values)
    due = values.get("billing.invoice.due_days")
    return {"billing.invoice.due_days": (due or 30) + (1 if blanks and total else 0)}
"""


async def test_a_scan_of_values_is_recorded_as_a_scan_not_as_every_key_read(
    plugin_api, write_customization, two_tenants, services
):
    from core.model.customizations import SCAN_KEY, SCANNED

    acme, _ = two_tenants
    await register_planned_releases(services, ACME)
    write_customization("scanner", SCANNER, tenants=(acme,))
    api, runtime = await plugin_api()
    await publish_enable(services, runtime, acme, "scanner")
    served = await api.gql(QUERY, {"t": acme})
    assert served["data"]["settings"]["items"][0]["source"] == "CUSTOMIZATION:scanner"
    await runtime.flush_health()

    (o,) = [o for o in await services.observations.list_all() if o.customization == "scanner"]
    assert o.keys_read == {"billing.invoice.due_days"}
    assert o.keys_used == {"billing.invoice.due_days"}
    assert o.scans == o.calls >= 1
    assert {(k.key, k.direction) for k in o.keys if k.direction == SCANNED} == {(SCAN_KEY, SCANNED)}

    listed = await api.gql(
        "{ customizations { ... on CustomizationList { items { name observations { "
        "keysRead scans calls } } } } }"
    )
    (mine,) = [c for c in listed["data"]["customizations"]["items"] if c["name"] == "scanner"]
    (seen,) = mine["observations"]
    assert seen["keysRead"] == ["billing.invoice.due_days"] and seen["scans"] == seen["calls"]

    # the fold-back retire list keeps the settings the scan went over unused
    foldback = await services.foldback.candidates(ADMIN)
    retired = {r.subject for r in foldback.retire if r.kind == "SETTING_NEVER_OVERRIDDEN"}
    assert "billing.invoice.due_days" not in retired  # read by name
    assert {"security.sso.metadata_url", "ui.theme.mode"} <= retired  # only scanned

    # no removed or deprecated key of 3.0 is taken for a dependency of the scan
    body = await api.gql(READINESS)
    (row,) = [t for t in body["data"]["readiness"]["tenants"] if t["tenant"] == acme]
    settings = [f for f in row["findings"] if f["code"].startswith("SETTING_")]
    assert settings == [], settings
    assert "scanner" in {f["subject"] for f in row["findings"]}  # its hook is judged, though
