"""Checkout deduction: freeze points against an order, then capture or release them.

A hold takes points out of the member's lots into `held` (ledger row `hold`, negative). Capture
spends them (ledger row `redeem`, 0 points: they already left the balance at hold time).
Release puts them back into the lots they came from (ledger row `release`). A hold not settled
within the program's `holds.ttl_minutes` is released by the frequent job, found through a
due-time queue on GSI2, so the job reads only holds that are due.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from chalicelib.auth.principals import TillPrincipal
from chalicelib.domain import balance
from chalicelib.domain.lots import Draw
from chalicelib.errors import Conflict, InsufficientPoints, InvalidRequest, NotFound
from chalicelib.services.idempotency import (
    TryAgain,
    fingerprint,
    first_answer,
    replay,
    reread_if_taken,
    with_retries,
)
from chalicelib.services.ledger import _ID, new_entry_id, now_utc, stamp
from chalicelib.services.members import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import LedgerItem, TableItem
from chalicelib.store.tx import Transaction

HELD, CAPTURED, RELEASED = "held", "captured", "released"
_MAX_TTL_DAYS = 8  # HoldPolicy.ttl_minutes is at most 7 days


class HoldIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    hold_id: str = Field(pattern=_ID)
    member_id: str = Field(pattern=_ID)
    order_id: str = Field(pattern=_ID)
    # The order's amount: the deduction may pay at most the program's share of it.
    order_amount_fen: StrictInt = Field(ge=1, le=10**12)
    points: StrictInt = Field(ge=1, le=10**9)


def max_points_for(order_amount_fen: int, points_per_yuan: int, max_share_pct: int) -> int:
    """The most points a checkout may deduct: share of the order, in whole fen of value."""
    return order_amount_fen * max_share_pct // 100 * points_per_yuan // 100


def _view(row: LedgerItem) -> dict[str, Any]:
    detail = row.detail or {}
    return {"hold_id": detail["hold_id"], "member_id": row.member_id, "order_id": detail["order_id"],
            "points": detail["points"], "deduction_fen": detail["deduction_fen"],
            "status": detail["status"], "expires_at": detail["expires_at"],
            **({"points_balance": detail["points_balance"]} if "points_balance" in detail else {})}


def place_hold(settings: Settings, till: TillPrincipal, body: HoldIn) -> tuple[dict[str, Any], int]:
    program_id = till.program_id
    config = program_config(settings, program_id)
    policy = config.holds
    cap = max_points_for(body.order_amount_fen, policy.points_per_yuan, policy.max_share_pct)
    if body.points > cap:
        raise InvalidRequest(f"at most {cap} points may be deducted from this order", code="hold_exceeds_cap")
    # Deduct whole fen only: points must convert exactly (10 points = 1 yuan = 100 fen by default).
    if body.points * 100 % policy.points_per_yuan:
        raise InvalidRequest("these points do not convert to a whole number of fen")
    request_hash = fingerprint(body)
    hold_key = keys.hold(program_id, body.hold_id)

    def attempt() -> tuple[dict[str, Any], int]:
        previous = store.get_item(LedgerItem, hold_key)
        if previous is not None:
            return replay(previous, request_hash, "hold_id")
        record = store.member(program_id, body.member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = now_utc()
        try:
            change = balance.spend(store.balances_of(record.account), record.lot_values, config.today(now),
                                   body.points, to_held=True)
        except (balance.NotEnoughPoints, balance.InDebt):
            if store.get_item(LedgerItem, hold_key) is not None:  # our duplicate landed since the first read
                raise TryAgain from None
            raise InsufficientPoints() from None
        expires_at = now + dt.timedelta(minutes=policy.ttl_minutes)
        answer = {"hold_id": body.hold_id, "member_id": body.member_id, "order_id": body.order_id,
                  "points": body.points, "deduction_fen": body.points * 100 // policy.points_per_yuan,
                  "status": HELD, "expires_at": stamp(expires_at), "points_balance": change.after.points}
        row = store.LedgerRow(
            key=hold_key, type="hold", points=-body.points, reason=f"frozen for order {body.order_id}",
            ref=body.hold_id, request_hash=request_hash, response=first_answer(answer),
            detail={**{k: answer[k] for k in ("hold_id", "order_id", "points", "deduction_fen", "status",
                                               "expires_at")},
                    "draws": [[d.expires_on.isoformat(), d.points] for d in change.draws]},
            extra={"gsi2pk": keys.holds_due(expires_at.date().isoformat()),
                   "gsi2sk": f"{stamp(expires_at)}#{program_id}#{body.hold_id}"},
        )
        with reread_if_taken("ledger"):
            store.apply_change(program_id, record.account, change,
                               {lot.expires_on: lot.remaining for lot in record.lot_values}, row, stamp(now),
                               new_entry_id(), activity_day=config.today(now).isoformat())
        return answer, 201

    return with_retries(settings, attempt)


def settle(settings: Settings, program_id: str, hold_id: str, outcome: str, reason: str) -> dict[str, Any]:
    """Capture or release a hold, once. Settling it again the same way answers the same."""
    config = program_config(settings, program_id)
    hold_key = keys.hold(program_id, hold_id)

    def attempt() -> dict[str, Any]:
        row = store.get_item(LedgerItem, hold_key)
        if row is None or row.type != "hold":
            raise NotFound("no such hold", code="hold_not_found")
        detail = dict(row.detail or {})
        if detail["status"] == outcome:
            return _view(row)
        if detail["status"] != HELD:
            raise Conflict(f"the hold was already {detail['status']}", code="hold_settled")
        record = store.member(program_id, row.member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = now_utc()
        points = int(detail["points"])
        before = store.balances_of(record.account)
        if outcome == CAPTURED:
            if before.held < points:  # held counts this hold while open: settled since we read it
                raise TryAgain
            change = balance.capture(before, points)
            entry_type, entry_points = "redeem", 0
        else:
            draws = [Draw(dt.date.fromisoformat(day), int(n)) for day, n in detail["draws"]]
            change = balance.restore(before, draws, config.today(now), from_held=points)
            entry_type, entry_points = "release", change.after.points - before.points
        settled = {**detail, "status": outcome, "settled_at": stamp(now), "points_balance": change.after.points}
        ledger_row = store.LedgerRow(
            key=keys.program_operation(program_id, outcome, hold_id), type=entry_type, points=entry_points,
            reason=reason, ref=hold_id, request_hash=None, response=None,
            detail={"hold_id": hold_id, "order_id": detail["order_id"], "held_points": points},
        )

        def mark(tx: Transaction) -> None:
            tx.update(LedgerItem(*hold_key),
                      actions=[LedgerItem.detail.set(settled), LedgerItem.gsi2pk.remove(), LedgerItem.gsi2sk.remove()],
                      condition=LedgerItem.pk.exists(), label="hold")

        with reread_if_taken("ledger"):  # settled concurrently: re-read and answer from its status
            store.apply_change(program_id, record.account, change,
                               {lot.expires_on: lot.remaining for lot in record.lot_values}, ledger_row,
                               stamp(now), new_entry_id(), extra=mark)
        row.detail = settled
        return {**_view(row), "points_balance": change.after.points}

    return with_retries(settings, attempt)


def release_due_holds(settings: Settings, now: dt.datetime, limit: int = 500) -> dict[str, int]:
    """Release every unsettled hold whose time ran out (the frequent job). Reads only due holds."""
    released = 0
    cutoff = stamp(now)
    # Every day a due hold can sit on: a missed week of runs still catches up.
    for days_back in range(_MAX_TTL_DAYS, -1, -1):
        day = (now - dt.timedelta(days=days_back)).date().isoformat()
        for item in TableItem.gsi2.query(keys.holds_due(day), TableItem.gsi2sk <= cutoff, limit=limit):
            _, program_id, hold_id = item.gsi2sk.split("#", 2)
            try:
                settle(settings, program_id, hold_id, RELEASED, "hold expired unsettled")
                released += 1
            except Conflict:
                pass
    return {"released": released}
