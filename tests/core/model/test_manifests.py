"""Manifest files (TOML/JSON), full validation, and release diffs."""

from __future__ import annotations

import pytest

from core.analysis.release_diff import diff
from core.model.errors import InvalidInputError
from core.model.manifest_io import dumps, load_file, loads
from tests.sample import V30_PLANNED, acme_manifest

V20 = acme_manifest("2.0")
V30 = V30_PLANNED

HEADER = 'version = "3.1"\nstatus = "planned"\n'
SETTING = '[[settings]]\nkey = "a.b"\ntype = "int"\ndefault = 5\nmin = 0\nmax = 10\n'


@pytest.mark.parametrize("fmt", ["toml", "json"])
@pytest.mark.parametrize("manifest", [V20, V30], ids=["2.0", "3.0"])
def test_round_trip(manifest, fmt):
    assert loads(dumps(manifest, fmt), fmt) == manifest


def test_bundled_file_loads_from_disk(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(dumps(V30, "json"))
    assert load_file(path) == V30


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (HEADER + SETTING + SETTING, "settings['a.b']", "defined twice"),
        (HEADER + SETTING.replace("default = 5", "default = 50"), "default", "violates"),
        ('version = "three"\n', "version", "PEP 440"),
        (HEADER + "colour = 1\n", "manifest", "unknown field(s): colour"),
        (HEADER + SETTING + "flavour = 1\n", "settings[0]", "unknown field(s): flavour"),
        (HEADER + SETTING.replace('type = "int"', 'type = "decimal"'), "type", "not a setting"),
        (HEADER + SETTING + 'added = "4.0"\n', "added", "after release"),
        (HEADER + SETTING + 'removed = "3.1"\n', "removed", "cannot be listed"),
        (HEADER + SETTING + 'added = "x.y"\n', "added", "PEP 440"),
        (HEADER + SETTING + 'deprecated = "3.0"\nreplacement = "z.z"\n', "replacement", "not a"),
        (HEADER + '[renamed]\n"a.b" = "c.d"\n', "renamed", "not a setting"),
        (HEADER + SETTING.replace("min = 0", 'min = "low"'), "settings[0]", "malformed"),
        (HEADER + '[[extension_points]]\nname = "h"\nparams = ["x", "x"]\n', "params", "twice"),
        (HEADER + '[[extension_points]]\nname = "h"\nstability = "beta"\n', "stability", "beta"),
        (HEADER + "settings = [", "manifest", "not valid TOML"),
        ("schema_version = 3\n" + HEADER, "schema_version", "not supported"),
    ],
)
def test_invalid_manifests_are_rejected_with_the_field(text, field, fragment):
    with pytest.raises(InvalidInputError) as exc:
        loads(text)
    assert field in exc.value.field
    assert fragment in exc.value.message


def test_diff_2_0_to_3_0_is_the_changelog():
    d = diff(V20, V30)
    by = {(c.kind, c.name): c for c in d.changes}
    # Tailor's hooks: one line for the change of hook API (2 -> 3), none of their own
    api = by[("hook_api", "tailor_hook_api")]
    assert api.change == "changed" and api.breaking
    assert api.details == (
        "Tailor hook API 2 -> 3",
        "tailor_resolve_setting removed (use tailor_resolve_settings)",
        "tailor_settings_changed added",
        "tailor_setting_changed deprecated; use tailor_settings_changed",
    )
    assert not [c for c in d.changes if c.kind == "hook" and c.name.startswith("tailor_")]
    assert d.changes[0] is api
    route = by[("hook", "acme_order_approval_route")]
    assert route.change == "changed" and route.breaking
    assert "parameters removed: threshold" in route.details
    assert "stability: experimental -> stable" in route.details
    assert by[("hook", "acme_tax_lines")].details[-1] == "experimental"
    renamed = by[("setting", "security.sso.metadata_url")]
    assert renamed.change == "renamed" and renamed.details[0] == "to security.sso.discovery_url"
    assert ("setting", "security.sso.discovery_url") not in by
    assert by[("setting", "tax.rounding.per_line")].change == "removed"
    lot = by[("setting", "inventory.lot_tracking.enabled")]
    assert lot.breaking and "type: bool -> enum" in lot.details
    assert by[("setting", "inventory.costing.method")].details == ("choices removed: lifo",)
    assert by[("setting", "integrations.api.rate_limit_per_minute")].breaking
    assert by[("setting", "orders.approval.threshold")].change == "deprecated"
    assert by[("setting", "orders.approval.rules")].change == "added"
    assert set(d.supersedes_added) == set(V30.supersedes)


def test_diff_1_0_to_1_5_deprecates_the_per_setting_hook():
    d = diff(acme_manifest("1.0"), acme_manifest("1.5"))
    by = {(c.kind, c.name): c for c in d.changes}
    assert by[("hook_api", "tailor_hook_api")].details == (
        "Tailor hook API 1 -> 2",
        "tailor_resolve_settings added",
        "tailor_resolve_setting deprecated; use tailor_resolve_settings",
    )
    assert not by[("hook_api", "tailor_hook_api")].breaking
    assert ("hook", "tailor_resolve_setting") not in by
    assert diff(V20, V20).changes == ()


# -- fragments (fold-back proposals) merged into a planned release ---------------------


def _fragment(**changes):
    import copy

    base = {
        "supersedes": ["late-fees"],
        "settings": [
            {"key": "billing.late_fee.grace_days", "type": "int", "default": 45, "min": 0}
        ],
        "migrations": [
            {
                "capability": "late-fees",
                "customization": "fold-base",
                "tenant": "acme",
                "overrides": {"billing.late_fee.grace_days": 60},
            }
        ],
    }
    fragment = copy.deepcopy(base)
    fragment.update(changes)
    return fragment


def test_a_fragment_merges_into_a_planned_release_as_a_whole():
    import pytest

    from core.model.errors import InvalidInputError
    from core.model.manifest import ReleaseManifest
    from tests.sample import V30_PLANNED

    merged = V30_PLANNED.merged(_fragment(), "3.5")
    assert merged.version == "3.5" and merged.status == "planned"
    assert {d.key for d in V30_PLANNED.settings} < {d.key for d in merged.settings}
    assert "late-fees" in merged.supersedes
    (migration,) = merged.migrations
    assert migration.action == (
        "disable fold-base for acme; set override billing.late_fee.grace_days = 60"
    )
    # round trip through the file format and merging again replaces, never doubles
    again = ReleaseManifest.from_dict(merged.to_dict()).merged(_fragment(), "3.5")
    assert again.migrations == merged.migrations and again.settings == merged.settings

    wrong = [
        (_fragment(supersedes=[]), "is not superseded by this release"),
        (
            _fragment(
                migrations=[{**_fragment()["migrations"][0], "overrides": {"nope.key.x": 1}}]
            ),
            "is not a setting of this release",
        ),
        (
            _fragment(
                migrations=[
                    {
                        **_fragment()["migrations"][0],
                        "overrides": {"billing.late_fee.grace_days": "soon"},
                    }
                ]
            ),
            "invalid value",
        ),
        (
            _fragment(
                settings=[{"key": "billing.invoice.due_days", "type": "string", "default": "x"}]
            ),
            "already defined differently",
        ),
        ({"version": "9.0"}, "unknown field(s): version"),
    ]
    for fragment, message in wrong:
        with pytest.raises(InvalidInputError) as caught:
            V30_PLANNED.merged(fragment, "3.5")
        assert message in str(caught.value), (fragment, caught.value)
