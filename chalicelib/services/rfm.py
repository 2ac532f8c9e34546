"""The nightly `rfm` job: every member's orders in the window (one Query of their ledger history
each, refunds included), scored together (domain/rfm.py), one RfmItem per member.

It scores a program in one step, in memory: about 100 bytes a member, so a Lambda's memory and
15 minutes hold a few hundred thousand members (beyond that it would need two passes).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

from chalicelib import clock
from chalicelib.domain import rfm
from chalicelib.jobs import JobContext, Step
from chalicelib.services.programs import program_config
from chalicelib.store import keys
from chalicelib.store.models import LedgerItem, OrderItem, ProfileItem, RfmItem, TableItem


def _months_before(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month + 1, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def member_ids(program_id: str) -> list[str]:
    found = []
    for shard in range(keys.MEMBER_SHARDS):
        for item in TableItem.gsi1.query(keys.members_list_partition(program_id, shard)):
            if isinstance(item, ProfileItem):
                found.append(str(item.member_id))
    return found


def orders_of(program_id: str, member_id: str, since_stamp: str, local_ordinal: Callable[[str], int],
              last_ordinal: int) -> list[rfm.OrderFact]:
    """The member's orders since the window began, with what was refunded of them (one Query)."""
    amounts: dict[str, tuple[int, int]] = {}
    refunded: dict[str, int] = {}
    query = TableItem.gsi1.query(keys.points_history(program_id, member_id), TableItem.gsi1sk >= since_stamp)
    for row in query:
        if not isinstance(row, LedgerItem) or local_ordinal(str(row.created_at)) > last_ordinal:
            continue
        if isinstance(row, OrderItem):
            order_id = str(row.pk).rsplit("#ORDER#", 1)[-1]
            amounts[order_id] = (local_ordinal(str(row.created_at)), int(row.amount_fen))
        elif str(row.sk).startswith("REFUND#") and row.ref:
            detail = row.detail if isinstance(row.detail, dict) else json.loads(row.detail or "{}")
            refunded[str(row.ref)] = refunded.get(str(row.ref), 0) + int(detail.get("amount_fen") or 0)
    return [rfm.OrderFact(order_id, day, amount, refunded.get(order_id, 0))
            for order_id, (day, amount) in amounts.items()]


def rfm_step(ctx: JobContext) -> Step:
    config = program_config(ctx.settings, ctx.program_id)
    rules = config.rfm
    first_day = _months_before(ctx.as_of, rules.window_months)
    since = dt.datetime.combine(first_day, dt.time(0), config.zone)
    since_stamp = clock.stamp(since)

    def local_ordinal(stamp: str) -> int:
        return config.local_day(dt.datetime.fromisoformat(stamp)).toordinal()

    raws: list[rfm.Raw] = []
    members = member_ids(ctx.program_id)
    for member_id in members:
        facts = orders_of(ctx.program_id, member_id, since_stamp, local_ordinal, ctx.as_of.toordinal())
        found = rfm.raw_of(member_id, facts, ctx.as_of.toordinal())
        if found is not None:
            raws.append(found)
    scores, how = rfm.score(raws, rules)
    as_of = ctx.as_of.isoformat()
    with RfmItem.batch_write() as batch:
        for s in scores:
            batch.save(RfmItem(*keys.rfm(ctx.program_id, s.member_id), program_id=ctx.program_id,
                               member_id=s.member_id, as_of=as_of, r=s.r, f=s.f, m=s.m, segment=s.segment,
                               recency_days=s.raw.recency_days, frequency=s.raw.frequency,
                               monetary_fen=s.raw.monetary_fen))
    segments: dict[str, int] = {}
    for s in scores:
        segments[s.segment or "-"] = segments.get(s.segment or "-", 0) + 1
    repeat = sum(1 for r in raws if r.frequency >= 2)
    summary: dict[str, Any] = {
        "as_of": as_of, "window_from": first_day.isoformat(), "members": len(members), "scored": len(scores),
        "without_orders": len(members) - len(scores), "scoring": how, "segments": segments,
        # members with 2+ orders over members with 1+ in the window (basis points)
        "repurchase_rate_bp": (repeat * 10000 // len(raws)) if raws else None,
    }
    # The day's report row shows it (insight, second pass).
    from chalicelib.store import analytics as analytics_store

    analytics_store.save_repurchase(ctx.program_id, as_of, first_day.isoformat(), len(raws), repeat,
                                    summary["repurchase_rate_bp"])
    return Step(done=True, summary=summary)


def view(program_id: str, member_id: str) -> dict[str, Any] | None:
    from chalicelib.store import ledger as store

    item = store.get_item(RfmItem, keys.rfm(program_id, member_id))
    if item is None:
        return None
    return {"member_id": member_id, "as_of": item.as_of, "r": int(item.r), "f": int(item.f), "m": int(item.m),
            "score": f"{int(item.r)}{int(item.f)}{int(item.m)}", "segment": item.segment,
            "recency_days": int(item.recency_days), "frequency": int(item.frequency),
            "monetary_fen": int(item.monetary_fen)}
