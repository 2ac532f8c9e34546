"""The daily member-lifecycle jobs: expire points, remind of expiring points, birthday gifts,
dormant members. Each is a job step (see `jobs.py`): a bounded page of work, resumable state.

Every job reads sparse, sharded GSI2 queues keyed by calendar day, so its cost grows with the
work of the day (lots expiring, birthdays, members who went quiet), never with the table.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib import clock, ids
from chalicelib.domain import balance
from chalicelib.domain.lots import Lot
from chalicelib.jobs import JobContext, Step
from chalicelib.services.idempotency import TryAgain, with_retries
from chalicelib.services.programs import program_config
from chalicelib.store import keys, programs
from chalicelib.store import ledger as store
from chalicelib.store.models import (
    AccountItem,
    LedgerItem,
    LotItem,
    ProfileItem,
    ReminderItem,
    TableItem,
    WinbackItem,
)
from chalicelib.store.tx import ConditionsFailed

PAGE = 100
DORMANT_DAYS = 15


# --- expire points ---------------------------------------------------------------------------

def _expiry_start(ctx: JobContext) -> dt.date:
    """The first expiry day this run looks at: the day after the cursor, or the program's first
    day (no lot can expire before it). Read through the program cache: a stale cursor only means
    re-reading days whose lots are gone (empty queries)."""
    program = programs.get_program(ctx.settings, ctx.program_id)
    if program is not None and program.expired_through:
        return dt.date.fromisoformat(program.expired_through) + dt.timedelta(days=1)
    created = program.created_on if program is not None and program.created_on else ctx.as_of.isoformat()
    return dt.date.fromisoformat(created)


def expire_lot(ctx: JobContext, member_id: str, expires_on: str, seen_remaining: int) -> int:
    """Expire what remains of one lot, once: the ledger row is keyed by the lot's day."""
    program_id = ctx.program_id

    def attempt(remaining: int) -> int:
        account = store.get_item(AccountItem, keys.account(program_id, member_id))
        if account is None or remaining <= 0:
            return 0
        change = balance.expire(store.balances_of(account), Lot(dt.date.fromisoformat(expires_on), remaining))
        row = store.LedgerRow(
            key=keys.member_operation(program_id, member_id, "expire", expires_on), type="expire",
            points=-remaining, reason=f"points expiring {expires_on} expired", ref=f"lot:{expires_on}",
            request_hash=None, response=None, detail={"expires_on": expires_on},
        )
        store.apply_change(program_id, account, change, {dt.date.fromisoformat(expires_on): remaining}, row,
                           clock.stamp(clock.now()), ids.new_entry_id())
        return remaining

    state = {"remaining": seen_remaining}

    def guarded() -> int:
        try:
            return attempt(state["remaining"])
        except ConditionsFailed as failed:
            if "ledger" in failed.labels:
                # Already expired (an earlier, interrupted attempt got this far): count what it
                # expired, so a page done again after a crash reports the same totals.
                done = store.get_item(LedgerItem, keys.member_operation(program_id, member_id, "expire", expires_on))
                return -int(done.points) if done is not None else 0
            if any(label.startswith("lot:") for label in failed.labels):
                # The queue's copy was stale: read the lot itself and try with what it holds.
                lot = store.get_item(LotItem, keys.lot(program_id, member_id, expires_on))
                state["remaining"] = int(lot.remaining) if lot else 0
                raise TryAgain from None
            raise

    return with_retries(ctx.settings, guarded)


def expire_step(ctx: JobContext) -> Step:
    """Expire every lot whose expiry day is before as_of and after the cursor, a page at a time."""
    last_day = ctx.as_of - dt.timedelta(days=1)
    day = dt.date.fromisoformat(ctx.state["day"]) if "day" in ctx.state else _expiry_start(ctx)
    shard = int(ctx.state.get("shard", 0))
    if day > last_day:
        return Step(True, {}, {"lots_expired": 0, "points_expired": 0})
    query = TableItem.gsi2.query(keys.expiry_queue_partition(ctx.program_id, day.isoformat(), shard), limit=PAGE,
                                 last_evaluated_key=ctx.state.get("last_key"))
    expired = points = 0
    resume_after = ctx.state.get("last_key")
    for lot in query:
        if not isinstance(lot, LotItem):  # the expiry queue holds lots only
            continue
        try:
            gone = expire_lot(ctx, lot.member_id, lot.expires_on, int(lot.remaining))
        except Exception as exc:  # noqa: BLE001 - saved progress, then re-raised by the runner
            state = {"day": day.isoformat(), "shard": shard, "last_key": resume_after}
            return Step(False, state, {"lots_expired": expired, "points_expired": points}, error=exc)
        expired += 1 if gone else 0
        points += gone
        resume_after = _queue_key(lot)
    counts = {"lots_expired": expired, "points_expired": points}
    if query.last_evaluated_key:
        return Step(False, {"day": day.isoformat(), "shard": shard, "last_key": query.last_evaluated_key}, counts)
    if shard + 1 < keys.EXPIRY_SHARDS:
        return Step(False, {"day": day.isoformat(), "shard": shard + 1}, counts)
    # The whole day is done: move the cursor, so later runs need not read this day again.
    programs.mark_expired_through(ctx.program_id, day.isoformat())
    next_day = day + dt.timedelta(days=1)
    return Step(next_day > last_day, {"day": next_day.isoformat()}, {**counts, "days": 1})


def _queue_key(item: TableItem) -> dict[str, Any]:
    """The GSI2 position just after `item`, as a query's last_evaluated_key."""
    return {name: {"S": getattr(item, name)} for name in ("pk", "sk", "gsi2pk", "gsi2sk")}


# --- expiry reminders ------------------------------------------------------------------------

def remind_step(ctx: JobContext) -> Step:
    """One shard: every lot expiring in one of the configured offsets from as_of. A member's
    lots all sit in one shard, so each member gets one reminder listing them all, once."""
    config = program_config(ctx.settings, ctx.program_id)
    shard = int(ctx.state.get("shard", 0))
    due: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for days_left in sorted(set(config.expiry.reminder_days)):
        day = (ctx.as_of + dt.timedelta(days=days_left)).isoformat()
        for lot in TableItem.gsi2.query(keys.expiry_queue_partition(ctx.program_id, day, shard)):
            if isinstance(lot, LotItem) and int(lot.remaining) > 0:
                due[lot.member_id].append({"date": day, "points": int(lot.remaining), "days_left": days_left})
    sent = 0
    for member_id, lots in due.items():
        item = ReminderItem(*keys.reminder(ctx.program_id, member_id, ctx.as_of.isoformat()),
                            program_id=ctx.program_id, member_id=member_id, day=ctx.as_of.isoformat(), lots=lots,
                            points=sum(lot["points"] for lot in lots), created_at=clock.stamp(clock.now()))
        sent += _put_once(item)
    counts = {"reminders": sent, "lots_reminded": sum(len(v) for v in due.values())}
    return Step(shard + 1 >= keys.EXPIRY_SHARDS, {"shard": shard + 1}, counts)


def _put_once(item: TableItem) -> int:
    try:
        item.save(condition=TableItem.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return 0
        raise
    return 1


# --- birthday gifts --------------------------------------------------------------------------

def birthdays_on(as_of: dt.date) -> list[str]:
    """The birthdays (MM-DD) celebrated on `as_of`: the birthday queues a gift job reads."""
    days = [as_of.strftime("%m-%d")]
    leap = as_of.year % 4 == 0 and (as_of.year % 100 != 0 or as_of.year % 400 == 0)
    if as_of.month == 2 and as_of.day == 28 and not leap:
        days.append("02-29")  # born on 29 February: celebrated on the 28th in other years
    return days


def birthday_step(ctx: JobContext) -> Step:
    """Birthday gift points by tier, once per member per year (the ledger row is keyed by year)."""
    config = program_config(ctx.settings, ctx.program_id)
    shard = int(ctx.state.get("shard", 0))
    gifted = points = 0
    for month_day in birthdays_on(ctx.as_of):
        for profile in TableItem.gsi2.query(keys.birthday_queue_partition(ctx.program_id, month_day, shard)):
            if isinstance(profile, ProfileItem):
                gift = _birthday_gift(ctx, config, profile.member_id)
                gifted += 1 if gift else 0
                points += gift
    return Step(shard + 1 >= keys.MEMBER_SHARDS, {"shard": shard + 1}, {"gifts": gifted, "gift_points": points})


def _birthday_gift(ctx: JobContext, config: Any, member_id: str) -> int:
    program_id = ctx.program_id
    row_key = keys.member_operation(program_id, member_id, "birthday", str(ctx.as_of.year))

    def attempt() -> int:
        account = store.get_item(AccountItem, keys.account(program_id, member_id))
        if account is None:
            return 0
        tier = config.tier(account.tier)
        if tier.birthday_gift_points <= 0:
            return 0
        from chalicelib.domain.lots import expiry_day

        change = balance.earn(store.balances_of(account), tier.birthday_gift_points,
                              expiry_day(config.expiry, ctx.as_of))
        row = store.LedgerRow(key=row_key, type="earn", points=tier.birthday_gift_points,
                              reason=f"birthday gift ({tier.name})", ref=f"birthday:{ctx.as_of.year}",
                              request_hash=None, response=None)
        try:
            store.apply_change(program_id, account, change, None, row, clock.stamp(clock.now()), ids.new_entry_id())
        except ConditionsFailed as failed:
            if "ledger" in failed.labels:
                return 0
            raise
        return tier.birthday_gift_points

    return with_retries(ctx.settings, attempt)


# --- dormant members -------------------------------------------------------------------------

def dormant_step(ctx: JobContext) -> Step:
    """Members whose last activity was exactly DORMANT_DAYS ago: queue a win-back, once."""
    shard = int(ctx.state.get("shard", 0))
    last_active = (ctx.as_of - dt.timedelta(days=DORMANT_DAYS)).isoformat()
    query = TableItem.gsi2.query(keys.activity_queue_partition(ctx.program_id, last_active, shard), limit=PAGE,
                                 last_evaluated_key=ctx.state.get("last_key"))
    queued = 0
    for row in query:
        if not isinstance(row, LedgerItem):
            continue
        account = store.get_item(AccountItem, keys.account(ctx.program_id, row.member_id))
        if account is None or account.last_active_on != last_active:
            continue  # active again since
        queued += _put_once(WinbackItem(*keys.winback(ctx.program_id, row.member_id, last_active),
                                        program_id=ctx.program_id, member_id=row.member_id, last_active=last_active,
                                        days_idle=DORMANT_DAYS, created_at=clock.stamp(clock.now())))
    counts = {"winbacks": queued}
    if query.last_evaluated_key:
        return Step(False, {"shard": shard, "last_key": query.last_evaluated_key}, counts)
    return Step(shard + 1 >= keys.MEMBER_SHARDS, {"shard": shard + 1}, counts)
