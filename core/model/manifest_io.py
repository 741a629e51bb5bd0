"""Release manifest files: TOML (the default) or JSON.

The file format (``schema_version = 2``; files of schema 1 are still read)::

    schema_version = 2            # optional (default 1); 2 is needed for renamed_hooks,
                                  # renamed_params, previous_type and conversion
    version = "3.0"               # PEP 440, pre-releases allowed ("3.0rc1")
    status = "planned"            # "released" or "planned"
    tailor_hook_api = "3"         # the Tailor hook API it runs on (default: the running
                                  # one's); its tailor_* hooks are that API's
    notes = "Acme ERP 3.0"
    supersedes = ["order-approval-routing"]   # capabilities folded into the product

    [renamed]                     # settings renamed in this release: old = new
    "security.sso.metadata_url" = "security.sso.discovery_url"

    [renamed_hooks]               # schema 2: hooks renamed in this release: old = new
    "acme_invoice_note" = "acme_invoice_footer"   # (same parameters, through
                                  # renamed_params; a change of shape is a replacement)

    [renamed_params.acme_invoice_footer]   # schema 2: per hook (its new name),
    "inv" = "invoice"             # parameters renamed in this release: old = new

    [[extension_points]]          # every hook valid in this release
    name = "tailor_setting_changed"
    params = ["tenant", "environment", "key", "old", "new", "actor"]
    description = "..."
    added = "1"                   # lifecycle: added / deprecated / removed, replacement
    deprecated = "3"              # (a tailor_* hook's are hook APIs, a product's versions)
    replacement = "tailor_settings_changed"
    stability = "stable"          # or "experimental"
    firstresult = false
    source = "tailor"             # or the host product's hookspec module

    [[settings]]                  # every setting definition valid in this release
    key = "billing.invoice.due_days"
    type = "int"                  # bool, int, float, string, enum, json
    default = 30
    min = 0                       # constraints: min, max (int/float), choices (enum),
    max = 365                     # pattern (string)
    description = "..."
    added = "1.0"
    previous_type = "string"      # schema 2: the type it had before this release, and
    conversion = "int"            # how a value of that type converts (core.model.conversions:
                                  # string, int, float, bool, list, scale:N)

Fields that are absent mean "none". Unknown fields anywhere are errors. A manifest
is validated fully before anything is stored: see
:meth:`core.model.manifest.ReleaseManifest.check`.
"""

from __future__ import annotations

import enum
import json
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from core.model.errors import InvalidInputError
from core.model.manifest import ReleaseManifest

#: the newest manifest file schema; every one of SCHEMA_VERSIONS is read
SCHEMA_VERSION = 2
SCHEMA_VERSIONS = (1, 2)
#: what schema 2 added: a schema-1 file using one is an error naming the field
SCHEMA_2_FIELDS = ("renamed_hooks", "renamed_params")
SCHEMA_2_SETTING_FIELDS = ("previous_type", "conversion")
#: largest manifest accepted (a real catalog of a few thousand settings is ~1 MB)
MAX_BYTES = 5_000_000


class ManifestFormat(enum.StrEnum):
    TOML = "toml"
    JSON = "json"


def dumps(manifest: ReleaseManifest, fmt: ManifestFormat | str = ManifestFormat.TOML) -> str:
    """The manifest as a file's text."""
    # the lowest schema that holds it: a manifest that uses nothing of schema 2
    # is written as schema 1, byte for byte what older Tailors read
    data = {"schema_version": manifest.schema_version, **manifest.to_dict()}
    if not data["renamed"]:
        del data["renamed"]
    if ManifestFormat(fmt) is ManifestFormat.JSON:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    try:
        return tomli_w.dumps(data, multiline_strings=False)
    except (TypeError, ValueError) as exc:
        # TOML has no null: a JSON default containing null cannot be written
        raise InvalidInputError(
            "format", f"the manifest cannot be written as TOML ({exc}); use JSON"
        ) from None


def dumps_fragment(fragment: dict[str, Any]) -> str:
    """A manifest fragment (settings, supersedes, migrations) as TOML."""
    try:
        return tomli_w.dumps({"schema_version": fragment_schema(fragment), **fragment})
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("fragment", f"cannot be written as TOML ({exc})") from None


def loads(text: str, fmt: ManifestFormat | str = ManifestFormat.TOML) -> ReleaseManifest:
    """Parse and validate a manifest; raise :class:`InvalidInputError` naming the
    field (or line) that is wrong."""
    return ReleaseManifest.from_dict(parse(text, fmt))


def parse(text: str, fmt: ManifestFormat | str = ManifestFormat.TOML) -> dict[str, Any]:
    """A manifest's or a fragment's text as a table (not validated beyond its
    syntax and schema version)."""
    try:
        fmt = ManifestFormat(fmt)
    except ValueError:
        raise InvalidInputError("format", f"{fmt!r} is not 'toml' or 'json'") from None
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise InvalidInputError("manifest", f"larger than {MAX_BYTES} bytes")
    try:
        data: Any = tomllib.loads(text) if fmt is ManifestFormat.TOML else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError("manifest", f"not valid {fmt.value.upper()}: {exc}") from None
    except RecursionError:
        # tomllib and json recurse once per nesting level: 10,000 '[' exhaust the stack
        raise InvalidInputError(
            "manifest", f"not valid {fmt.value.upper()}: nested too deeply"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInputError("manifest", "the top level must be a table/object")
    check_schema(data)
    return data


def check_schema(data: dict[str, Any]) -> int:
    """The schema version of a parsed manifest or fragment (1 when absent); an
    unknown one, or a schema-1 file using a field of schema 2, is an input error."""
    schema = data.get("schema_version", 1)
    if isinstance(schema, bool) or schema not in SCHEMA_VERSIONS:
        raise InvalidInputError(
            "schema_version",
            f"{schema!r} is not supported (this Tailor reads "
            f"{', '.join(map(str, SCHEMA_VERSIONS))})",
        )
    if schema < 2:
        used = [name for name in SCHEMA_2_FIELDS if name in data]
        settings = data.get("settings", [])
        for i, item in enumerate(settings if isinstance(settings, list) else []):
            if isinstance(item, dict):
                used += [f"settings[{i}].{n}" for n in SCHEMA_2_SETTING_FIELDS if n in item]
        if used:
            raise InvalidInputError(
                "schema_version",
                f"{', '.join(used)} need(s) schema_version = 2 (the file says {schema})",
            )
    return int(schema)


def fragment_schema(fragment: dict[str, Any]) -> int:
    """The lowest schema a fragment needs (2 when a setting declares a conversion)."""
    settings = fragment.get("settings", [])
    uses = any(
        isinstance(s, dict) and any(n in s for n in SCHEMA_2_SETTING_FIELDS) for s in settings
    )
    return 2 if uses else 1


def format_for(path: Path) -> ManifestFormat:
    return ManifestFormat.JSON if path.suffix.lower() == ".json" else ManifestFormat.TOML


def load_file(path: Path | str, fmt: ManifestFormat | str | None = None) -> ReleaseManifest:
    """Read a manifest file; the format follows the suffix unless given."""
    path = Path(path)
    text = _read(path)
    try:
        return loads(text, fmt or format_for(path))
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"{path.name}: {exc.field}", exc.message.split(": ", 1)[-1]
        ) from None


def load_fragment(path: Path | str, fmt: ManifestFormat | str | None = None) -> dict[str, Any]:
    """Read a manifest fragment (``tailor foldback propose`` writes them): checked
    when merged into a release (:meth:`ReleaseManifest.merged`)."""
    path = Path(path)
    text = _read(path)
    try:
        return parse(text, fmt or format_for(path))
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"{path.name}: {exc.field}", exc.message.split(": ", 1)[-1]
        ) from None


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError("file", f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInputError("file", f"{path} is not UTF-8 text") from None
    return text
