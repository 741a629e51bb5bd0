"""Loading a product plugin: the directory form, the entry point, and bad
declarations reported all at once (file and field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.model.errors import ProductError
from plugins.catalog import Catalog
from plugins.product import PRODUCT_ENV, load_directory, load_product
from tests.sample import ACME_DIR
from tests.widgets import write_product


def problems(path: Path) -> list[str]:
    with pytest.raises(ProductError) as caught:
        load_directory(path)
    return list(caught.value.problems)


def test_a_product_directory_loads(tmp_path):
    product = load_directory(write_product(tmp_path))
    assert (product.id, product.name, product.version) == ("widgets", "Widget Works", "2.1")
    assert product.release_history == ("2.0", "2.1")
    assert [m.version for m in product.planned] == ["3.0"]
    assert [d.key for d in product.definitions("2.0")] == [
        "shop.cart.max_items",
        "shop.checkout.guest",
        "shop.theme.color",
    ]
    assert product.supersedes("2.1") == ("gift-wrapping",)
    # the product's hooks carry its id; Tailor's come from Tailor's catalog
    catalog = Catalog.for_product(product)
    assert catalog.release == "2.1"
    assert catalog.get("widgets_shipping_quote").source == "widgets"
    assert catalog.get("tailor_resolve_settings").source == "tailor"
    assert catalog.setting_categories == frozenset({"shop"})


def test_the_sample_product_is_the_installed_entry_point(monkeypatch):
    monkeypatch.delenv(PRODUCT_ENV, raising=False)
    product = load_product()
    assert (product.id, product.name, product.version) == ("acme_erp", "Acme ERP", "2.0")
    assert product.reference == "acme_erp"
    assert load_product("acme_erp").release_history == ("1.0", "1.5", "2.0")
    assert load_product(str(ACME_DIR)).name == "Acme ERP"


def test_tailor_product_names_a_directory(monkeypatch, tmp_path):
    monkeypatch.setenv(PRODUCT_ENV, str(write_product(tmp_path)))
    assert load_product().name == "Widget Works"


def test_an_unknown_product_name_is_refused_with_the_installed_ones(monkeypatch):
    monkeypatch.setenv(PRODUCT_ENV, "globex_crm")
    with pytest.raises(ProductError) as caught:
        load_product()
    assert "'globex_crm'" in caught.value.message and "acme_erp" in caught.value.message


def test_every_problem_at_once_naming_file_and_field(tmp_path):
    root = write_product(tmp_path)
    (root / "product.toml").write_text(
        'name = "Widget Works"\nversion = "2.x"\nreleases = ["2.0", "2.1", "1.9"]\ncolour = 1\n'
    )
    r21 = (root / "releases" / "2.1.toml").read_text()
    (root / "releases" / "2.1.toml").write_text(r21.replace("max = 500", 'max = 500\nunit = "x"'))
    (root / "releases" / "2.5.toml").write_text('version = "2.5"\n')
    found = problems(root)
    text = "\n".join(found)
    assert len(found) == 5, text
    assert f"{root / 'product.toml'}: colour: unknown field" in text
    assert f"{root / 'product.toml'}: version: '2.x' is not a PEP 440 version" in text
    assert f"{root / 'product.toml'}: releases[2]: '1.9' is not after '2.1'" in text
    assert f"{root / 'releases' / '2.1.toml'}: settings[0] (shop.cart.max_items)" in text
    assert "unit" in text
    assert f"{root / 'releases' / '2.5.toml'}: -: release '2.5' is not listed" in text


def test_missing_files_and_fields(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    assert problems(root) == [f"{root / 'product.toml'}: -: missing file"]
    (root / "product.toml").write_text('releases = ["1.0"]\n')
    found = problems(root)
    assert f"{root / 'product.toml'}: name: required" in "\n".join(found)
    assert f"{root / 'product.toml'}: version: required" in "\n".join(found)
    assert f"{root / 'releases' / '1.0.toml'}: -: missing file" in "\n".join(found)


def test_a_release_manifest_that_contradicts_the_history(tmp_path):
    root = write_product(tmp_path)
    r21 = root / "releases" / "2.1.toml"
    # 2.1 drops shop.checkout.guest although 2.0 never said it is removed
    text = r21.read_text()
    start = text.index('[[settings]]\nkey = "shop.checkout.guest"')
    end = text.index("[[settings]]", start + 1)
    r21.write_text(text[:start] + text[end:])
    found = problems(root)
    assert found == [
        f"{r21}: settings['shop.checkout.guest']: missing: release 2.0 lists it (added 2.0), "
        "and neither sets 'removed' by 2.1 nor does 2.1 rename it"
    ]
    # a file that claims to be another release
    r21.write_text(r21.read_text().replace('version = "2.1"', 'version = "2.2"'))
    assert problems(root) == [f"{r21}: version: '2.2', but the file is for release '2.1'"]


def test_hookspecs_must_match_the_running_release(tmp_path):
    root = write_product(tmp_path)
    (root / "hookspecs.py").write_text(
        (root / "hookspecs.py")
        .read_text()
        .replace("def widgets_shipping_quote(tenant, order):", "def widgets_shipping_quote(order):")
        + '\n\n@hookspec\ndef tailor_sneaky(tenant):\n    """Not allowed."""\n'
    )
    found = "\n".join(problems(root))
    r21 = root / "releases" / "2.1.toml"
    assert (
        f"{r21}: extension_points['widgets_shipping_quote'].params: (tenant, order) "
        f"contradicts hookspecs.py ((order))" in found
    )
    assert f"{root / 'hookspecs.py'}: tailor_sneaky: the prefix 'tailor_' is reserved" in found
    (root / "hookspecs.py").unlink()
    assert problems(root) == [
        f"{r21}: extension_points['widgets_shipping_quote']: declared for the running "
        "release, but there is no hookspecs.py defining its hookspec"
    ]


def test_a_broken_hookspecs_module_is_a_problem_not_a_crash(tmp_path):
    root = write_product(tmp_path)
    (root / "hookspecs.py").write_text("import pluggy\n\n1 / 0\n")
    (found,) = problems(root)
    assert found.startswith(f"{root / 'hookspecs.py'}: import: ZeroDivisionError")
    assert "(line 3)" in found
