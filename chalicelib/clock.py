"""The one clock. Everything that needs "now" calls `clock.now()`; tests move time by patching it."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stamp(moment: dt.datetime) -> str:
    """Sortable UTC timestamp with milliseconds: ledger rows and queues order by it."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")
