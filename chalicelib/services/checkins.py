"""Daily check-in and one-off tasks: points and growth through the ledger, once by construction.

A check-in's ledger row is keyed by the member and the calendar day (program time zone), so a
second check-in that day (or twenty at once) finds the row and awards nothing. A task's row is
keyed by the member and the task: it pays once per member, ever.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib import clock, ids
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.domain import balance, checkin, lots
from chalicelib.services.idempotency import reread_if_taken, with_retries
from chalicelib.services.members import resolve_member_id
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import CheckinStateItem, LedgerItem
from chalicelib.store.tx import ConditionsFailed, Transaction


def check_in(settings: Settings, principal: MemberPrincipal) -> dict[str, Any]:
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    config = program_config(settings, program_id)

    def attempt() -> dict[str, Any]:
        now = clock.now()
        today = config.today(now)
        row_key = keys.member_operation(program_id, member_id, "checkin", today.isoformat())
        record = store.member(program_id, member_id)
        if record is None:
            from chalicelib.errors import NotFound

            raise NotFound("no such member", code="member_not_found")
        state = record.checkin
        last_day = dt.date.fromisoformat(state.last_date) if state else None
        if state is not None and last_day == today:
            return {"date": today.isoformat(), "streak": int(state.streak), "points_awarded": 0,
                    "growth_awarded": 0, "new": False}
        streak = checkin.next_streak(last_day, int(state.streak) if state else 0, today)
        reward = checkin.reward(config.checkin, streak)
        change = balance.earn(store.balances_of(record.account), reward.points, lots.expiry_day(config.expiry, today),
                              reward.growth, today.strftime("%Y-%m"))
        answer = {"date": today.isoformat(), "streak": streak, "points_awarded": reward.points,
                  "growth_awarded": reward.growth, "new": True}
        row = store.LedgerRow(
            key=row_key, type="earn", points=reward.points, growth=reward.growth,
            reason=f"check-in day {streak}" + (f" (+{reward.bonus_points} bonus)" if reward.bonus_points else ""),
            ref=f"checkin:{today.isoformat()}", request_hash=None, response=answer,
            detail={"streak": streak, "day_of_cycle": reward.day_of_cycle, "bonus_points": reward.bonus_points},
        )

        def streak_state(tx: Transaction) -> None:
            item = CheckinStateItem(*keys.checkin_state(program_id, member_id), last_date=today.isoformat(),
                                    streak=streak)
            guard = (CheckinStateItem.pk.does_not_exist() if state is None
                     else CheckinStateItem.last_date == state.last_date)
            tx.put(item, guard, label="checkin")

        with reread_if_taken("ledger", "checkin"):  # checked in concurrently: the next read says new=false
            store.apply_change(program_id, record.account, change,
                               {lot.expires_on: lot.remaining for lot in record.lot_values}, row, clock.stamp(now),
                               ids.new_entry_id(), extra=streak_state, activity_day=today.isoformat())
        return answer

    return with_retries(settings, attempt)


def complete_task(settings: Settings, program_id: str, member_id: str, task: str) -> bool:
    """Award a one-off task; False if the program has no such task or it was already paid."""
    config = program_config(settings, program_id)
    rule = config.tasks.get(task)
    if rule is None or (rule.points == 0 and rule.growth == 0):
        return False
    row_key = keys.member_operation(program_id, member_id, "task", task)

    def attempt() -> bool:
        if store.get_item(LedgerItem, row_key) is not None:
            return False
        record = store.member(program_id, member_id)
        if record is None:
            return False
        now = clock.now()
        today = config.today(now)
        change = balance.earn(store.balances_of(record.account), rule.points, lots.expiry_day(config.expiry, today),
                              rule.growth, today.strftime("%Y-%m"))
        row = store.LedgerRow(key=row_key, type="earn", points=rule.points, growth=rule.growth,
                              reason=f"task {task} completed", ref=f"task:{task}", request_hash=None, response=None)
        try:
            store.apply_change(program_id, record.account, change, None, row, clock.stamp(now), ids.new_entry_id())
        except ConditionsFailed as failed:
            if "ledger" in failed.labels:
                return False
            raise
        return True

    return with_retries(settings, attempt)
