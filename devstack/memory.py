"""Samples the local stack's memory, and how much of it is data (``DEVSTACK_MEMORY_LOG``).

Every ``DEVSTACK_MEMORY_SECONDS`` (30) one JSON line goes to the file: the resident set size
(RSS) of the stack's processes (moto and the WeChat stand-in; the stream pump and the scheduler) and of
``chalice local``, and what the embedded DynamoDB holds -- items in its tables and records in
their streams, with their estimated bytes: the deep size of up to 1,000 sampled items (or
records), times their count, plus the containers that index them (moto's per-partition dicts and
the embedded DynamoDB's GSI partitions). RSS minus the data is what a leak would grow; the data grows with
every write, as a real table and stream would (the stream's 24 hours of history included, which
moto never trims).
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

SAMPLE = 1000


def deep_size(value: Any, seen: set[int] | None = None) -> int:
    """Bytes held by ``value`` and what it references (dicts, lists, objects' attributes)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, (list, tuple, set, frozenset)):
        size += sum(deep_size(v, seen) for v in value)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        size += deep_size(vars(value), seen)
    return size


def _estimate(objects: list[Any], size_of: Callable[[Any], int] = deep_size) -> int:
    if not objects:
        return 0
    sample = objects if len(objects) <= SAMPLE else random.sample(objects, SAMPLE)
    return int(sum(size_of(o) for o in sample) * len(objects) / len(sample))


def data_held() -> dict[str, int]:
    """Items and stream records of every moto DynamoDB table in this process, and their bytes."""
    from moto.dynamodb.models import dynamodb_backends

    from devstack import serial_dynamodb

    items: list[Any] = []
    records: list[Any] = []
    index_bytes = 0
    with serial_dynamodb.lock():
        for account in dynamodb_backends.values():
            for backend in account.values():
                for table in backend.tables.values():
                    index_bytes += sys.getsizeof(table.items)
                    for bucket in table.items.values():
                        items.extend(bucket.values() if table.range_key_attr else [bucket])
                        index_bytes += sys.getsizeof(bucket) if table.range_key_attr else 0
                    if table.stream_shard is not None:
                        records.extend(table.stream_shard.items)
                    index_bytes += _partition_bytes(table)
        # Under the lock: an update changes an item's attributes in place.
        return {"items": len(items), "item_bytes": _estimate(items),
                "stream_records": len(records), "stream_bytes": _estimate(records),
                "index_bytes": index_bytes}


def _partition_bytes(table: Any) -> int:
    """What the table's containers and the embedded DynamoDB's GSI partitions hold besides the
    items (serial_dynamodb part 3): they grow with every item written, like a real index."""
    from devstack import serial_dynamodb

    size = 0
    for partitions in (table.__dict__.get(serial_dynamodb._INDEX_ATTRIBUTE) or {}).values():
        size += sys.getsizeof(partitions.members) + sys.getsizeof(partitions.where)
        size += sum(sys.getsizeof(bucket) for bucket in partitions.members.values())
        size += _estimate([(primary, key, table) for primary, key in partitions.where.items()],
                          _entry_bytes)
    return size


def _entry_bytes(entry: tuple[Any, Any, Any]) -> int:
    """One `where` entry: its two tuples, and the primary key's values where they are copies
    (the index key's values are the item's own, counted with the item)."""
    from devstack import serial_dynamodb

    primary, key, table = entry
    item = serial_dynamodb._current(table, *primary)
    own = (getattr(item, "hash_key", None), getattr(item, "range_key", None))
    return sys.getsizeof(primary) + sys.getsizeof(key) + sum(
        deep_size(value) for value, mine in zip(primary, own) if value is not None and value is not mine)


class MemorySampler:
    """A daemon thread writing one line per interval (the first at start)."""

    def __init__(self, path: Path, interval: float, chalice_pid: Any, triggers_pid: Any = None) -> None:
        self._path = path
        self._interval = interval
        self._chalice_pid = chalice_pid  # a callable: the child's pid, or None
        self._triggers_pid = triggers_pid or (lambda: None)  # likewise, the triggers process (devstack/triggers.py)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._started = time.monotonic()

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def sample(self) -> dict[str, Any]:
        import psutil

        # stack_rss: this process and the triggers process (they were one process before).
        line: dict[str, Any] = {"t": round(time.monotonic() - self._started, 1), "ts": time.time(),
                                "stack_rss": psutil.Process().memory_info().rss}
        triggers = self._triggers_pid()
        try:
            line["triggers_rss"] = psutil.Process(triggers).memory_info().rss if triggers else None
        except psutil.Error:
            line["triggers_rss"] = None
        line["stack_rss"] += line["triggers_rss"] or 0
        pid = self._chalice_pid()
        try:
            line["chalice_rss"] = psutil.Process(pid).memory_info().rss if pid else None
        except psutil.Error:
            line["chalice_rss"] = None
        line.update(data_held())
        return line

    def _run(self) -> None:
        with self._path.open("a", encoding="utf-8", buffering=1) as out:
            while True:
                out.write(json.dumps(self.sample()) + "\n")
                if self._stop.wait(self._interval):
                    return  # no sample at stop: chalice local is stopping too
