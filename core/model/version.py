"""Tailor's own version: the one place it is written.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``), ``tailor --version``
prints it, and ``RELEASES.toml`` (the release record: each release's commit,
schema head and the earlier releases that keep working on its schema) starts with
it. How a release is cut and deployed: docs/operations.md, "Upgrading Tailor
itself".
"""

from __future__ import annotations

VERSION = "0.3.0"
