"""Upgrade rehearsal with real packages, published to the database and replayed
in real confined workers, against a planned target release that breaks them in
each way a release can: a setting retyped (int -> string) that the code does
arithmetic on, a tightened constraint, a changed default the code relies on, a
renamed key; and packages it does not break (no false blocker).

The recorded inputs come from :class:`SampleList`, a stand-in for the sample
store (``core/store/samples.py``, built with recording) until it lands: it
holds :class:`~core.model.samples.InputSample` values made from each tenant's
real layered values, secrets removed, as the recorder keeps them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from api.cli.main import app
from api.cli.upgrade import render_markdown, render_table, report_json
from api.http.app import AppOptions, create_app
from api.wiring import attach
from core.analysis.readiness.vocabulary import Code, Severity
from core.model.auth import Role
from core.model.definitions import SettingType
from core.model.errors import InvalidInputError, NotFoundError
from core.model.manifest import ReleaseManifest
from core.model.samples import InputSample
from core.store import rehearsal as rehearsal_service
from core.store.db import count_statements
from core.store.services import Services
from tests.api.test_console import sign_in
from tests.conftest import ADMIN, Api
from tests.plugins.conftest import load_runtime, publish_enable

RESOLVE = "tailor_resolve_settings"
TARGET = "2.5"
SECRET = "integrations.webhooks.signing_secret"
SECRET_VALUE = "whsec-do-not-show-9f8e7d"
#: tenants a test adds to the fleet
LATER = [f"t{i:02d}" for i in range(10)]


class SampleList:
    """A SampleSource over samples held in memory (stand-in for the store)."""

    def __init__(self, samples: Sequence[InputSample]) -> None:
        self.items = list(samples)
        self.asked: list[Sequence[str] | None] = []

    async def samples(self, tenants: Sequence[str] | None = None) -> list[InputSample]:
        self.asked.append(tenants)
        return [s for s in self.items if tenants is None or s.tenant in tenants]


async def register_target(services: Services) -> ReleaseManifest:
    """2.5, planned: 2.0 with reporting.cache.ttl_seconds an int -> string (by
    the "string" conversion), security.password.expiry_days an int -> string
    (no conversion),
    orders.discount.max_percent at most 50 (was 100), ui.table.page_size's
    default 50 (was 25) and shipping.weight.unit renamed shipping.weight.units."""
    current = await services.releases.manifest("2.0", ADMIN)
    settings = []
    for d in current.settings:
        if d.key == "reporting.cache.ttl_seconds":  # with a declared conversion
            d = dataclasses.replace(
                d,
                type=SettingType.STRING,
                default="300",
                min=None,
                max=None,
                previous_type="int",
                conversion="string",
            )
        elif d.key == "security.password.expiry_days":  # retyped, no conversion declared
            d = dataclasses.replace(d, type=SettingType.STRING, default="90", min=None, max=None)
        elif d.key == "orders.discount.max_percent":
            d = dataclasses.replace(d, max=50.0)
        elif d.key == "ui.table.page_size":
            d = dataclasses.replace(d, default=50)
        elif d.key == "shipping.weight.unit":
            d = dataclasses.replace(d, key="shipping.weight.units", added=TARGET)
        settings.append(d)
    target = dataclasses.replace(
        current,
        version=TARGET,
        settings=tuple(settings),
        renamed=(("shipping.weight.unit", "shipping.weight.units"),),
    )
    await services.releases.import_planned(target, ADMIN)
    return target


#: each package: (directory, hooks.py body, extra manifest fields)
PACKAGES = {
    # arithmetic on an int that becomes a string: raises on the target
    "cache_math": (
        """
@hookimpl
def tailor_resolve_settings(values):
    return {"reporting.retention.months": 1 + values["reporting.cache.ttl_seconds"] // 60}
""",
        {},
    ),
    # a constant the target's tighter maximum rejects
    "big_discount": (
        """
@hookimpl
def tailor_resolve_settings(values):
    return {"orders.discount.max_percent": 80.0}
""",
        {},
    ),
    # relies on the default page size: another answer when the default moves
    "page_lines": (
        """
@hookimpl
def tailor_resolve_settings(values):
    return {"orders.lines.max_count": values["ui.table.page_size"] * 4}
""",
        {},
    ),
    # reads a key the target renames; signs with a declared secret
    "weight_signer": (
        """
@hookimpl
def tailor_resolve_settings(values):
    secret = values["integrations.webhooks.signing_secret"]
    if "shipping.weight.unit" not in values:
        raise KeyError("no weight unit to sign with " + str(secret))
    return {"shipping.label.format": "zpl"}
""",
        {"secrets": SECRET},
    ),
    # does not break: reads settings the target keeps, returns valid values
    "dark_theme": (
        """
@hookimpl
def tailor_resolve_settings(values):
    if values["billing.invoice.due_days"] >= 30:
        return {"ui.theme.mode": "dark"}
    return {}
""",
        {},
    ),
    # does not break either: reads the renamed key defensively, keeps the answer
    "tolerant_units": (
        """
@hookimpl
def tailor_resolve_settings(values):
    unit = values.get("shipping.weight.units", values.get("shipping.weight.unit"))
    return {"shipping.carrier.default": "dhl" if unit == "kg" else "ups"}
""",
        {},
    ),
}


def secrets_toml(name: str, tenants: list[str], secrets: str | None) -> str:
    lines = [
        f'name = "{name}"',
        "tenants = [" + ", ".join(f'"{t}"' for t in tenants) + "]",
        'version = "1.0.0"',
        'requires = ">=1.0"',
    ]
    if secrets:
        lines.append(f'secrets = ["{secrets}"]')
    return "\n".join(lines) + "\n"


async def recorded(services: Services, tenant: str, customization: str, n: int) -> list:
    """``n`` samples of ``customization``'s resolve call for ``tenant``, made of
    its real layered values without the secrets (what recording keeps)."""
    layered = await services.settings.layered(ADMIN, tenant, None)
    values = {s.key: s.value for s in layered.settings if not s.definition.secret}
    return [
        InputSample(
            id=f"smp-{customization}-{tenant}-{i}",
            tenant=tenant,
            environment=None,
            customization=customization.replace("_", "-"),
            version="1.0.0",
            hook=RESOLVE,
            inputs={"tenant": tenant, "environment": None, "values": values},
            recorded_at=datetime(2026, 12, 1, tzinfo=UTC),
        )
        for i in range(n)
    ]


@pytest.fixture
async def fleet(services, two_tenants, plugin_dir, write_customization):
    """Every package published and enabled for acme; dark_theme for other too."""
    acme, other = two_tenants
    for slug in LATER:  # no customization enabled yet
        await services.tenants.create(ADMIN, slug, f"Tenant {slug}", "2.0")
    for dirname, (code, extra) in PACKAGES.items():
        # dark-theme is made for every tenant, including those a test adds later
        tenants = [acme, other, *LATER] if dirname == "dark_theme" else [acme]
        write_customization(
            dirname,
            code,
            toml=secrets_toml(dirname.replace("_", "-"), tenants, extra.get("secrets")),
        )
    runtime = load_runtime(plugin_dir)
    await publish_enable(services, runtime, acme, *(d.replace("_", "-") for d in PACKAGES))
    await services.registry.set_enabled(ADMIN, other, "dark-theme", True)
    await services.settings.set(ADMIN, acme, SECRET, SECRET_VALUE)
    await register_target(services)
    samples = []
    for dirname in PACKAGES:
        samples += await recorded(services, acme, dirname, 3)
    samples += await recorded(services, other, "dark_theme", 2)
    attach(services, runtime)
    services.rehearsal.samples = SampleList(samples)
    yield services, runtime
    await runtime.close()


async def publish_capped_discount(services: Services, plugin_dir) -> None:
    """Publish big-discount 1.1.0, which caps its discount at 50 (pins nobody)."""
    path = plugin_dir / "next" / "big_discount"
    path.mkdir(parents=True)
    (path / "customization.toml").write_text(
        secrets_toml("big-discount", ["acme"], None).replace("1.0.0", "1.1.0")
    )
    (path / "hooks.py").write_text(
        'import pluggy\nhookimpl = pluggy.HookimplMarker("tailor")\n\n'
        "@hookimpl\ndef tailor_resolve_settings(values):\n"
        '    return {"orders.discount.max_percent": 50.0}\n'
    )
    (path / "__init__.py").write_text("")
    runtime = load_runtime(path.parent)
    try:
        [loaded] = runtime.sources()
        await services.registry.publish(ADMIN, loaded.registration())
    finally:
        await runtime.close()


def by_code(report, tenant: str) -> dict[tuple[str, str], list]:
    found: dict[tuple[str, str], list] = {}
    [t] = [t for t in report.tenants if t.tenant == tenant]
    for f in t.findings:
        found.setdefault((f.code.value, f.subject), []).append(f)
    return found


async def test_rehearsal_finds_each_break_and_no_false_blocker(fleet):
    """Expected, written before running: cache-math FAILED (str // int raises);
    big-discount INVALID_VALUE (80 > 50); page-lines CHANGED 100 -> 200;
    weight-signer FAILED on the renamed key, its secret redacted; dark-theme and
    tolerant-units pass everywhere (confidence 1.0, no finding)."""
    services, _runtime = fleet
    report = await services.rehearsal.rehearse(ADMIN, TARGET)
    acme = by_code(report, "acme")
    assert set(acme) == {
        ("REHEARSAL_FAILED", "cache-math"),
        ("REHEARSAL_INVALID_VALUE", "big-discount"),
        ("REHEARSAL_CHANGED", "page-lines"),
        ("REHEARSAL_FAILED", "weight-signer"),
    }, acme
    [failed] = acme[("REHEARSAL_FAILED", "cache-math")]
    assert failed.severity is Severity.BLOCKER
    assert failed.evidence["failure"] == "raised"
    assert "TypeError" in failed.evidence["error"]
    assert failed.evidence["samples"] == [f"smp-cache_math-acme-{i}" for i in range(3)]
    [invalid] = acme[("REHEARSAL_INVALID_VALUE", "big-discount")]
    assert invalid.severity is Severity.BLOCKER
    assert invalid.evidence["keys"] == ["orders.discount.max_percent"]
    assert invalid.evidence["rule"] == "max" and invalid.evidence["value"] == 80.0
    assert invalid.detail == "orders.discount.max_percent"
    [changed] = acme[("REHEARSAL_CHANGED", "page-lines")]
    assert changed.severity is Severity.WARNING
    assert changed.evidence["diff"] == {"orders.lines.max_count": {"current": 100, "target": 200}}
    [signer] = acme[("REHEARSAL_FAILED", "weight-signer")]
    assert "KeyError" in signer.evidence["error"]
    text = repr(report.to_dict())
    assert SECRET_VALUE not in text and "<secret>" in signer.evidence["error"]
    # the other tenant runs only dark-theme: nothing found
    assert by_code(report, "other") == {}
    confidence = {c.name: (c.replays, c.passed) for c in report.customizations}
    assert confidence == {
        "big-discount": (3, 0),
        "cache-math": (3, 0),
        "dark-theme": (5, 5),
        "page-lines": (3, 0),
        "tolerant-units": (3, 3),
        "weight-signer": (3, 0),
    }
    # one worker per version, reused across its samples and tenants
    assert report.workers == 6
    assert report.replays == 20 and report.calls == 40
    assert report.any_blocked


async def test_the_secret_reaches_the_code_on_both_sides(fleet, write_customization):
    """The declared secret is injected from the tenant's value (the sample holds
    none): weight-signer signs on the current release, which needs it set."""
    services, _runtime = fleet
    report = await services.rehearsal.rehearse(ADMIN, TARGET, ["acme"])
    [signer] = by_code(report, "acme")[("REHEARSAL_FAILED", "weight-signer")]
    # the current side ran (its answer was a dict, so only the target failed)
    assert "fails on the current release too" not in signer.message


async def test_a_candidate_version_is_rehearsed_before_anyone_pins_it(
    fleet, plugin_dir, write_customization
):
    """big-discount 1.1.0 caps its discount at 50: published, pinned by nobody,
    rehearsed with --version: no finding, confidence 1.0."""
    services, _runtime = fleet
    await publish_capped_discount(services, plugin_dir)
    report = await services.rehearsal.rehearse(ADMIN, TARGET, candidate="big-discount@1.1.0")
    assert [(c.name, c.version, c.replays, c.passed) for c in report.customizations] == [
        ("big-discount", "1.1.0", 3, 3)
    ]
    assert report.findings == []
    pins = await services.registry.pinned_map()
    assert [p.version for p in pins["acme"] if p.name == "big-discount"] == ["1.0.0"]


async def test_bad_input_says_what_is_wrong_and_runs_nothing(fleet):
    services, _runtime = fleet
    source = services.rehearsal.samples
    with pytest.raises(NotFoundError, match=r"9\.9"):
        await services.rehearsal.rehearse(ADMIN, "9.9")
    with pytest.raises(NotFoundError, match="tenant 'nobody'"):
        await services.rehearsal.rehearse(ADMIN, TARGET, ["nobody"])
    with pytest.raises(InvalidInputError, match="NAME@VERSION"):
        await services.rehearsal.rehearse(ADMIN, TARGET, candidate="big-discount")
    with pytest.raises(NotFoundError, match=r"published versions: 1\.0\.0"):
        await services.rehearsal.rehearse(ADMIN, TARGET, candidate="big-discount@7.0")
    assert source.asked == []  # nothing was read, nothing replayed


async def test_without_workers_it_says_so(services, tenant):
    """Services no plugin runtime is attached to cannot replay: a clear error."""
    with pytest.raises(InvalidInputError, match="no workers"):
        await services.rehearsal.rehearse(ADMIN, "2.0")


async def test_a_hook_past_its_deadline_is_killed_and_reported(
    services, two_tenants, plugin_dir, write_customization
):
    """A package that loops on the target's input: the call times out, its worker
    is killed and replaced for the next call (REHEARSAL_FAILED, timed_out)."""
    acme, _other = two_tenants
    write_customization(
        "slow_units",
        """
@hookimpl
def tailor_resolve_settings(values):
    while "shipping.weight.unit" not in values:
        pass
    return {}
""",
        toml=secrets_toml("slow-units", [acme], None),
    )
    runtime = load_runtime(plugin_dir, hook_timeout=0.5)
    try:
        await publish_enable(services, runtime, acme, "slow-units")
        await register_target(services)
        attach(services, runtime)
        services.rehearsal.samples = SampleList(await recorded(services, acme, "slow_units", 2))
        report = await services.rehearsal.rehearse(ADMIN, TARGET)
    finally:
        await runtime.close()
    [finding] = report.tenants[0].findings
    assert finding.code is Code.REHEARSAL_FAILED
    assert finding.evidence["failure"] == "timed_out"
    assert finding.evidence["sample_count"] == 2
    # calls in sample order (current, target, current, target): the worker killed
    # by the first target call is started again for the next sample's current call
    assert report.workers == 2


async def test_statements_do_not_grow_with_the_tenants(fleet, monkeypatch):
    """The same number of SQL statements with 2 tenants running customizations
    as with 12 (the versions' packages are in this server's cache after the
    first run); tenants replayed a few at a time keep one worker per version
    across the chunks."""
    monkeypatch.setattr(rehearsal_service, "CHUNK", 3)
    services, _runtime = fleet
    await services.rehearsal.rehearse(ADMIN, TARGET)  # warms the package cache
    with count_statements(services.engine) as few:
        await services.rehearsal.rehearse(ADMIN, TARGET)
    source = services.rehearsal.samples
    for slug in LATER:
        await services.registry.set_enabled(ADMIN, slug, "dark-theme", True)
        source.items += await recorded(services, slug, "dark_theme", 1)
    with count_statements(services.engine) as many:
        report = await services.rehearsal.rehearse(ADMIN, TARGET)
    assert len(report.tenants) == 12
    assert [len(asked) for asked in source.asked[-4:]] == [3, 3, 3, 3]  # 12 in chunks of 3
    assert report.workers == 6  # one per version, whatever the chunks
    dark = next(c for c in report.customizations if c.name == "dark-theme")
    assert (dark.replays, dark.passed, len(dark.tenants)) == (15, 15, 12)
    assert many.count == few.count, (few.count, many.count)


async def test_the_cli_says_what_is_wrong(fleet, database_url, monkeypatch):
    """Through the real CLI: a bad target or candidate exits 2 with the reason."""
    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    runner = CliRunner()

    async def invoke(*args: str):  # the CLI runs its own event loop: in a thread
        return await asyncio.to_thread(runner.invoke, app, ["upgrade", "rehearse", *args])

    result = await invoke("--target", "9.9")
    assert result.exit_code == 2 and "9.9" in result.output, result.output
    result = await invoke("--target", TARGET, "--version", "x")
    assert result.exit_code == 2 and "NAME@VERSION" in result.output, result.output


async def test_every_format_shows_ids_and_never_a_secret(fleet):
    services, _runtime = fleet
    report = await services.rehearsal.rehearse(ADMIN, TARGET)
    data = report_json(report)
    ids = [f["id"] for t in data["tenants"] for f in t["findings"]]
    assert "REHEARSAL_CHANGED:page-lines:orders.lines.max_count@acme" in ids
    assert "REHEARSAL_INVALID_VALUE:big-discount:orders.discount.max_percent@acme" in ids
    assert "REHEARSAL_FAILED:weight-signer:tailor_resolve_settings@acme" in ids
    for [code, subject, _detail, tenant] in (
        [*fid.split(":")[:2], *fid.split(":")[2].split("@")] for fid in ids
    ):
        assert (code, subject, tenant) in {
            (f.code.value, f.subject, t.tenant) for t in report.tenants for f in t.findings
        }
    markdown = io.StringIO()
    render_markdown(report, markdown)
    console = Console(file=io.StringIO(), width=300)
    render_table(report, console)
    table = console.file.getvalue()  # type: ignore[attr-defined]
    for text in (json.dumps(data), markdown.getvalue(), table):
        assert SECRET_VALUE not in text
        assert "page-lines" in text and "big-discount" in text
    assert "| dark-theme | 1.0.0 | 5 | 5 | 100% |" in markdown.getvalue()
    assert "`REHEARSAL_CHANGED:page-lines:orders.lines.max_count@acme`" in markdown.getvalue()


REHEARSAL = """query($t: String!, $tenants: [String!], $v: String) {
  rehearsal(target: $t, tenants: $tenants, version: $v) { __typename
    ... on Rehearsal { target replays calls workers anyBlocked
      customizations { name version replays passed confidence }
      tenants { tenant blockers findings { id code severity detail evidence sources } } }
    ... on Error { code message } } }"""


async def test_graphql_rehearsal_over_the_real_app(fleet, services):
    wired, runtime = fleet
    app = create_app(wired, AppOptions(plugins=runtime))
    tokens = {
        role.value: (await services.tokens.create(role, scope, label=role.value))[0]
        for role, scope in (
            (Role.ADMIN, ()),
            (Role.RELEASE_MANAGER, ()),
            (Role.CONSULTANT, ("acme",)),
            (Role.APP, ("acme",)),
        )
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tailor.test"
    ) as client:
        api = Api(client, tokens)
        body = await api.gql(REHEARSAL, {"t": TARGET}, token="release_manager")
        found = body["data"]["rehearsal"]
        assert found["__typename"] == "Rehearsal", body
        assert found["anyBlocked"] is True and found["workers"] == 6
        acme = next(t for t in found["tenants"] if t["tenant"] == "acme")
        changed = next(f for f in acme["findings"] if f["code"] == "REHEARSAL_CHANGED")
        assert changed["id"] == "REHEARSAL_CHANGED:page-lines:orders.lines.max_count@acme"
        assert changed["sources"] == ["rehearsal"] and changed["severity"] == "warning"
        assert SECRET_VALUE not in json.dumps(body)
        mine = await api.gql(REHEARSAL, {"t": TARGET, "tenants": ["acme"]}, token="consultant")
        assert mine["data"]["rehearsal"]["__typename"] == "Rehearsal"
        theirs = await api.gql(REHEARSAL, {"t": TARGET, "tenants": ["other"]}, token="consultant")
        assert theirs["data"]["rehearsal"]["code"] == "PERMISSION_DENIED"
        app_token = await api.gql(REHEARSAL, {"t": TARGET}, token="app")
        assert app_token["data"]["rehearsal"]["code"] == "PERMISSION_DENIED"
        unknown = await api.gql(REHEARSAL, {"t": "9.9"})
        assert unknown["data"]["rehearsal"]["code"] == "NOT_FOUND"
        candidate = await api.gql(REHEARSAL, {"t": TARGET, "v": "big-discount@8"})
        assert candidate["data"]["rehearsal"]["code"] == "NOT_FOUND"
        assert "published versions: 1.0.0" in candidate["data"]["rehearsal"]["message"]


async def test_a_value_the_target_cannot_take_is_reported_not_blamed_on_the_code(fleet):
    """acme overrides security.password.expiry_days (an int; a string on 2.5,
    which declares no conversion): its samples cannot be translated. Each of its
    customizations gets REHEARSAL_UNTRANSLATABLE (unknown, not a blocker), no
    replay, no confidence; the other tenant's replays are unaffected."""
    services, _runtime = fleet
    await services.settings.set(ADMIN, "acme", "security.password.expiry_days", 60)
    source = services.rehearsal.samples
    source.items = [s for s in source.items if s.tenant != "acme"]
    for dirname in PACKAGES:
        source.items += await recorded(services, "acme", dirname, 2)
    report = await services.rehearsal.rehearse(ADMIN, TARGET)
    acme = by_code(report, "acme")
    assert {code for code, _subject in acme} == {"REHEARSAL_UNTRANSLATABLE"}
    assert {subject for _code, subject in acme} == {d.replace("_", "-") for d in PACKAGES}
    [finding] = acme[("REHEARSAL_UNTRANSLATABLE", "cache-math")]
    assert finding.severity is Severity.UNKNOWN
    assert finding.evidence["keys"] == ["security.password.expiry_days"]
    assert "declares no conversion" in finding.message
    assert finding.evidence["sample_count"] == 2
    assert not report.any_blocked
    assert report.untranslatable == 12 and report.replays == 2  # other's dark-theme samples
    assert [(c.name, c.replays, c.passed) for c in report.customizations] == [("dark-theme", 2, 2)]


async def test_a_kept_rehearsal_joins_readiness_and_the_unblock_plan(fleet, plugin_dir):
    """Kept, the rehearsal's findings join readiness of the same target (source
    rehearsal): acme is blocked by them, the unblock plan names the
    customizations; once acme runs another version of one of them, that one's
    findings no longer apply. Not kept: readiness shows none."""
    services, _runtime = fleet
    await services.rehearsal.rehearse(ADMIN, TARGET)  # not kept
    before = (await services.triage.triaged(ADMIN, TARGET)).report
    assert not [f for t in before.tenants for f in t.findings if "rehearsal" in f.sources]

    await services.rehearsal.rehearse(ADMIN, TARGET, keep=True)
    report = (await services.triage.triaged(ADMIN, TARGET)).report
    acme = next(t for t in report.tenants if t.tenant == "acme")
    joined = {(f.code.value, f.subject) for f in acme.findings if "rehearsal" in f.sources}
    assert joined == {
        ("REHEARSAL_FAILED", "cache-math"),
        ("REHEARSAL_INVALID_VALUE", "big-discount"),
        ("REHEARSAL_CHANGED", "page-lines"),
        ("REHEARSAL_FAILED", "weight-signer"),
    }
    assert acme.status.value == "blocked"
    steps = {step.subject for step in report.plan}
    assert {"cache-math", "big-discount", "weight-signer"} <= steps
    other = next(t for t in report.tenants if t.tenant == "other")
    assert not [f for f in other.findings if "rehearsal" in f.sources]

    # acme moves big-discount to 1.1.0 (capped at 50): the kept findings of 1.0.0
    # no longer apply to it
    await publish_capped_discount(services, plugin_dir)
    await services.registry.set_version(ADMIN, "acme", "big-discount", "1.1.0")
    moved = (await services.triage.triaged(ADMIN, TARGET)).report
    acme = next(t for t in moved.tenants if t.tenant == "acme")
    still = {(f.code.value, f.subject) for f in acme.findings if "rehearsal" in f.sources}
    assert still == joined - {("REHEARSAL_INVALID_VALUE", "big-discount")}


async def test_a_declared_conversion_translates_the_tenants_value(fleet):
    """acme overrides reporting.cache.ttl_seconds = 600; 2.5 converts it to the
    string "600" (its declared conversion): the sample is replayed, and
    cache-math's arithmetic on it fails there (REHEARSAL_FAILED), nothing is
    untranslatable."""
    services, _runtime = fleet
    await services.settings.set(ADMIN, "acme", "reporting.cache.ttl_seconds", 600)
    source = services.rehearsal.samples
    source.items = [s for s in source.items if s.tenant != "acme"]
    source.items += await recorded(services, "acme", "cache_math", 2)
    report = await services.rehearsal.rehearse(ADMIN, TARGET, ["acme"])
    acme = by_code(report, "acme")
    assert set(acme) == {("REHEARSAL_FAILED", "cache-math")}
    [failed] = acme[("REHEARSAL_FAILED", "cache-math")]
    assert "unsupported operand" in failed.evidence["error"]
    assert report.untranslatable == 0 and report.replays == 2


RECORD = """mutation($t: String!) { setInputRecording(tenant: $t, enabled: true) {
  __typename ... on Error { code message } } }"""
SETTINGS = """query($t: String!) { settings(tenant: $t, keys: ["orders.lines.max_count"]) {
  ... on Settings { items { value source } } } }"""


async def test_end_to_end_recorded_by_the_server_rehearsed_by_the_cli(
    services, plugin_api, write_customization, database_url, monkeypatch
):
    """The real thing: acme records its inputs (setInputRecording), the server
    serves settings (page-lines, impure: called every request), the samples are
    sealed in the store; `tailor upgrade rehearse --target 2.5 --format json`
    replays them from the database in its own workers, keeps the run, and
    `tailor readiness` then shows the finding."""
    code, _extra = PACKAGES["page_lines"]
    write_customization(
        "page_lines", code, toml=secrets_toml("page-lines", ["acme"], None) + "pure = false\n"
    )
    api, runtime = await plugin_api()
    await publish_enable(services, runtime, "acme", "page-lines")
    assert (await api.gql(RECORD, {"t": "acme"}))["data"]["setInputRecording"]["__typename"] != (
        "Error"
    )
    for _ in range(3):
        body = await api.gql(SETTINGS, {"t": "acme"})
        assert body["data"]["settings"]["items"] == [
            {"value": 100, "source": "CUSTOMIZATION:page-lines"}
        ]
    await runtime.flush_samples()
    stored = await services.samples.samples(["acme"])
    assert len(stored) == 3 and {s.hook for s in stored} == {RESOLVE}
    await register_target(services)

    monkeypatch.setenv("TAILOR_DATABASE_URL", database_url)
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, app, ["upgrade", "rehearse", "--target", TARGET, "--format", "json"]
    )
    assert result.exit_code == 0, result.output  # a warning, no blocker
    data = json.loads(result.output)
    [acme] = [t for t in data["tenants"] if t["tenant"] == "acme"]
    [finding] = acme["findings"]
    assert finding["id"] == "REHEARSAL_CHANGED:page-lines:orders.lines.max_count@acme"
    assert finding["evidence"]["diff"] == {
        "orders.lines.max_count": {"current": 100, "target": 200}
    }
    assert sorted(finding["evidence"]["samples"]) == sorted(s.id for s in stored)
    assert data["customizations"] == [
        {
            "name": "page-lines",
            "version": "1.0.0",
            "replays": 3,
            "passed": 0,
            "confidence": 0.0,
            "tenants": ["acme"],
        }
    ]
    readiness = await asyncio.to_thread(
        runner.invoke, app, ["readiness", "--target", TARGET, "--format", "json", "--full"]
    )
    assert "REHEARSAL_CHANGED:page-lines:orders.lines.max_count@acme" in readiness.output


async def test_the_console_shows_a_kept_rehearsals_findings(fleet, services):
    """The tenant page of the console (readiness of 2.5) lists the kept
    rehearsal's findings with their ids, to triage like any other; no secret."""
    wired, runtime = fleet
    await wired.rehearsal.rehearse(ADMIN, TARGET, keep=True)
    token, _ = await services.tokens.create(Role.RELEASE_MANAGER, (), label="rm")
    app = create_app(wired, AppOptions(plugins=runtime))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tailor.test"
    ) as client:
        await sign_in(client, token)
        page = await client.get(f"/console/tenants/acme?target={TARGET}")
        assert page.status_code == 200
        for fid in (
            "REHEARSAL_CHANGED:page-lines:orders.lines.max_count@acme",
            "REHEARSAL_INVALID_VALUE:big-discount:orders.discount.max_percent@acme",
            "REHEARSAL_FAILED:weight-signer:tailor_resolve_settings@acme",
        ):
            assert f'data-finding="{fid}"' in page.text, fid
        assert SECRET_VALUE not in page.text
