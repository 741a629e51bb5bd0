"""Build a fleet-sized answer without the cyclic garbage collector's pauses.

A readiness run or a fold-back analysis builds hundreds of thousands of small,
acyclic objects (rows, findings, statuses). Each 700 allocations start a young
collection, and as the heap grows CPython runs full collections that traverse
every tracked object: measured on a 1,000-tenant fleet, more than half of the
run (``bench/fleet.py``). Reference counting frees these objects anyway; the
cyclic collector finds nothing among them.

:func:`gc_paused` turns the cyclic collector off for the duration of such a
build and back on when the last overlapping build ends (builds interleave in
one event loop: the pause lasts while any of them runs). Cyclic garbage made
meanwhile, by anyone, is collected by the first collection after it; the pause
is as long as the slowest build (seconds at the 10,000-tenant scale).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the block runs (re-entrant)."""
    global _depth, _was_enabled
    if _depth == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _was_enabled:
            gc.enable()
