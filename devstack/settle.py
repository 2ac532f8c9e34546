"""Waiting until the stream functions have caught up (for the e2e tests and the load runs).

A shard is delivered in order, so once a marker item written now has reached a stream function
(ok, or parked on the failure queue), so has everything written before it. Each function polls
the stream on its own, as on Lambda: the marker must reach every one of them. ``rounds`` > 1 writes
a new marker after each, so that what the reactions wrote meanwhile is delivered too (a ledger row
-> its notification job -> the sender). The stream pump logs every invocation to
``DEVSTACK_PUMP_LOG``, one JSON line each; that log is what this reads.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

_REACHED = ("ok", "dead_lettered")


class PumpLog:
    """The pump's log, read on from where the last read stopped, whole lines only (the pump may
    be writing a long line in pieces as we read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.functions: set[str] = set()  # every function the log has named so far
        self._offset = 0

    def new_entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        entries = [json.loads(line) for line in complete.decode("utf-8", errors="replace").splitlines()
                   if line.strip()]
        self.functions.update(entry["function"] for entry in entries)
        return entries


def settle(client: Any, table_name: str, log: PumpLog, *, functions: set[str] | None = None, rounds: int = 1,
           timeout: float = 15.0, poll: float = 0.1, prefix: str = "SETTLE") -> float:
    """Wait until every stream function (``functions``, or every one the log has seen) has been
    handed a marker written now, ``rounds`` times over; seconds taken. Raises TimeoutError."""
    began = time.monotonic()
    for _ in range(rounds):
        key = {"pk": {"S": f"{prefix}#settle#{uuid.uuid4().hex}"}, "sk": {"S": "MARKER"}}
        marker = key["pk"]["S"]
        client.put_item(TableName=table_name, Item=key)
        reached: set[str] = set()
        try:
            while True:
                for entry in log.new_entries():
                    if entry.get("outcome") in _REACHED and any(
                            r["keys"].get("pk") == marker for r in entry["records"]):
                        reached.add(entry["function"])
                wanted = functions if functions is not None else log.functions
                if wanted and reached >= wanted:
                    break
                if time.monotonic() - began > timeout:
                    raise TimeoutError(f"the stream functions did not catch up in {timeout:.0f} s: "
                                       f"{sorted(reached)} of {sorted(wanted)}")
                time.sleep(poll)
        finally:
            client.delete_item(TableName=table_name, Key=key)
    return time.monotonic() - began
