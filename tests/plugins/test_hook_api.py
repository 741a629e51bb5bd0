"""Tailor's hook API: the history of Tailor's own hooks, numbered independently of
any product, and how a release manifest names the API it runs on."""

from __future__ import annotations

import pytest

from core.analysis.readiness.evaluation import check_customization
from core.analysis.readiness.vocabulary import Code
from core.analysis.release_diff import diff
from core.model.errors import InvalidInputError, ProductError
from core.model.manifest_io import loads
from plugins import hookspecs
from plugins.catalog import Catalog, hook_apis, tailor_extension_points, with_hook_api
from plugins.evidence import read_package
from plugins.loading import default_directory, inspect_customization
from plugins.product import load_directory
from tests.ledger import write_ledger, write_ledger_customizations
from tests.sample import ACME, V30_PLANNED, acme_manifest


def names(api: str) -> set[str]:
    return {p.name for p in tailor_extension_points(api)}


def test_the_history_of_tailors_hooks():
    assert hookspecs.HOOK_API == "2"
    assert hook_apis() == ("1", "2", "3")
    base = {"tailor_register_settings", "tailor_validate_setting", "tailor_setting_changed"}
    assert names("1") == base | {"tailor_resolve_setting"}
    assert names("2") == base | {"tailor_resolve_setting", "tailor_resolve_settings"}
    assert names("3") == base | {"tailor_resolve_settings", "tailor_settings_changed"}
    assert all(p.source == "tailor" for p in tailor_extension_points("2"))


@pytest.mark.parametrize(
    ("api", "fragment"),
    [
        ("9", "'9' is not a Tailor hook API this Tailor knows (known: 1, 2, 3; it runs 2)"),
        ("2.0", "'2.0' is not a Tailor hook API: name one as a string of digits"),
        ("0", "'0' is not a Tailor hook API"),
    ],
)
def test_an_unknown_hook_api_is_an_input_error(api, fragment):
    with pytest.raises(InvalidInputError) as exc:
        tailor_extension_points(api)
    assert exc.value.field == "tailor_hook_api"
    assert fragment in exc.value.message


def test_the_sample_product_names_its_apis_so_its_findings_stay():
    apis = {v: acme_manifest(v).tailor_hook_api for v in ACME.release_history}
    assert apis == {"1.0": "1", "1.5": "2", "2.0": "2"}
    assert V30_PLANNED.tailor_hook_api == "3"
    assert {p.name for p in V30_PLANNED.extension_points if p.is_tailor} == names("3")
    # the true finding: Acme's planned 3.0 runs API 3, in which the per-setting hook is gone
    package = read_package(default_directory() / "globex_invoice_branding")
    assert package.registration is not None, package.problems
    result = check_customization(
        V30_PLANNED, package.registration, [acme_manifest(v) for v in ACME.release_history]
    )
    removed = [f for f in result.findings if f.code is Code.HOOK_REMOVED]
    assert [f.evidence["hook"] for f in removed] == ["tailor_resolve_setting"]
    assert removed[0].message.startswith(
        "implements tailor_resolve_setting, which Tailor hook API 3 (the API of 3.0) no longer "
        "has: removed in API 3 (last in 2.0)"
    )
    assert removed[0].evidence["replacement"] == "tailor_resolve_settings"


def test_a_vendor_planned_release_on_api_3_gets_the_true_removal(tmp_path):
    """The findings about Tailor's hooks come from the hook API a release names:
    a vendor moving its planned 2.0 to API 3 gets the removal, with no history
    of its own to tell it."""
    root = write_ledger(tmp_path)
    planned = root / "planned" / "2.0.toml"
    planned.write_text(planned.read_text().replace('status = "planned"\n', _API3))
    product = load_directory(root)
    target = product.planned_manifest(product.planned[0], tailor_extension_points)
    history = [product.manifest(v, tailor_extension_points) for v in product.release_history]
    legacy = read_package(write_ledger_customizations(tmp_path) / "ledger_legacy")
    assert legacy.registration is not None
    result = check_customization(target, legacy.registration, history)
    assert [(f.code, f.evidence["replacement"]) for f in result.findings] == [
        (Code.HOOK_REMOVED, "tailor_resolve_settings")
    ]
    # and release diff 1.1 -> 2.0: the vendor's own change, plus one line for the API
    changes = diff(history[-1], target).changes
    assert [(c.kind, c.name, c.change) for c in changes] == [
        ("hook_api", "tailor_hook_api", "changed"),
        ("setting", "ledger.invoice.footer", "added"),
    ]
    assert changes[0].breaking
    assert changes[0].details[0] == "Tailor hook API 2 -> 3"


_API3 = 'status = "planned"\ntailor_hook_api = "3"\n'


def test_product_files_name_a_known_api_and_list_only_its_hooks(tmp_path):
    root = write_ledger(tmp_path)
    (root / "releases" / "1.0.toml").write_text(
        'version = "1.0"\nstatus = "released"\ntailor_hook_api = "7"\n'
    )
    planned = root / "planned" / "2.0.toml"
    planned.write_text(
        planned.read_text()
        + '\n[[extension_points]]\nname = "tailor_brand_new"\nparams = ["tenant"]\n'
    )
    with pytest.raises(ProductError) as exc:
        load_directory(root)
    problems = "\n".join(exc.value.problems)
    assert "1.0.toml: tailor_hook_api: '7' is not a Tailor hook API this Tailor knows" in problems
    assert (
        "2.0.toml: extension_points: tailor_brand_new is not a hook of Tailor hook API 2"
        in problems
    )


def test_an_imported_manifest_gets_its_apis_hooks():
    bare = loads('version = "4.0"\nstatus = "planned"\n')
    assert bare.tailor_hook_api is None
    named = with_hook_api(bare)
    assert named.tailor_hook_api == hookspecs.HOOK_API
    assert {p.name for p in named.extension_points} == names("2")
    on3 = with_hook_api(loads('version = "4.0"\ntailor_hook_api = "3"\n'))
    assert {p.name for p in on3.extension_points} == names("3")
    # an exported manifest lists its API's hooks: accepted as they are
    from core.model.manifest_io import dumps

    assert with_hook_api(loads(dumps(on3))) == on3
    for text, fragment in (
        (
            'version = "4.0"\n[[extension_points]]\nname = "tailor_nope"\n',
            "tailor_nope is not a hook of Tailor hook API 2",
        ),
        (
            'version = "4.0"\n[[extension_points]]\nname = "shop_hook"\n',
            "shop_hook has source 'tailor' (the default) but is not one of Tailor's",
        ),
        ('version = "4.0"\ntailor_hook_api = "12"\n', "'12' is not a Tailor hook API"),
    ):
        with pytest.raises(InvalidInputError) as exc:
            with_hook_api(loads(text))
        assert fragment in exc.value.message, text


def test_a_hook_of_a_later_api_is_refused_at_load(write_customization):
    """tailor_settings_changed arrives in hook API 3; this Tailor runs API 2, so
    nothing would call an implementation: refused, saying so."""
    path = write_customization(
        "early", "@hookimpl\ndef tailor_settings_changed(tenant, changes):\n    return None\n"
    )
    loaded = inspect_customization(path, Catalog.for_product(ACME))
    assert [(p.field, p.message) for p in loaded.problems] == [
        (
            "tailor_settings_changed",
            "'tailor_settings_changed' is not in Tailor hook API 2, the one this Tailor runs "
            "(it is in API 3): nothing would call it",
        )
    ]


@pytest.mark.parametrize(
    ("product", "refused"),
    [(None, False), ("acme_erp", False), ("ledger", True)],
)
def test_a_customization_loads_only_for_its_product(write_customization, product, refused):
    """No ``product``: loads for any product (compatibility); the served one's:
    loads; another's: refused before its code is imported, naming both."""
    path = write_customization("mine", "raise SystemExit('imported')\n", product=product)
    loaded = inspect_customization(path, Catalog.for_product(ACME))
    fields = [p.field for p in loaded.problems]
    if refused:
        assert fields == ["product"]
        assert loaded.problems[0].message == (
            "mine is a customization of product 'ledger', but this Tailor serves product "
            "'acme_erp': it is not loaded (serve 'ledger', or port it and set "
            "product = 'acme_erp')"
        )
    else:  # its code was imported: it raised
        assert fields == ["import"]


def test_a_product_must_be_a_product_id(write_customization):
    path = write_customization("bad", "", product="no spaces allowed")
    loaded = inspect_customization(path, Catalog.for_product(ACME))
    assert loaded.problems[0].field == "product"
    assert "'no spaces allowed' must be a product id" in loaded.problems[0].message
