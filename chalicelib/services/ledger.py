"""Points changes reported by tills and staff: accrual, refunds, adjustments; and history."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator

from chalicelib import metrics
from chalicelib.auth.principals import StaffPrincipal, TillPrincipal
from chalicelib.domain import balance, earning, lots, refunds
from chalicelib.errors import Conflict, InsufficientPoints, InvalidRequest, NotFound
from chalicelib.services.idempotency import (
    TryAgain,
    fingerprint,
    first_answer,
    replay,
    reread_if_taken,
    with_retries,
)
from chalicelib.services.members import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import LedgerItem, OrderItem
from chalicelib.store.tx import Transaction

_ID = r"^[A-Za-z0-9._:-]{1,64}$"


class Body(BaseModel):
    # strict: "100" is not 100, 1.0 is not 1, true is not 1.
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)


class OrderLine(Body):
    sku: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=128)
    quantity: StrictInt = Field(ge=1, le=100_000)
    amount_fen: StrictInt = Field(ge=0)


class OrderIn(Body):
    order_id: str = Field(pattern=_ID)
    member_id: str = Field(pattern=_ID)
    amount_fen: StrictInt = Field(ge=0, le=10**12)
    # No real order is older; near year 1 a +14:00 time is not even a UTC instant (OverflowError).
    paid_at: AwareDatetime = Field(gt=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
                                   description="With offset; after 2000-01-01T00:00:00Z, not in the future.")
    store_id: str | None = Field(default=None, pattern=_ID)
    items: list[OrderLine] | None = Field(default=None, max_length=200)


class RefundIn(Body):
    refund_id: str = Field(pattern=_ID)
    amount_fen: StrictInt = Field(ge=1, le=10**12)


class AdjustmentIn(Body):
    points: StrictInt = Field(ge=-10**9, le=10**9)
    reason: str = Field(min_length=1, max_length=200)
    request_id: str = Field(pattern=_ID)
    expires_on: dt.date | None = None

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment of 0 points changes nothing")
        return value


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stamp(moment: dt.datetime) -> str:
    """Sortable UTC timestamp with milliseconds: ledger rows order by it."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def new_entry_id() -> str:
    return uuid.uuid4().hex[:16]


def _lots_before(record: Any) -> dict[dt.date, int]:
    return {lot.expires_on: lot.remaining for lot in record.lot_values}


def accrue_order(settings: Settings, till: TillPrincipal, body: OrderIn) -> tuple[dict[str, Any], int]:
    """Award points and growth for a paid order, once per order_id, forever.

    Two requests: one BatchGet (the order's ledger row, if any, and the account) and one
    transaction (account, this month's lot, the order row). A replay is the BatchGet alone."""
    program_id = till.program_id
    config = program_config(settings, program_id)
    request_hash = fingerprint(body)
    order_key = keys.order(program_id, body.order_id)
    account_key = keys.account(program_id, body.member_id)
    if body.paid_at > now_utc() + dt.timedelta(seconds=settings.hmac_skew_seconds):
        raise InvalidRequest("paid_at is in the future")

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([order_key, account_key])
        if order_key in found:
            return replay(found[order_key], request_hash, "order_id")
        account = found.get(account_key)
        if account is None:
            raise NotFound("no such member", code="member_not_found")
        now = now_utc()
        today = config.today(now)
        award = earning.award_for_order(config, config.tier(account.tier), body.amount_fen,
                                        config.local_day(body.paid_at))
        month = today.strftime("%Y-%m")
        change = balance.earn(store.balances_of(account), award.points, lots.expiry_day(config.expiry, today),
                              award.growth, month)
        answer = {
            "order_id": body.order_id, "member_id": body.member_id,
            "points_awarded": award.points, "growth_awarded": award.growth,
            "points_balance": change.after.points,
        }
        row = store.LedgerRow(
            key=order_key, type="earn", points=award.points, growth=award.growth,
            reason=f"order {body.order_id}", ref=body.order_id, request_hash=request_hash,
            response=first_answer(answer), model=OrderItem, extra={"amount_fen": body.amount_fen},
            detail={
                "store_id": body.store_id or till.store_id, "paid_at": body.paid_at.isoformat(),
                "growth_month": month, "repaid_debt": change.repaid_debt,
                "tier_multiplier_pct": award.tier_multiplier_pct,
                "campaign_multiplier_pct": award.campaign_multiplier_pct,
                "bonus_points": award.bonus_points, "campaigns": list(award.campaigns),
            },
        )
        with reread_if_taken("ledger"):  # the same order_id landed concurrently: answer as a replay
            store.apply_change(program_id, account, change, None, row, stamp(now), new_entry_id(),
                               activity_day=today.isoformat())
        metrics.emit("Accruals")
        metrics.emit("PointsAccrued", answer["points_awarded"])
        return answer, 201

    return with_retries(settings, attempt)


def refund_order(settings: Settings, till: TillPrincipal, order_id: str, body: RefundIn) -> tuple[dict[str, Any], int]:
    """Reverse points and growth in proportion to the amount refunded, once per refund_id.
    Points already spent become debt that later earnings repay."""
    program_id = till.program_id
    config = program_config(settings, program_id)
    request_hash = fingerprint(body, order_id=order_id)
    order_key = keys.order(program_id, order_id)
    refund_key = keys.refund(program_id, order_id, body.refund_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([order_key, refund_key])
        if refund_key in found:
            return replay(found[refund_key], request_hash, "refund_id")
        order = found.get(order_key)
        if not isinstance(order, OrderItem):
            raise NotFound("no such order", code="order_not_found")
        try:
            points = refunds.reversal(int(order.points), int(order.amount_fen), int(order.refunded_fen),
                                      body.amount_fen, int(order.points_reversed))
            growth = refunds.reversal(int(order.growth), int(order.amount_fen), int(order.refunded_fen),
                                      body.amount_fen, int(order.growth_reversed))
        except refunds.RefundExceedsOrder:
            raise Conflict("refunds of this order would exceed its amount", code="refund_exceeds_order") from None
        record = store.member(program_id, order.member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = now_utc()
        change = balance.reverse(store.balances_of(record.account), record.lot_values, config.today(now), points,
                                 growth, (order.detail or {}).get("growth_month"))
        answer = {
            "refund_id": body.refund_id, "order_id": order_id, "member_id": order.member_id,
            "points_reversed": points, "growth_reversed": growth,
            "points_balance": change.after.points, "points_debt": change.after.debt,
        }
        row = store.LedgerRow(
            key=refund_key, type="reverse", points=-points, growth=-growth,
            reason=f"refund {body.refund_id} of order {order_id}", ref=order_id, request_hash=request_hash,
            response=first_answer(answer),
            detail={"amount_fen": body.amount_fen, "new_debt": change.new_debt},
        )

        def order_totals(tx: Transaction) -> None:
            tx.update(
                OrderItem(*order_key),
                actions=[
                    OrderItem.refunded_fen.set(int(order.refunded_fen) + body.amount_fen),
                    OrderItem.points_reversed.set(int(order.points_reversed) + points),
                    OrderItem.growth_reversed.set(int(order.growth_reversed) + growth),
                    OrderItem.refund_count.add(1),
                ],
                condition=OrderItem.refunded_fen == order.refunded_fen,
                label="order",
            )

        with reread_if_taken("ledger", "order"):
            store.apply_change(program_id, record.account, change, _lots_before(record), row, stamp(now),
                               new_entry_id(), extra=order_totals)
        return answer, 201

    return with_retries(settings, attempt)


def adjust(settings: Settings, staff: StaffPrincipal, member_id: str, body: AdjustmentIn) -> tuple[dict[str, Any], int]:
    """Staff add or remove points with a reason; the ledger row names the staff key."""
    program_id = staff.program_id
    config = program_config(settings, program_id)
    request_hash = fingerprint(body, member_id=member_id)
    op_key = keys.member_operation(program_id, member_id, "adjust", body.request_id)

    def attempt() -> tuple[dict[str, Any], int]:
        previous = store.get_item(LedgerItem, op_key)
        if previous is not None:
            return replay(previous, request_hash, "request_id")
        record = store.member(program_id, member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = now_utc()
        today = config.today(now)
        before = store.balances_of(record.account)
        if body.points > 0:
            lot_day = body.expires_on or lots.expiry_day(config.expiry, today)
            if lot_day < today:
                raise InvalidRequest("expires_on is in the past")
            change = balance.earn(before, body.points, lot_day)
        else:
            try:
                change = balance.spend(before, record.lot_values, today, -body.points)
            except (balance.NotEnoughPoints, balance.InDebt):
                if store.get_item(LedgerItem, op_key) is not None:  # our duplicate landed since the first read
                    raise TryAgain from None
                raise InsufficientPoints("the member does not have that many points to remove") from None
        answer = {"member_id": member_id, "request_id": body.request_id, "points": body.points,
                  "points_balance": change.after.points, "points_debt": change.after.debt}
        row = store.LedgerRow(
            key=op_key, type="adjust", points=body.points, reason=body.reason, ref=body.request_id,
            request_hash=request_hash, response=first_answer(answer),
            detail={"staff": staff.key_name, "staff_key": staff.key_ref,
                    "expires_on": body.expires_on.isoformat() if body.expires_on else None},
        )
        with reread_if_taken("ledger"):
            store.apply_change(program_id, record.account, change, _lots_before(record), row, stamp(now),
                               new_entry_id())
        return answer, 201

    return with_retries(settings, attempt)


def require_member(program_id: str, member_id: str) -> None:
    from chalicelib.store.models import AccountItem

    if store.get_item(AccountItem, keys.account(program_id, member_id)) is None:
        raise NotFound("no such member", code="member_not_found")


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None, partition: str) -> dict[str, Any] | None:
    """The GSI1 position a cursor names; it must lie in `partition`, so a cursor never opens
    another member's (or program's) list."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        raise InvalidRequest("invalid cursor") from None
    if not isinstance(key, dict) or not isinstance(key.get("gsi1pk"), dict) or key["gsi1pk"].get("S") != partition:
        raise InvalidRequest("invalid cursor")
    return key


def history(program_id: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    start = decode_cursor(cursor, keys.points_history(program_id, member_id))
    rows, last = store.history(program_id, member_id, limit, start)
    if not rows and start is None:
        require_member(program_id, member_id)  # an unknown (or another program's) member is a 404
    return {
        "items": [
            {"id": row.entry_id, "type": row.type, "points": int(row.points),
             "balance_after": int(row.balance_after), "growth": int(row.growth or 0),
             "reason": row.reason, "ref": row.ref, "created_at": row.created_at}
            for row in rows
        ],
        "next_cursor": encode_cursor(last) if len(rows) == limit else None,
    }
