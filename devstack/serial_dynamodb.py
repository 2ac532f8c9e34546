"""Make moto's DynamoDB answer one request at a time, and make its transactions cheap.

1. Real DynamoDB makes every request atomic (transactions are serialisable). moto's in-memory
   backend is not thread-safe: two transactions at once can interleave or crash while it
   snapshots the table. The local stack and the tests send truly concurrent requests (that is the
   point of the concurrency tests), so every DynamoDB and DynamoDB Streams request goes through
   one lock.

2. For its rollback, moto deep-copies the whole table, stream history included, once per item of
   every transaction: the cost of a write grows with the table, and a 10,000-item table exhausts
   memory within a hundred transactions. Under the lock nothing else can change the table during a
   transaction, so a snapshot of just the items it touches (and the stream's length) restores
   exactly the same state on failure.
"""

from __future__ import annotations

import copy
import functools
import threading
from types import SimpleNamespace
from typing import Any

_lock = threading.RLock()
_installed = False


def install() -> None:
    """Idempotent; call before moto serves any request (server or in-process)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action

        @functools.wraps(original)
        def call_action(self: Any, _original: Any = original) -> Any:
            with _lock:
                return _original(self)

        handler.call_action = call_action  # type: ignore[method-assign]
    _cheap_transaction_rollback()
    _installed = True


def _cheap_transaction_rollback() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    # moto's own snapshot becomes the live table (no copy); we snapshot the touched items instead.
    models.copy = SimpleNamespace(  # type: ignore[attr-defined]
        deepcopy=lambda value, *a, **k: value if isinstance(value, Table) else copy.deepcopy(value, *a, **k),
        copy=copy.copy,
    )
    original = models.DynamoDBBackend.transact_write_items

    def touched(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
        found = []
        for entry in transact_items:
            (_, op), = entry.items()
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or {name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr)
                                    if name and name in op.get("Item", {})}
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            found.append((table, hash_value, range_value))
        return found

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        items = touched(self, transact_items)
        saved = [(table, h, r, copy.deepcopy(table.get_item(h, r))) for table, h, r in items]
        streams = {id(t): (t, len(t.stream_shard.items)) for t, _, _ in items if t.stream_shard is not None}
        try:
            original(self, transact_items)
        except Exception:
            for table, h, r, before in reversed(saved):
                _restore(table, h, r, before)
            for table, length in streams.values():
                del table.stream_shard.items[length:]
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _restore(table: Any, hash_value: Any, range_value: Any, before: Any) -> None:
    if table.range_key_attr:
        bucket = table.items[hash_value]
        if before is None:
            bucket.pop(range_value, None)
            if not bucket:
                table.items.pop(hash_value, None)
        else:
            bucket[range_value] = before
    elif before is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = before
