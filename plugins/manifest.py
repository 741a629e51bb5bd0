"""``customization.toml``: parsing with every problem reported at once, each
naming the file and the field."""

from __future__ import annotations

import re
import reprlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from core.model.customizations import SLUG_PATTERN, CustomizationManifest

MANIFEST_FILE = "customization.toml"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
#: a product plugin's id is its directory or entry-point name ("acme_erp")
PRODUCT_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{1,62}$")
CAPABILITY_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
MODULE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_MODULE = "hooks"

_REQUIRED = ("name", "version", "tenants", "requires")
_OPTIONAL = (
    "tested_up_to",
    "capability",
    "description",
    "author",
    "module",
    "pure",
    "secrets",
    "product",
)
#: a setting key as customization.toml lists it under ``secrets``
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a customization: ``file:field: message``."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.field}: {self.message}"


@dataclass(frozen=True)
class ParsedManifest:
    manifest: CustomizationManifest
    #: the module (inside the package directory) holding the hook implementations
    module: str


def specifier(requires: str) -> SpecifierSet:
    """``requires`` as a specifier that also matches pre-releases (3.0rc1).

    Raises :class:`InvalidSpecifier` also for a version packaging accepts but
    cannot compare (a 5,000-digit segment passes ``SpecifierSet`` and raises
    ``ValueError`` on the first ``contains``, past Python's int-string limit)."""
    spec = SpecifierSet(requires, prereleases=True)
    for clause in spec:
        if clause.operator == "===" or clause.version.endswith(".*"):
            continue
        try:
            Version(clause.version)
        except ValueError:
            raise InvalidSpecifier(f"{clause.version!r} is not a comparable version") from None
    return spec


def _unique(
    items: list[Any],
    field: str,
    pattern: re.Pattern[str],
    what: str,
    bad: Callable[[str, str], None],
) -> list[str]:
    """The strings of a manifest list that match ``pattern``, each once; every other
    item is reported (``field[i]``) as not ``what``, or as listed twice."""
    found: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str) or not pattern.match(item):
            bad(f"{field}[{i}]", f"{item!r} is not {what}")
        elif item in found:
            bad(f"{field}[{i}]", f"{item!r} is listed twice")
        else:
            found.append(item)
    return found


def parse_manifest(path: Path) -> tuple[ParsedManifest | None, list[Problem]]:
    """Parse ``path`` (a customization.toml). Returns the manifest, or None with
    every problem found."""
    file = str(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(file, "-", f"no {MANIFEST_FILE}: every customization needs one")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file, "-", f"cannot read the file: {exc}")]
    return parse_manifest_text(content, file)


def parse_manifest_text(content: str, file: str) -> tuple[ParsedManifest | None, list[Problem]]:
    """Parse a customization.toml's text (``file`` names it in problems): the server
    reads a published package's manifest with this, never from its code."""
    try:
        data = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(file, "-", f"not valid TOML: {exc}")]
    except RecursionError:
        return None, [Problem(file, "-", "not valid TOML: nested too deeply")]
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(Problem(file, field, message))

    for field in _REQUIRED:
        if field not in data:
            bad(field, "missing required field")
    for field in sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL)):
        bad(field, f"unknown field; known fields: {', '.join(_REQUIRED + _OPTIONAL)}")

    def text(field: str) -> str | None:
        value = data.get(field)
        if value is None:
            return None
        if not isinstance(value, str):
            bad(field, f"must be a string, got {type(value).__name__}")
            return None
        return value

    name = text("name")
    if name is not None and not NAME_PATTERN.match(name):
        bad("name", f"{name!r} must be lowercase letters, digits and '-' (e.g. 'invoice-footer')")
    version = text("version")
    if version is not None:
        try:
            Version(version)
        except ValueError:  # InvalidVersion, or a segment beyond the int-string limit
            bad("version", f"{reprlib.repr(version)} is not a PEP 440 version (e.g. '1.2.0')")
    tenants = data.get("tenants")
    tenant_list: list[str] = []
    if tenants is not None:
        if not isinstance(tenants, list) or not tenants:
            bad("tenants", "must be a non-empty list of tenant slugs")
        else:
            tenant_list = _unique(tenants, "tenants", SLUG_PATTERN, "a tenant slug", bad)
    requires = text("requires")
    if requires is not None:
        try:
            specifier(requires)
        except InvalidSpecifier:
            bad(
                "requires",
                f"{reprlib.repr(requires)} is not a PEP 440 version specifier (e.g. '>=1.5,<3')",
            )
    tested = text("tested_up_to")
    if tested is not None:
        try:
            Version(tested)
        except ValueError:  # InvalidVersion, or a segment beyond the int-string limit
            bad("tested_up_to", f"{reprlib.repr(tested)} is not a PEP 440 version (e.g. '2.0')")
    capability = text("capability")
    if capability is not None and not CAPABILITY_PATTERN.match(capability):
        bad("capability", f"{capability!r} must be lowercase letters, digits and '-'")
    description = text("description") or ""
    author = text("author") or ""
    module = text("module") or DEFAULT_MODULE
    if not MODULE_PATTERN.match(module):
        bad("module", f"{module!r} is not a Python module name")
    pure = data.get("pure", True)
    if not isinstance(pure, bool):
        bad(
            "pure",
            f"must be true or false, got {type(pure).__name__} (false: the hooks' results "
            "depend on more than their inputs, and the tenants' answers are not cached)",
        )
    secrets: list[str] = []
    raw_secrets = data.get("secrets", [])
    if not isinstance(raw_secrets, list):
        bad("secrets", 'must be a list of setting keys (e.g. ["payments.gateway.api_key"])')
    else:
        secrets = _unique(
            raw_secrets, "secrets", KEY_PATTERN, "a setting key (e.g. 'payments.api_key')", bad
        )
    product = text("product")
    if product is not None and not PRODUCT_PATTERN.match(product):
        bad(
            "product",
            f"{product!r} must be a product id: lowercase letters, digits, '-' and '_' "
            "(e.g. 'acme_erp')",
        )
    if problems or name is None or version is None or requires is None:
        return None, problems
    manifest = CustomizationManifest(
        name=name,
        version=version,
        tenants=tuple(tenant_list),
        requires=requires,
        tested_up_to=tested,
        capability=capability,
        description=description,
        author=author,
        pure=pure is not False,
        secrets=tuple(secrets),
        product=product,
    )
    return ParsedManifest(manifest, module), []


def product_problem(
    manifest: CustomizationManifest, product: str | None, file: str
) -> Problem | None:
    """A customization naming another product than the served one (``product`` in
    its customization.toml) is not for this Tailor: its hooks and settings are
    another product's. One naming none loads for any product."""
    if manifest.product is None or product is None or manifest.product == product:
        return None
    return Problem(
        file,
        "product",
        f"{manifest.name} is a customization of product {manifest.product!r}, but this "
        f"Tailor serves product {product!r}: it is not loaded (serve {manifest.product!r}, "
        f"or port it and set product = {product!r})",
    )
