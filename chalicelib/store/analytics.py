"""Day counters: counting a change exactly once, reading a day back, closed days.

Counting is one transaction: a marker keyed by the counted item itself (guarded by not existing:
a redelivered change fails it and adds nothing) and an ADD on one of DAY_SHARDS counter shards of
the day, chosen by the item's identity. Markers live in the counted item's own key space (one
write each, never shared), shards take 1/DAY_SHARDS of the day's writes each, so no item or
partition is hot. A change that makes a member active also puts the member's mark for the day:
if that mark exists already, the change is counted again without it.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any, Iterable, Mapping

from pynamodb.expressions.update import Action

from chalicelib.domain.analytics import COUNTERS
from chalicelib.store import keys
from chalicelib.store.models import ActiveMarkItem, CountedItem, DayCounterItem, DaySummaryItem, TableItem
from chalicelib.store.tx import ConditionsFailed, Transaction, TransactionConflict

# Stream records are kept 24 hours: a marker older than that can never meet its change again.
MARKER_DAYS = 3
_CONFLICT_RETRIES = 5


def count_once(program_id: str, day: str, source: tuple[str, str], what: str, counts: Mapping[str, int],
               active_member: str | None, now: dt.datetime) -> bool:
    """Add `counts` to the day unless this change was counted before; False if it was."""
    expires = now + dt.timedelta(days=MARKER_DAYS)
    shard = keys.day_shard(f"{source[0]}|{source[1]}|{what}")
    counter_key = keys.day_counter(program_id, day, str(shard))

    def attempt(with_active: bool) -> None:
        tx = Transaction()
        tx.put(CountedItem(*keys.counted(source[0], source[1], what), day=day, ttl=expires),
               CountedItem.pk.does_not_exist(), label="counted")
        adding = dict(counts)
        if with_active and active_member:
            tx.put(ActiveMarkItem(*keys.active_mark(program_id, day, active_member), day=day, ttl=expires),
                   ActiveMarkItem.pk.does_not_exist(), label="active")
            adding["active_members"] = adding.get("active_members", 0) + 1
        actions: list[Action] = [DayCounterItem.program_id.set(program_id), DayCounterItem.day.set(day),
                                 DayCounterItem.kind.set(DayCounterItem)]
        for name in COUNTERS:
            if adding.get(name):
                actions.append(getattr(DayCounterItem, name).add(int(adding[name])))
        tx.update(DayCounterItem(*counter_key), actions=actions, label="counts")
        tx.commit()

    def once(with_active: bool) -> None:
        # Two transactions on one shard at the same moment: DynamoDB cancels one; try again shortly.
        for retry in range(_CONFLICT_RETRIES):
            try:
                attempt(with_active)
                return
            except TransactionConflict:
                if retry == _CONFLICT_RETRIES - 1:
                    raise  # the record fails; the stream delivers it again (nothing was written)
                time.sleep(random.uniform(0.005, 0.02) * (retry + 1))

    try:
        once(with_active=True)
    except ConditionsFailed as failed:
        if "counted" in failed.labels:
            return False
        if "active" not in failed.labels:
            raise
        try:
            once(with_active=False)
        except ConditionsFailed as again:
            if "counted" in again.labels:
                return False
            raise
    return True


def _counts_of(item: Any) -> dict[str, int]:
    return {name: int(getattr(item, name) or 0) for name in COUNTERS}


def read_days(program_id: str, days: Iterable[str]) -> dict[str, dict[str, int]]:
    """Each day's counters summed over its shards (BatchGetItem; eventually consistent is fine:
    a report is a moment's view)."""
    wanted = [keys.day_counter(program_id, day, str(shard)) for day in days for shard in range(keys.DAY_SHARDS)]
    totals: dict[str, dict[str, int]] = {}
    for item in DayCounterItem.batch_get(wanted):
        into = totals.setdefault(str(item.day), dict.fromkeys(COUNTERS, 0))
        for name, value in _counts_of(item).items():
            into[name] += value
    return totals


def save_summary(program_id: str, day: str, counts: Mapping[str, int], now: str) -> None:
    DaySummaryItem(*keys.day_summary(program_id, day), program_id=program_id, day=day,
                   counts={name: int(counts.get(name) or 0) for name in COUNTERS}, closed_at=now).save()


def summaries_through(program_id: str, last_day: str) -> dict[str, dict[str, int]]:
    """Every closed day of the program up to `last_day`, by day (one Query, paged)."""
    pk = keys.day_summary_partition(program_id)
    _, upper = keys.day_summary(program_id, last_day)
    found: dict[str, dict[str, int]] = {}
    for item in TableItem.query(pk, TableItem.sk <= upper):
        if isinstance(item, DaySummaryItem):
            found[str(item.day)] = {name: int((item.counts or {}).get(name) or 0) for name in COUNTERS}
    return found
