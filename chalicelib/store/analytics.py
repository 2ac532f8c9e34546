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

from chalicelib.domain.analytics import COUNTERS, TIER_PREFIX
from chalicelib.store import keys
from chalicelib.store.models import (
    ActiveMarkItem,
    CountedItem,
    DayCounterItem,
    DaySummaryItem,
    RepurchaseItem,
    TableItem,
    TierCountItem,
)
from chalicelib.store.tx import ConditionsFailed, Transaction, TransactionConflict

# Stream records are kept 24 hours: a marker older than that can never meet its change again.
MARKER_DAYS = 3
_CONFLICT_RETRIES = 5


def count_once(program_id: str, day: str, source: tuple[str, str], what: str, counts: Mapping[str, int],
               active_member: str | None, now: dt.datetime, tiers: Mapping[str, int] | None = None) -> bool:
    """Add `counts` (and tier moves) to the day unless this change was counted before; False if it was."""
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
        for tier, moved in (tiers or {}).items():  # same shard partition, one item per tier
            tx.update(TierCountItem(*keys.tier_count(program_id, day, str(shard), tier)), actions=[
                TierCountItem.kind.set(TierCountItem), TierCountItem.program_id.set(program_id),
                TierCountItem.day.set(day), TierCountItem.tier.set(tier), TierCountItem.members.add(int(moved))],
                label=f"tier:{tier}")
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


def read_days(program_id: str, days: Iterable[str], tiers: Iterable[str] = ()) -> dict[str, dict[str, int]]:
    """Each day's counters summed over its shards (BatchGetItem; eventually consistent is fine:
    a report is a moment's view), and "tier:<code>" for each of `tiers` (members moved in - out)."""
    days, tiers = list(days), list(tiers)
    wanted = [keys.day_counter(program_id, day, str(shard)) for day in days for shard in range(keys.DAY_SHARDS)]
    wanted += [keys.tier_count(program_id, day, str(shard), tier)
               for day in days for shard in range(keys.DAY_SHARDS) for tier in tiers]
    totals: dict[str, dict[str, int]] = {}
    for item in TableItem.batch_get(wanted):
        if isinstance(item, DayCounterItem):
            into = totals.setdefault(str(item.day), dict.fromkeys(COUNTERS, 0))
            for name, value in _counts_of(item).items():
                into[name] += value
        elif isinstance(item, TierCountItem):
            into = totals.setdefault(str(item.day), dict.fromkeys(COUNTERS, 0))
            name = f"{TIER_PREFIX}{item.tier}"
            into[name] = into.get(name, 0) + int(item.members or 0)
    return totals


def save_summary(program_id: str, day: str, counts: Mapping[str, int], now: str) -> None:
    DaySummaryItem(*keys.day_summary(program_id, day), program_id=program_id, day=day,
                   counts={**{name: int(counts.get(name) or 0) for name in COUNTERS},
                           **{name: int(v) for name, v in counts.items() if name.startswith(TIER_PREFIX) and v}},
                   closed_at=now).save()


def summaries_through(program_id: str, last_day: str,
                      repurchase: dict[str, int | None] | None = None) -> dict[str, dict[str, int]]:
    """Every closed day of the program up to `last_day`, by day (one Query, paged); the `rfm`
    job's repurchase rates of those days go into `repurchase` (same partition, same Query)."""
    pk = keys.day_summary_partition(program_id)
    _, upper = keys.day_summary(program_id, last_day)
    found: dict[str, dict[str, int]] = {}
    # DAY#<day> sorts before REPURCHASE#<day>: the rates are read only when asked for.
    condition = None if repurchase is not None else TableItem.sk <= upper
    for item in TableItem.query(pk, condition):
        if str(getattr(item, "day", "")) > last_day:
            continue
        if isinstance(item, DaySummaryItem):
            counts = dict(item.counts or {})
            found[str(item.day)] = {**{name: int(counts.get(name) or 0) for name in COUNTERS},
                                    **{k: int(v) for k, v in counts.items() if k.startswith(TIER_PREFIX)}}
        elif isinstance(item, RepurchaseItem) and repurchase is not None:
            repurchase[str(item.day)] = None if item.rate_bp is None else int(item.rate_bp)
    return found


def save_repurchase(program_id: str, day: str, window_from: str, ordered: int, repeat: int,
                    rate_bp: int | None) -> None:
    RepurchaseItem(*keys.day_repurchase(program_id, day), program_id=program_id, day=day, window_from=window_from,
                   ordered=ordered, repeat=repeat, rate_bp=rate_bp).save()
