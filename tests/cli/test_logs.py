"""A node's log (issue 25): every line on stderr is JSON, uvicorn's own included;
the request id (the client's or the proxy's X-Request-Id) is on the line of a
customization that failed in that request and on the line of the audit entry it
wrote (with the entry's id, as the API answered it), and kept with the failure's
stored error and with the audit entry."""

from __future__ import annotations

import json

from core.model.auth import Role
from core.store.bootstrap import sync_product_releases
from core.store.db import upgrade
from core.store.services import Services
from plugins.catalog import tailor_extension_points
from plugins.runtime import RuntimeOptions
from tests.conftest import ADMIN, fresh_runtime
from tests.plugins.conftest import HEADER, manifest
from tests.sample import ACME
from tests.servers import start_node

NAME = "always-fails"
SET = """mutation { setSetting(input: {tenant: "acme", key: "billing.invoice.due_days",
  value: 45}) { __typename ... on SettingChanged { auditId } } }"""
SETTINGS = """{ settings(tenant: "acme", keys: ["billing.invoice.due_days"]) {
  ... on Settings { customizationErrors { customization message } } } }"""


async def test_every_line_is_json_and_carries_the_request_id(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    await upgrade(url)
    services = Services.from_url(url)
    try:
        await sync_product_releases(services, ACME, tailor_extension_points)
        await services.tenants.create(ADMIN, "acme", "Acme", "2.0")
        package = tmp_path / "src" / "always_fails"
        package.mkdir(parents=True)
        (package / "customization.toml").write_text(manifest(NAME, ["acme"]))
        (package / "hooks.py").write_text(
            HEADER + "@hookimpl\ndef tailor_resolve_settings(values):\n"
            "    raise RuntimeError('no luck today')\n"
        )
        source = fresh_runtime(
            ACME,
            RuntimeOptions(directories=[package.parent], path_env="", use_entry_points=False),
        )
        await services.registry.publish(ADMIN, source.sources()[0].registration())
        await services.registry.set_enabled(ADMIN, "acme", NAME, True)
        token, _ = await services.tokens.create(Role.ADMIN)
    finally:
        await services.close()

    import httpx

    node = await start_node(tmp_path / "node", url, probe="/readyz")
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            headers = {"Authorization": f"Bearer {token}"}
            changed = await client.post(
                f"{node.url}/graphql",
                json={"query": SET},
                headers={**headers, "X-Request-Id": "audit-req-1"},
            )
            audit_id = changed.json()["data"]["setSetting"]["auditId"]
            assert audit_id, changed.text
            failed = await client.post(
                f"{node.url}/graphql",
                json={"query": SETTINGS},
                headers={**headers, "X-Request-Id": "fail-req-1"},
            )
            errors = failed.json()["data"]["settings"]["customizationErrors"]
            assert [e["customization"] for e in errors] == [NAME], failed.text
    finally:
        assert await node.stop() == 0
    lines = node.errors.read_text().splitlines()
    log = [json.loads(line) for line in lines]  # every line: JSON
    assert any(e["logger"] == "uvicorn.error" for e in log)
    audited = [e for e in log if e.get("event") == "audited"]
    assert audited == [
        {
            **audited[0],
            "audit_id": int(audit_id),
            "request_id": "audit-req-1",
            "action": audited[0]["action"],
        }
    ]
    failures = [e for e in log if e.get("event") == "customization_failed"]
    # (setting a value resolves the tenant's settings too: the hook ran in both)
    assert {e["request_id"] for e in failures} == {"audit-req-1", "fail-req-1"}
    failed_here = next(e for e in failures if e["request_id"] == "fail-req-1")
    assert failed_here["customization"] == NAME and "no luck today" in failed_here["message"]
    # the access lines carry the same ids
    requests = {e["request_id"] for e in log if e.get("event") == "request"}
    assert {"audit-req-1", "fail-req-1"} <= requests
    # and so do the stored errors (the latest failure: the second request's) and
    # the audit entry the first request wrote
    services = Services.from_url(url)
    try:
        (seen,) = await services.observations.list_all(customization=NAME)
        during = "tailor_resolve_settings for tenant 'acme' (request fail-req-1): "
        assert seen.last_error is not None and seen.last_error.startswith(during)
        assert "no luck today" in seen.last_error
        health = (await services.registry.get(ADMIN, NAME)).health
        assert health.last_error == seen.last_error
        (entry,) = await services.audit.list_all(ADMIN, "acme", "billing.invoice.due_days")
        assert (entry.id, entry.request_id) == (int(audit_id), "audit-req-1")
    finally:
        await services.close()
