"""The local stack's server freezes what survives each full collection (devstack/serial_dynamodb.py,
part 11): the next full collection skips it, and dropped objects are still freed."""

from __future__ import annotations

import gc
import weakref

from devstack import serial_dynamodb


class _Thing:
    pass


def test_survivors_of_a_full_collection_are_frozen_and_still_freed_when_dropped():
    serial_dynamodb.stop_freezing()
    try:
        serial_dynamodb.freeze_after_full_collections()
        serial_dynamodb.freeze_after_full_collections()  # idempotent: one callback
        assert sum(1 for cb in gc.callbacks if cb in serial_dynamodb._freezing) == 1
        kept = [_Thing() for _ in range(1000)]
        gc.collect()
        assert gc.get_freeze_count() >= len(kept)
        probe = weakref.ref(kept[0])
        del kept
        assert probe() is None  # reference counting frees a frozen object as before
        gc.collect(1)  # a younger collection freezes nothing
    finally:
        serial_dynamodb.stop_freezing()
    assert gc.get_freeze_count() == 0 and not serial_dynamodb._freezing
