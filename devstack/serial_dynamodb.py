"""Make moto's DynamoDB answer one request at a time.

Real DynamoDB makes every request atomic (transactions are serialisable). moto's in-memory backend
is not thread-safe: two transactions at once can interleave or crash while it snapshots the
table. The local stack and the tests send truly concurrent requests (that is the point of the
concurrency tests), so every DynamoDB and DynamoDB Streams request goes through one lock.
"""

from __future__ import annotations

import functools
import threading
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
    _installed = True
