"""Lifecycle of a release-tracked thing (a setting definition, an extension point):
the product versions in which it was added, deprecated and removed (PEP 440)."""

from __future__ import annotations

from packaging.version import Version


class Lifecycle:
    """Mixin for frozen dataclasses with ``added``, ``deprecated`` and ``removed``
    fields (each a version string or None)."""

    __slots__ = ()

    def defined_in(self, version: Version) -> bool:
        """Present in ``version``: ``added <= version < removed``."""
        added, removed = getattr(self, "added", None), getattr(self, "removed", None)
        if added and version < Version(added):
            return False
        return not (removed and version >= Version(removed))

    def deprecated_in(self, version: Version) -> bool:
        deprecated = getattr(self, "deprecated", None)
        if not deprecated:
            return False
        return version >= Version(deprecated)
