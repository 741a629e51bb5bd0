"""CLI: ``tailor roadmap add|pledge|update|list`` on the demo with its samples,
from a candidate id that ``tailor foldback --format json`` prints."""

from __future__ import annotations

import json

from tests.cli.test_foldback_cli import demo, invoke

__all__ = ["demo"]  # the fixture these tests use: the demo with its samples, CLI on it


def candidate(kind):
    result = invoke("foldback", "--format", "json", "--limit", "50")
    assert result.exit_code == 0, result.stderr
    return next(c for c in json.loads(result.stdout)["candidates"] if c["kind"] == kind)


def test_add_pledge_update_list(demo):
    c = candidate("NEAR_DUPLICATE_CODE")
    added = invoke(
        "roadmap",
        "add",
        c["id"],
        "--tenant",
        "hooli",
        "--capability",
        "payment-terms-guard",
        "--format",
        "json",
    )
    assert added.exit_code == 0, added.stderr
    [item] = json.loads(added.stdout)["items"]
    assert item["tenants"] == sorted({*c["tenants"], "hooli"})
    # near-duplicate copies form a family: the item is made from it
    kind = "family" if c.get("family") else "candidate"
    assert item["source"] == {"kind": kind, "id": c["id"]}
    item_id = str(item["id"])
    for tenant, amount, currency in (("hooli", "250000", "EUR"), ("northwind", "99.9", "usd")):
        pledged = invoke(
            "roadmap", "pledge", item_id, tenant, amount, currency, "--note", "co-fund"
        )
        assert pledged.exit_code == 0, pledged.stderr
    updated = invoke("roadmap", "update", item_id, "--status", "committed", "--target", "3.1")
    assert updated.exit_code == 0, updated.stderr
    listed = invoke("roadmap", "list", "--format", "json")
    [item] = json.loads(listed.stdout)["items"]
    assert (item["status"], item["target_release"]) == ("committed", "3.1")
    assert item["totals"] == [
        {"currency": "EUR", "amount": "250000.00", "pledges": 1},
        {"currency": "USD", "amount": "99.90", "pledges": 1},
    ]
    table = invoke("roadmap", "list")
    assert table.exit_code == 0 and "250000.00 EUR" in table.stdout
    markdown = invoke("roadmap", "list", "--format", "markdown")
    assert "| committed for 3.1 |" in markdown.stdout


def test_bad_input_exits_2_with_the_reason_and_changes_nothing(demo):
    missing = invoke("roadmap", "add", "shared-capability-000000000000")
    assert missing.exit_code == 2 and "tailor foldback --format json" in missing.stderr
    c = candidate("NEAR_DUPLICATE_CODE")
    item_id = str(
        json.loads(invoke("roadmap", "add", c["id"], "--format", "json").stdout)["items"][0]["id"]
    )
    for args, says in (
        (("northwind", "100", "EURO"), "ISO 4217"),
        (("northwind", "1.5", "JPY"), "JPY has 0"),
        (("hooli", "100", "EUR"), "does not cover tenant 'hooli'"),
    ):
        refused = invoke("roadmap", "pledge", item_id, *args)
        assert refused.exit_code == 2 and "error:" in refused.stderr and says in refused.stderr
    shipped = invoke("roadmap", "update", item_id, "--status", "shipped")
    assert shipped.exit_code == 2 and "registered" in shipped.stderr
    [item] = json.loads(invoke("roadmap", "list", "--format", "json").stdout)["items"]
    assert item["pledges"] == [] and item["status"] == "proposed"
