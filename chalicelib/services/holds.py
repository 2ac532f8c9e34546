"""Checkout deduction: freeze points against an order, then capture or release them.

A hold is its own item (`HoldItem`, status held -> captured | released), written in the same
transaction as its ledger row `hold` (negative: the points leave the balance into `held`).
Capture spends them (ledger row `redeem`, 0 points: they already left the balance at hold
time). Release puts them back into the lots they came from (ledger row `release`). The hold sits
in two queues through two index slots: gsi1 lists the member's holds (reconciliation), gsi2 is
the due queue the frequent job reads while the hold is open, so a hold not settled within the
program's `holds.ttl_minutes` releases itself whatever else the member did that day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from chalicelib import clock, ids
from chalicelib.auth.principals import TillPrincipal
from chalicelib.domain import balance
from chalicelib.domain.lots import Draw
from chalicelib.errors import Conflict, InsufficientPoints, InvalidRequest, NotFound
from chalicelib.services.idempotency import CallerKey, TryAgain, fingerprint, reread_if_taken, with_retries
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import HoldItem, TableItem
from chalicelib.store.tx import Transaction

HELD, CAPTURED, RELEASED = "held", "captured", "released"
_MAX_TTL_DAYS = 8  # HoldPolicy.ttl_minutes is at most 7 days


class HoldIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    hold_id: str = Field(pattern=ids.ID_PATTERN)
    member_id: str = Field(pattern=ids.ID_PATTERN)
    order_id: str = Field(pattern=ids.ID_PATTERN)
    # The order's amount: the deduction may pay at most the program's share of it.
    order_amount_fen: StrictInt = Field(ge=1, le=10**12)
    points: StrictInt = Field(ge=1, le=10**9)


def max_points_for(order_amount_fen: int, points_per_yuan: int, max_share_pct: int) -> int:
    """The most points a checkout may deduct: share of the order, in whole fen of value."""
    return order_amount_fen * max_share_pct // 100 * points_per_yuan // 100


def _view(hold: HoldItem) -> dict[str, Any]:
    return {"hold_id": hold.hold_id, "member_id": hold.member_id, "order_id": hold.order_id,
            "points": int(hold.points), "deduction_fen": int(hold.deduction_fen), "status": hold.status,
            "expires_at": hold.expires_at,
            **({"points_balance": int(hold.settled_balance)} if hold.settled_balance is not None else {})}


def _due_slot(program_id: str, hold_id: str, expires_at: dt.datetime) -> tuple[str, str]:
    return keys.holds_due(expires_at.date().isoformat()), f"{clock.stamp(expires_at)}#{program_id}#{hold_id}"


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
    caller_key = CallerKey("hold_id", keys.hold(program_id, body.hold_id), fingerprint(body))

    def attempt() -> tuple[dict[str, Any], int]:
        replayed = caller_key.lookup(HoldItem)
        if replayed:
            return replayed
        record = store.member(program_id, body.member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = clock.now()
        try:
            change = balance.spend(store.balances_of(record.account), record.lot_values, config.today(now),
                                   body.points, to_held=True)
        except (balance.NotEnoughPoints, balance.InDebt):
            if caller_key.lookup(HoldItem) is not None:  # our duplicate landed since the first read
                raise TryAgain from None
            raise InsufficientPoints() from None
        expires_at = now + dt.timedelta(minutes=policy.ttl_minutes)
        deduction = body.points * 100 // policy.points_per_yuan
        answer = {"hold_id": body.hold_id, "member_id": body.member_id, "order_id": body.order_id,
                  "points": body.points, "deduction_fen": deduction, "status": HELD,
                  "expires_at": clock.stamp(expires_at), "points_balance": change.after.points}
        due_pk, due_sk = _due_slot(program_id, body.hold_id, expires_at)
        hold = HoldItem(
            *caller_key.item_key, program_id=program_id, member_id=body.member_id, hold_id=body.hold_id,
            order_id=body.order_id, points=body.points, deduction_fen=deduction, status=HELD,
            expires_at=clock.stamp(expires_at), created_at=clock.stamp(now),
            draws=[[d.expires_on.isoformat(), d.points] for d in change.draws],
            request_hash=caller_key.request_hash, response=caller_key.answer(answer),
            gsi1pk=keys.member_holds(program_id, body.member_id), gsi1sk=f"{clock.stamp(now)}#{body.hold_id}",
            gsi2pk=due_pk, gsi2sk=due_sk,
        )
        row = store.LedgerRow(
            key=keys.member_operation(program_id, body.member_id, "hold", body.hold_id), type="hold",
            points=-body.points, reason=f"frozen for order {body.order_id}", ref=body.hold_id,
            request_hash=None, response=None, detail={"hold_id": body.hold_id, "order_id": body.order_id},
        )

        def hold_item(tx: Transaction) -> None:
            tx.put(hold, HoldItem.pk.does_not_exist(), label="hold")
            if till.nonce is not None:
                till.nonce.add_to(tx)

        with reread_if_taken("ledger", "hold"):
            store.apply_change(program_id, record.account, change, _lots(record), row, clock.stamp(now),
                               ids.new_entry_id(), extra=hold_item, activity_day=config.today(now).isoformat())
        return answer, 201

    return with_retries(settings, attempt)


def _lots(record: Any) -> dict[dt.date, int]:
    return {lot.expires_on: lot.remaining for lot in record.lot_values}


def settle(settings: Settings, program_id: str, hold_id: str, outcome: str, reason: str,
           till: TillPrincipal | None = None) -> dict[str, Any]:
    """Capture or release a hold, once. Settling it again the same way answers the same."""
    config = program_config(settings, program_id)
    hold_key = keys.hold(program_id, hold_id)

    def attempt() -> dict[str, Any]:
        hold = store.get_item(HoldItem, hold_key)
        if not isinstance(hold, HoldItem):
            raise NotFound("no such hold", code="hold_not_found")
        if hold.status == outcome:
            return _view(hold)
        if hold.status != HELD:
            raise Conflict(f"the hold was already {hold.status}", code="hold_settled")
        record = store.member(program_id, hold.member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = clock.now()
        points = int(hold.points)
        before = store.balances_of(record.account)
        if outcome == CAPTURED:
            if before.held < points:  # held counts this hold while open: settled since we read it
                raise TryAgain
            change = balance.capture(before, points)
            entry_type, entry_points = "redeem", 0
        else:
            draws = [Draw(dt.date.fromisoformat(day), int(n)) for day, n in hold.draws]
            change = balance.restore(before, draws, config.today(now), from_held=points)
            entry_type, entry_points = "release", change.after.points - before.points
        row = store.LedgerRow(
            key=keys.member_operation(program_id, hold.member_id, outcome, hold_id), type=entry_type,
            points=entry_points, reason=reason, ref=hold_id, request_hash=None, response=None,
            detail={"hold_id": hold_id, "order_id": hold.order_id, "held_points": points},
        )

        def mark(tx: Transaction) -> None:
            # Out of the due queue for good; the member's list (gsi1) keeps it.
            tx.update(HoldItem(*hold_key),
                      actions=[HoldItem.status.set(outcome), HoldItem.settled_at.set(clock.stamp(now)),
                               HoldItem.settled_balance.set(change.after.points),
                               HoldItem.gsi2pk.remove(), HoldItem.gsi2sk.remove()],
                      condition=HoldItem.status == HELD, label="hold")
            if till is not None and till.nonce is not None:
                till.nonce.add_to(tx)

        with reread_if_taken("ledger", "hold"):  # settled concurrently: re-read and answer from its status
            store.apply_change(program_id, record.account, change, _lots(record), row, clock.stamp(now),
                               ids.new_entry_id(), extra=mark)
        hold.status, hold.settled_balance = outcome, change.after.points
        return _view(hold)

    return with_retries(settings, attempt)


def open_holds(program_id: str, member_id: str) -> list[HoldItem]:
    """The member's holds still frozen (what `held` must add up to)."""
    return [item for item in TableItem.gsi1.query(keys.member_holds(program_id, member_id))
            if isinstance(item, HoldItem) and item.status == HELD]


def release_due_holds(settings: Settings, now: dt.datetime, limit: int = 500) -> dict[str, int]:
    """Release every unsettled hold whose time ran out (the frequent job). Reads only due holds."""
    released = 0
    cutoff = clock.stamp(now)
    # Every day a due hold can sit on: a missed week of runs still catches up.
    for days_back in range(_MAX_TTL_DAYS, -1, -1):
        day = (now - dt.timedelta(days=days_back)).date().isoformat()
        for item in TableItem.gsi2.query(keys.holds_due(day), TableItem.gsi2sk <= cutoff, limit=limit):
            if not isinstance(item, HoldItem):
                continue
            try:
                settle(settings, item.program_id, item.hold_id, RELEASED, "hold expired unsettled")
                released += 1
            except Conflict:
                pass
    return {"released": released}
