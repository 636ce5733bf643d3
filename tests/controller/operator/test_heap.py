"""``settle_heap``: the steady heap leaves the cyclic collector's generations after a
solve, and the periodic full collection still frees cyclic garbage among it. (The
conftest unfreezes the collector after each test.)"""

from __future__ import annotations

import gc
import weakref

from controller.operator.process import settle_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settling_freezes_what_is_alive() -> None:
    gc.unfreeze()
    kept = [_Node() for _ in range(100)]
    settle_heap(collect=False)
    assert gc.get_freeze_count() >= len(kept)
    assert not any(gc.is_tracked(k) and k in gc.get_objects(generation=2) for k in kept[:3])


def test_the_periodic_collection_frees_a_cycle_that_died_while_frozen() -> None:
    gc.unfreeze()
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: its reference counts never reach zero
    alive = weakref.ref(a)
    settle_heap(collect=False)
    del a, b
    gc.collect()  # an ordinary collection does not look at frozen objects
    assert alive() is not None
    settle_heap(collect=True)
    assert alive() is None
    assert gc.get_freeze_count() > 0  # and what is alive is frozen again


def test_young_garbage_is_collected_not_frozen() -> None:
    gc.unfreeze()
    gc.collect()  # counts at zero: no automatic collection promotes the cycle below
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b  # unreachable before the solve ends: collected by settling, never frozen
    settle_heap(collect=False)
    assert alive() is None
