"""Issue 24, recorded inputs: per tenant and opt-in, the plugin runtime keeps a
bounded sample of what each hook of a real customization receives, sealed with
the secret key, secret settings removed, pruned after the tenant's retention;
through the real app over HTTP, the real CLI, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from api.cli.main import app as cli
from core.model.clock import utcnow
from core.model.errors import SecretKeyError
from core.model.samples import DEFAULT_RETENTION_DAYS, DEFAULT_SAMPLES, HookInput
from core.model.secrets import SecretBox
from core.store.db import count_statements
from core.store.samples import InputSampleService
from tests.conftest import ADMIN
from tests.plugins.conftest import publish_enable

SECRET = "integrations.webhooks.signing_secret"
VALUE = "whsec-never-recorded-4711"
KEY = "billing.invoice.due_days"
#: a plain value the tenant sets: recorded, but only ever sealed at rest
PLAIN = 47

SETTINGS = """query($t: String!, $e: String) {
  settings(tenant: $t, environment: $e, keys: ["billing.invoice.due_days"]) {
    __typename ... on Settings { items { key value source } customizationErrors { message } } } }"""
RECORD = """mutation($t: String!, $on: Boolean!, $d: Int, $k: Int) {
  setInputRecording(tenant: $t, enabled: $on, retentionDays: $d, samples: $k) {
    __typename ... on InputRecording { tenant enabled retentionDays samples }
    ... on Error { code message } ... on InvalidInput { field } } }"""
SAMPLES = """query($t: String!) { inputSamples(tenant: $t) { __typename
  ... on InputSamples { recording { enabled retentionDays samples }
    samples { id environment customization version hook inputs recordedAt } }
  ... on Error { code message } } }"""
DELETE = """mutation($t: String!) { deleteInputSamples(tenant: $t) { __typename
  ... on InputSamplesDeleted { deleted } ... on Error { code message } } }"""
INVOKE = """mutation($a: JSON!) { invokeExtension(tenant: "acme", hook: "acme_invoice_footer",
  args: $a) { __typename ... on ExtensionCall { results { customization result } } } }"""

#: declares the secret (it receives it at run time) and is impure: every request
#: calls it (no cached answer), so every request is a hook call to record
PROBE = f"""
SECRET = {SECRET!r}

@hookimpl
def tailor_resolve_settings(values):
    return {{"billing.invoice.due_days": values["billing.invoice.due_days"] + 1}}

@hookimpl
def acme_invoice_footer(invoice):
    return "footer " + invoice["number"]
"""
PROBE_TOML = f"""name = "probe"
version = "1.2.0"
requires = ">=1.0"
tenants = ["acme"]
secrets = ["{SECRET}"]
pure = false
"""


async def _setup(services, plugin_api, write_customization):
    write_customization("probe", PROBE, toml=PROBE_TOML)
    api, runtime = await plugin_api()
    await publish_enable(services, runtime, "acme", "probe")
    await services.settings.set(ADMIN, "acme", SECRET, VALUE)
    await services.settings.set(ADMIN, "acme", KEY, PLAIN)
    return api, runtime


async def _ask(api, times: int, environment: str | None = None) -> None:
    for _ in range(times):
        body = await api.gql(SETTINGS, {"t": "acme", "e": environment})
        (item,) = body["data"]["settings"]["items"]
        assert item["value"] == PLAIN + 1, body  # the customization ran


async def _listed(api) -> dict:
    body = await api.gql(SAMPLES, {"t": "acme"})
    listed = body["data"]["inputSamples"]
    assert listed["__typename"] == "InputSamples", body
    return listed


async def _raw_inputs(services) -> list[str]:
    async with services.engine.connect() as conn:
        rows = await conn.execute(text("SELECT inputs FROM input_samples"))
        return [str(r[0]) for r in rows]


async def test_off_by_default_then_at_most_k_samples_sealed_and_without_secret(
    services, plugin_api, write_customization
):
    api, runtime = await _setup(services, plugin_api, write_customization)
    listed = await _listed(api)
    assert listed["recording"] == {
        "enabled": False,
        "retentionDays": DEFAULT_RETENTION_DAYS,
        "samples": DEFAULT_SAMPLES,
    }
    await _ask(api, 3)
    await runtime.flush_samples()
    assert (await _listed(api))["samples"] == []  # off by default: nothing recorded

    on = await api.gql(RECORD, {"t": "acme", "on": True, "d": 7, "k": 3})
    assert on["data"]["setInputRecording"] == {
        "__typename": "InputRecording",
        "tenant": "acme",
        "enabled": True,
        "retentionDays": 7,
        "samples": 3,
    }
    await _ask(api, 5, "production")
    await runtime.flush_samples()
    listed = await _listed(api)
    samples = listed["samples"]
    assert len(samples) == 3  # at most K per (customization, hook, tenant)
    for s in samples:
        assert (s["customization"], s["version"], s["hook"], s["environment"]) == (
            "probe",
            "1.2.0",
            "tailor_resolve_settings",
            "production",
        )
        assert s["id"].startswith("smp-")
        inputs = s["inputs"]
        assert inputs["tenant"] == "acme" and inputs["environment"] == "production"
        # the layered values, as the customization received them, minus the secret
        assert inputs["values"][KEY] == PLAIN
        assert SECRET not in inputs["values"]
    assert VALUE not in json.dumps(listed)
    # at rest: sealed (neither the plain value nor the secret readable)
    raw = await _raw_inputs(services)
    assert len(raw) == 3
    assert all("$sealed" in r and VALUE not in r and KEY not in r for r in raw)

    # a later rotation samples afresh: the store keeps the newest K
    first = {s["id"] for s in samples}
    runtime.recorder.rotate_seconds = 0
    await runtime.flush_samples()
    await _ask(api, 2, "sandbox")
    await runtime.flush_samples()
    after = (await _listed(api))["samples"]
    assert len(after) == 3
    assert [s["environment"] for s in after].count("sandbox") == 2
    assert len(first & {s["id"] for s in after}) == 1

    # an extension point's arguments are recorded too
    invoice = {"invoice": {"number": "INV-9", "total": 3.5}}
    call = await api.gql(INVOKE, {"a": invoice})
    assert call["data"]["invokeExtension"]["results"][0]["result"] == "footer INV-9"
    await runtime.flush_samples()
    footers = [s for s in (await _listed(api))["samples"] if s["hook"] == "acme_invoice_footer"]
    assert [s["inputs"] for s in footers] == [{"tenant": "acme", **invoice}]

    # off: recording stops, what was recorded stays; delete removes it (audited)
    off = await api.gql(RECORD, {"t": "acme", "on": False})
    assert off["data"]["setInputRecording"]["enabled"] is False
    assert off["data"]["setInputRecording"]["samples"] == 3  # kept as set
    runtime.recorder.rotate_seconds = 0
    await runtime.flush_samples()
    await _ask(api, 2)
    await runtime.flush_samples()
    assert len((await _listed(api))["samples"]) == 4
    deleted = await api.gql(DELETE, {"t": "acme"})
    assert deleted["data"]["deleteInputSamples"] == {
        "__typename": "InputSamplesDeleted",
        "deleted": 4,
    }
    assert (await _listed(api))["samples"] == []
    audit = await services.audit.list_all(ADMIN, tenant="acme")
    actions = [e.action for e in audit]
    assert actions.count("input_recording_set") == 2 and "input_samples_deleted" in actions


async def test_bad_input_and_roles_change_nothing(services, plugin_api, write_customization):
    api, _runtime = await _setup(services, plugin_api, write_customization)
    for variables, field, words in (
        ({"k": 0}, "samples", "between 1 and"),
        ({"k": 5000}, "samples", "between 1 and"),
        ({"d": 0}, "retentionDays", "between 1 and"),
    ):
        body = await api.gql(RECORD, {"t": "acme", "on": True, **variables})
        result = body["data"]["setInputRecording"]
        assert result["__typename"] == "InvalidInput", body
        assert result["field"] == field and words in result["message"]
    missing = await api.gql(RECORD, {"t": "ghost", "on": True})
    assert missing["data"]["setInputRecording"]["__typename"] == "NotFound"
    for token in ("consultant", "release_manager"):
        denied = await api.gql(RECORD, {"t": "acme", "on": True}, token=token)
        assert denied["data"]["setInputRecording"]["__typename"] == "PermissionDenied"
        listing = await api.gql(SAMPLES, {"t": "acme"}, token=token)
        assert listing["data"]["inputSamples"]["__typename"] == "PermissionDenied"
        gone = await api.gql(DELETE, {"t": "acme"}, token=token)
        assert gone["data"]["deleteInputSamples"]["__typename"] == "PermissionDenied"
    assert (await _listed(api))["recording"]["enabled"] is False


async def test_recording_is_refused_without_a_key(services, tenant):
    keyless = InputSampleService(services.sessions, SecretBox())
    with pytest.raises(SecretKeyError, match="TAILOR_SECRET_KEY"):
        await keyless.set_policy(ADMIN, tenant, True)
    assert (await services.samples.policy(ADMIN, tenant)).enabled is False
    # turned on with a key, then the server runs without one: nothing stored
    await services.samples.set_policy(ADMIN, tenant, True)
    assert await keyless.recording_policies() == {}
    await keyless.record_inputs([_input(tenant)])
    assert await services.samples.samples([tenant]) == []


def _input(tenant: str, n: int = 0) -> HookInput:
    return HookInput(
        tenant, None, "probe", "1.0.0", "tailor_resolve_settings", {"values": {KEY: n}}
    )


async def test_store_keeps_the_newest_k_and_prunes_after_the_retention(services, tenant):
    store = services.samples
    await store.set_policy(ADMIN, tenant, True, retention_days=3, samples=2)
    await store.record_inputs([_input(tenant, n) for n in range(5)])
    await store.record_inputs([_input(tenant, 9)])
    kept = await store.samples([tenant])
    # the newest batch first in rank, then the newest id of the batch before
    assert sorted(s.inputs["values"][KEY] for s in kept) == [4, 9]
    # a smaller K applies at once
    await store.set_policy(ADMIN, tenant, True, samples=1)
    assert [s.inputs["values"][KEY] for s in await store.samples([tenant])] == [9]
    # the tenant's retention: kept for 3 days, gone after
    assert await store.prune(now=utcnow() + timedelta(days=2)) == 0
    assert len(await store.samples()) == 1
    assert await store.prune(now=utcnow() + timedelta(days=4)) == 1
    assert await store.samples() == []
    # recording off: a batch that was on its way is dropped
    await store.set_policy(ADMIN, tenant, False)
    await store.record_inputs([_input(tenant)])
    assert await store.samples() == []


async def test_the_settings_query_sends_as_many_statements_recording_or_not(
    services, plugin_api, write_customization
):
    api, runtime = await _setup(services, plugin_api, write_customization)
    await _ask(api, 2)

    async def statements() -> int:
        with count_statements(services.engine) as counter:
            await _ask(api, 1)
        return counter.count

    off = await statements()
    await services.samples.set_policy(ADMIN, "acme", True, samples=2)
    taking = await statements()  # a sample taken: in memory only
    await _ask(api, 2)
    full = await statements()  # K held: a dict lookup
    assert off == taking == full, (off, taking, full)
    assert runtime.recorder.pending == 2


runner = CliRunner()


async def _cli(*args: str, **env: str):
    """The real CLI (its own event loop, in a thread: this test's loop is running)."""
    return await asyncio.to_thread(
        runner.invoke, cli, list(args), env=env or None, catch_exceptions=False
    )


async def test_cli_record_list_delete_and_refused_without_a_key(
    services, tenant, database_url, monkeypatch
):
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    refused = await _cli("tenant", "record", tenant, "--days", "5", TAILOR_SECRET_KEY="")
    assert refused.exit_code == 2 and "TAILOR_SECRET_KEY" in refused.stderr
    assert (await services.samples.policy(ADMIN, tenant)).enabled is False

    on = await _cli("tenant", "record", tenant, "--days", "5", "--samples", "2")
    assert on.exit_code == 0, on.stderr
    assert "recording on: at most 2 samples" in on.stdout and "kept 5 days" in on.stdout
    await services.samples.record_inputs(
        [
            HookInput(
                tenant,
                "production",
                "probe",
                "1.0.0",
                "tailor_resolve_settings",
                {"values": {KEY: 1, SECRET: VALUE}},
            )
        ]
    )
    # a value recorded under a key that is secret now is never listed
    listed = await _cli("tenant", "samples", tenant, "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert shown["recording"] == {"enabled": True, "retention_days": 5, "samples": 2}
    [sample] = shown["samples"]
    assert sample["inputs"] == {"values": {KEY: 1}} and VALUE not in listed.stdout
    table = await _cli("tenant", "samples", tenant)
    assert "recording on" in table.stdout and sample["id"] in table.stdout

    bad = await _cli("tenant", "record", tenant, "--samples", "5000")
    assert bad.exit_code == 2 and "between 1 and 1000" in bad.stderr
    off = await _cli("tenant", "record", tenant, "--off")
    assert off.exit_code == 0 and "recording off" in off.stdout
    assert len(await services.samples.samples([tenant])) == 1  # kept
    gone = await _cli("tenant", "samples", tenant, "--delete")
    assert gone.exit_code == 0 and "1 sample(s) deleted" in gone.stdout
    assert await services.samples.samples([tenant]) == []
    unknown = await _cli("tenant", "samples", "ghost")
    assert unknown.exit_code == 2 and "tenant 'ghost' not found" in unknown.stderr


async def test_a_policy_changed_elsewhere_is_heard_by_the_background_job(
    services, plugin_api, write_customization
):
    """Another process (the CLI, another worker) turns recording on: this runtime
    learns it when its background job re-reads the policies, never per request."""
    api, runtime = await _setup(services, plugin_api, write_customization)
    elsewhere = InputSampleService(services.sessions, services.secrets)
    await elsewhere.set_policy(ADMIN, "acme", True, samples=2)
    await _ask(api, 1)
    assert runtime.recorder.pending == 0  # not heard yet
    await runtime.flush_samples()  # the background job's turn
    await _ask(api, 3)
    assert runtime.recorder.pending == 2
    await runtime.flush_samples()
    assert len(await services.samples.samples(["acme"])) == 2
    await elsewhere.set_policy(ADMIN, "acme", False)
    await runtime.flush_samples()
    await _ask(api, 1)
    assert runtime.recorder.pending == 0  # off: nothing taken
    assert len(await services.samples.samples(["acme"])) == 2  # what was recorded stays
