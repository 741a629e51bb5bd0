"""A vendor's product ("Ledger Books") numbered 1.0, 1.1 and planned 2.0, written
only as files, with customizations for it: the product issue 19 describes. Its
release files name no Tailor hook API (so each runs the running Tailor's) and its
numbering collides with the sample product's on purpose."""

from __future__ import annotations

import textwrap
from pathlib import Path

PRODUCT_TOML = """\
name = "Ledger Books"
version = "1.1"
releases = ["1.0", "1.1"]
"""

SETTING_RATE = """
[[settings]]
key = "ledger.tax.rate"
type = "float"
default = 0.2
min = 0.0
max = 1.0
added = "1.0"
"""

RELEASE_10 = 'version = "1.0"\nstatus = "released"\n' + SETTING_RATE

RELEASE_11 = (
    'version = "1.1"\nstatus = "released"\n'
    + SETTING_RATE
    + """
[[settings]]
key = "ledger.invoice.prefix"
type = "string"
default = "INV"
added = "1.1"
"""
)

PLANNED_20 = (
    'version = "2.0"\nstatus = "planned"\n'
    + SETTING_RATE
    + """
[[settings]]
key = "ledger.invoice.prefix"
type = "string"
default = "INV"
added = "1.1"

[[settings]]
key = "ledger.invoice.footer"
type = "string"
default = ""
added = "2.0"
"""
)

BATCH_TOML = """\
name = "ledger-batch"
version = "1.0.0"
product = "ledger"
tenants = ["books"]
requires = ">=1.0"
tested_up_to = "2.0"
description = "Rounds the tax rate for Books Inc, once per batch."
author = "Ledger consulting"
"""

BATCH_HOOKS = """\
import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_settings(tenant, values):
    return {"ledger.tax.rate": round(values["ledger.tax.rate"], 2)}
"""

LEGACY_TOML = """\
name = "ledger-legacy"
version = "1.0.0"
product = "ledger"
tenants = ["books"]
requires = ">=1.0"
tested_up_to = "2.0"
description = "The per-setting hook Tailor deprecated in its hook API 2."
author = "Ledger consulting"
"""

LEGACY_HOOKS = """\
import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def tailor_resolve_setting(key, value):
    return "LB" if key == "ledger.invoice.prefix" else None
"""


def write_ledger(root: Path) -> Path:
    """Write the product directory ``root/ledger`` (its id: ``ledger``)."""
    product = root / "ledger"
    (product / "releases").mkdir(parents=True)
    (product / "planned").mkdir()
    (product / "product.toml").write_text(PRODUCT_TOML)
    (product / "releases" / "1.0.toml").write_text(RELEASE_10)
    (product / "releases" / "1.1.toml").write_text(RELEASE_11)
    (product / "planned" / "2.0.toml").write_text(PLANNED_20)
    return product


def write_ledger_customizations(root: Path) -> Path:
    """Write ``root/ledger_customizations`` with ledger-batch and ledger-legacy."""
    folder = root / "ledger_customizations"
    for name, toml, hooks in (
        ("ledger_batch", BATCH_TOML, BATCH_HOOKS),
        ("ledger_legacy", LEGACY_TOML, LEGACY_HOOKS),
    ):
        package = folder / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "customization.toml").write_text(toml)
        (package / "hooks.py").write_text(textwrap.dedent(hooks))
    return folder
