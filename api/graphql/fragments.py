"""Walking a document's fragments once each, whatever the number of spreads.

A fragment that spreads the next one twice, thirty deep, is 2**30 selections when
every spread is walked again (strawberry's depth and alias limiters do that). The
request price (:mod:`api.graphql.cost`) and the document limits
(:mod:`api.graphql.limits`) both fold a document through :class:`FragmentFold`:
each fragment is folded once and remembered; an unknown or cyclic spread counts
as ``empty`` (validation refuses the document anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from graphql import DocumentNode, FragmentDefinitionNode

T = TypeVar("T")


class FragmentFold(Generic[T]):
    """``spread(name)``: the fold of fragment ``name``, computed at most once."""

    def __init__(
        self,
        document: DocumentNode,
        fold: Callable[[FragmentDefinitionNode, FragmentFold[T]], T],
        empty: T,
    ) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._fold = fold
        self._empty = empty
        self._memo: dict[str, T] = {}
        self._active: set[str] = set()

    def spread(self, name: str) -> T:
        if name in self._memo:
            return self._memo[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._active:
            return self._empty  # unknown or cyclic: validation refuses the document
        self._active.add(name)
        try:
            value = self._fold(fragment, self)
        finally:
            self._active.discard(name)
        self._memo[name] = value
        return value
