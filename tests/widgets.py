"""A second, small host product ("Widget Works"), written only as files: its own
settings, two releases, a planned third, one extension point, and one
customization for it. Tailor's code knows nothing of it."""

from __future__ import annotations

import textwrap
from pathlib import Path

PRODUCT_TOML = """\
name = "Widget Works"
version = "2.1"
releases = ["2.0", "2.1"]
"""

RELEASE_20 = """\
version = "2.0"
status = "released"
notes = "Widget Works 2.0"

[[extension_points]]
name = "widgets_shipping_quote"
params = ["tenant", "order"]
description = "A shipping quote for an order."
added = "2.0"

[[settings]]
key = "shop.cart.max_items"
type = "int"
default = 50
min = 1
max = 500
added = "2.0"

[[settings]]
key = "shop.checkout.guest"
type = "bool"
default = true
added = "2.0"

[[settings]]
key = "shop.theme.color"
type = "string"
default = "#336699"
pattern = "^#[0-9a-f]{6}$"
added = "2.0"
removed = "2.1"
"""

RELEASE_21 = """\
version = "2.1"
status = "released"
supersedes = ["gift-wrapping"]

[[extension_points]]
name = "widgets_shipping_quote"
params = ["tenant", "order"]
description = "A shipping quote for an order."
added = "2.0"

[[settings]]
key = "shop.cart.max_items"
type = "int"
default = 50
min = 1
max = 500
added = "2.0"

[[settings]]
key = "shop.checkout.guest"
type = "bool"
default = true
added = "2.0"
deprecated = "2.1"
replacement = "shop.checkout.mode"

[[settings]]
key = "shop.checkout.mode"
type = "enum"
default = "both"
choices = ["guest", "account", "both"]
added = "2.1"
"""

PLANNED_30 = """\
version = "3.0"
status = "planned"
supersedes = ["express-shipping"]

[[extension_points]]
name = "widgets_shipping_quote"
params = ["tenant", "order"]
added = "2.0"

[[settings]]
key = "shop.cart.max_items"
type = "int"
default = 50
min = 1
max = 100
added = "2.0"

[[settings]]
key = "shop.checkout.mode"
type = "enum"
default = "both"
choices = ["guest", "account", "both"]
added = "2.1"
"""

HOOKSPECS = '''\
"""Widget Works' extension points."""

import pluggy

from plugins.lifecycle import lifecycle

hookspec = pluggy.HookspecMarker("tailor")


@hookspec
@lifecycle(added="2.0")
def widgets_shipping_quote(tenant, order):
    """A shipping quote for an order."""
'''

CUSTOMIZATION_TOML = """\
name = "bolt-express"
version = "1.0.0"
tenants = ["bolt", "volt"]
requires = ">=2.0"
tested_up_to = "2.1"
capability = "express-shipping"
description = "Express quotes and a bigger cart for Bolt."
author = "Widget consulting"
"""

CUSTOMIZATION_HOOKS = """\
import pluggy

hookimpl = pluggy.HookimplMarker("tailor")


@hookimpl
def widgets_shipping_quote(tenant, order):
    return {"carrier": "bolt-express", "tenant": tenant, "price": order["weight"] * 2}


@hookimpl
def tailor_resolve_settings(values):
    if values.get("shop.checkout.guest"):
        return {"shop.cart.max_items": 200}
    return {}
"""


def write_product(root: Path) -> Path:
    """Write the product directory under ``root``; return it."""
    product = root / "widgets"
    (product / "releases").mkdir(parents=True)
    (product / "planned").mkdir()
    (product / "product.toml").write_text(PRODUCT_TOML)
    (product / "releases" / "2.0.toml").write_text(RELEASE_20)
    (product / "releases" / "2.1.toml").write_text(RELEASE_21)
    (product / "planned" / "3.0.toml").write_text(PLANNED_30)
    (product / "hookspecs.py").write_text(HOOKSPECS)
    return product


def write_customization(root: Path) -> Path:
    """Write the customizations directory (one customization) under ``root``."""
    folder = root / "widget_customizations" / "bolt_express"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "customization.toml").write_text(CUSTOMIZATION_TOML)
    (folder / "hooks.py").write_text(textwrap.dedent(CUSTOMIZATION_HOOKS))
    return folder.parent
