"""Points changes reported by tills and staff: accrual, refunds, adjustments; and history."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator

from chalicelib import clock, ids, metrics
from chalicelib.auth.principals import StaffPrincipal, TillPrincipal
from chalicelib.domain import balance, earning, lots, refunds, risk
from chalicelib.domain.text import FreeText
from chalicelib.domain import membership as membership_rules
from chalicelib.errors import Conflict, Forbidden, InsufficientPoints, InvalidRequest, NotFound, RateLimited
from chalicelib.services.idempotency import CallerKey, TryAgain, fingerprint, reread_if_taken, with_retries
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys, paging
from chalicelib.store import ledger as store
from chalicelib.store.members import membership_until
from chalicelib.store import risk as risk_store
from chalicelib.store.models import AccountItem, LedgerItem, OrderItem, OrderTotalsItem
from chalicelib.store.tx import ConditionsFailed, Transaction

_ID = ids.ID_PATTERN


class Body(BaseModel):
    # strict: "100" is not 100, 1.0 is not 1, true is not 1.
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)


class OrderLine(Body):
    sku: FreeText = Field(min_length=1, max_length=64)
    name: FreeText | None = Field(default=None, max_length=128)
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
    reason: FreeText = Field(min_length=1, max_length=200)
    request_id: str = Field(pattern=_ID)
    expires_on: dt.date | None = None

    @field_validator("points")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment of 0 points changes nothing")
        return value


def _lots_before(record: Any) -> dict[dt.date, int]:
    return {lot.expires_on: lot.remaining for lot in record.lot_values}


def _with_nonce(till: TillPrincipal, then: Any = None) -> Any:
    """An `extra` for `apply_change`: the till's nonce spent in the same transaction."""
    def add(tx: Transaction) -> None:
        if till.nonce is not None:
            till.nonce.add_to(tx)
        if then is not None:
            then(tx)

    return add


def accrue_order(settings: Settings, till: TillPrincipal, body: OrderIn) -> tuple[dict[str, Any], int]:
    """Award points and growth for a paid order, once per order_id, forever.

    Two requests: one BatchGet (the order's ledger row, if any, and the account) and one
    transaction (account, this month's lot, the order row, the till's nonce; with till caps the
    till's hour counter; when a risk rule holds points back, the pending entry). A replay is the
    BatchGet alone (and the nonce's own put). Beyond a till cap: 429, nothing written."""
    program_id = till.program_id
    config = program_config(settings, program_id)
    caller_key = CallerKey("order_id", keys.order(program_id, body.order_id), fingerprint(body))
    account_key = keys.account(program_id, body.member_id)
    if body.paid_at > clock.now() + dt.timedelta(seconds=settings.hmac_skew_seconds):
        raise InvalidRequest("paid_at is in the future")
    caps = config.risk.caps_for(till.key_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([caller_key.item_key, account_key])
        replayed = caller_key.replay_of(found.get(caller_key.item_key))
        if replayed:
            return replayed
        account = found.get(account_key)
        if not isinstance(account, AccountItem):
            raise NotFound("no such member", code="member_not_found")
        if caps is not None and caps.amount_fen_per_hour is not None and body.amount_fen > caps.amount_fen_per_hour:
            raise RateLimited("this order alone exceeds the till's amount cap per hour")
        now = clock.now()
        today = config.today(now)
        award = earning.award_for_order(config, config.tier(account.tier), body.amount_fen,
                                        config.local_day(body.paid_at),
                                        membership_rules.multiplier_while(config.membership, membership_until(account), body.paid_at))
        month = today.strftime("%Y-%m")
        counters = risk.Counters.from_json(account.risk)
        split = risk.assess_order(config.risk, counters, award.points, body.amount_fen, today)
        change = balance.earn(store.balances_of(account), split.available, lots.expiry_day(config.expiry, today),
                              award.growth, month, pending=split.pending)
        entry_id = ids.new_entry_id()
        # A wholly pending order's own row is the `pending` row; a partly pending one gets a second row.
        pending_entry = None if not split.pending else entry_id if not split.available else ids.new_entry_id()
        answer = {
            "order_id": body.order_id, "member_id": body.member_id,
            "points_awarded": split.available, "growth_awarded": award.growth,
            "points_balance": change.after.points,
            "points_pending": split.pending, "pending_reason": split.reason,
        }
        stamp = clock.stamp(now)
        row = store.LedgerRow(
            key=caller_key.item_key, type="pending" if pending_entry == entry_id else "earn", points=split.available,
            growth=award.growth, reason=f"order {body.order_id}", ref=body.order_id,
            request_hash=caller_key.request_hash, response=caller_key.answer(answer), model=OrderItem,
            extra={"amount_fen": body.amount_fen}, pending=split.pending if pending_entry == entry_id else 0,
            detail={
                "store_id": body.store_id or till.store_id, "paid_at": body.paid_at.isoformat(),
                "growth_month": month, "repaid_debt": change.repaid_debt,
                "tier_multiplier_pct": award.tier_multiplier_pct,
                "campaign_multiplier_pct": award.campaign_multiplier_pct,
                "bonus_points": award.bonus_points, "campaigns": list(award.campaigns),
                **({"pending_points": split.pending, "pending_entry": pending_entry, "pending_rule": split.reason}
                   if split.pending else {}),
            },
        )

        def risk_items(tx: Transaction) -> None:
            if caps is not None:
                risk_store.add_till_rate(tx, till.key_id, caps, risk.till_window(now), body.amount_fen)
            if pending_entry is None or split.reason is None:
                return
            risk_store.put_pending(tx, risk_store.pending_item(
                program_id, body.member_id, pending_entry, rule=split.reason, points=split.pending,
                created_at=stamp, order_id=body.order_id, auto_release_on=split.auto_release_on))
            if pending_entry != entry_id:
                tx.put(store.ledger_item(program_id, body.member_id, store.LedgerRow(
                    key=keys.member_operation(program_id, body.member_id, "pending", body.order_id), type="pending",
                    points=0, pending=split.pending, reason=f"order {body.order_id}: {risk.REASONS[split.reason]}",
                    ref=body.order_id, request_hash=None, response=None,
                    detail={"order_id": body.order_id, "rule": split.reason}), change.after.points, stamp,
                    pending_entry), LedgerItem.pk.does_not_exist(), label="pending_row")
            if split.reason == risk.REFUND_RATIO:
                ordered, refunded = risk.window_totals(counters, today)
                risk_store.raise_flag(
                    program_id, f"refund-ratio-{body.member_id}-{today.isoformat()}", "refund_ratio",
                    [body.member_id], {"ordered_fen": ordered, "refunded_fen": refunded, "window_days": 30,
                                       "limit_pct": config.risk.refund_ratio_pct, "order_id": body.order_id},
                    stamp, tx)

        try:
            with reread_if_taken("ledger"):  # the same order_id landed concurrently: answer as a replay
                store.apply_change(program_id, account, change, None, row, stamp, entry_id,
                                   extra=_with_nonce(till, risk_items), activity_day=today.isoformat(),
                                   risk=split.counters.to_json())
        except ConditionsFailed as failed:
            if risk_store.TILL_RATE_LABEL in failed.labels and "nonce" not in failed.labels:
                # Counts only grow within a minute and an hour: the refusal is final.
                raise RateLimited("this till has reached its rate cap; retry later") from None
            raise
        metrics.emit("Accruals")
        metrics.emit("PointsAccrued", award.points)
        return answer, 201

    return with_retries(settings, attempt)


def refund_order(settings: Settings, till: TillPrincipal, order_id: str, body: RefundIn) -> tuple[dict[str, Any], int]:
    """Reverse points and growth in proportion to the amount refunded, once per refund_id.
    Points already spent become debt that later earnings repay. Of an order whose points were
    partly held back, the pending part is reversed in the same proportion: from the pending entry
    while it is open, from the balance once released, not at all once rejected."""
    program_id = till.program_id
    config = program_config(settings, program_id)
    caller_key = CallerKey("refund_id", keys.refund(program_id, order_id, body.refund_id),
                           fingerprint(body, order_id=order_id))
    order_key = keys.order(program_id, order_id)
    totals_key = keys.order_totals(program_id, order_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([order_key, totals_key, caller_key.item_key])
        replayed = caller_key.replay_of(found.get(caller_key.item_key))
        if replayed:
            return replayed
        order = found.get(order_key)
        if not isinstance(order, OrderItem):
            raise NotFound("no such order", code="order_not_found")
        totals = found.get(totals_key)
        refunded = int(totals.refunded_fen) if isinstance(totals, OrderTotalsItem) else 0
        points_before = int(totals.points_reversed) if isinstance(totals, OrderTotalsItem) else 0
        growth_before = int(totals.growth_reversed) if isinstance(totals, OrderTotalsItem) else 0
        pending_before = int(totals.pending_reversed or 0) if isinstance(totals, OrderTotalsItem) else 0
        detail = order.detail or {}
        pending_points = int(detail.get("pending_points") or 0)
        try:
            points = refunds.reversal(int(order.points), int(order.amount_fen), refunded, body.amount_fen,
                                      points_before)
            growth = refunds.reversal(int(order.growth), int(order.amount_fen), refunded, body.amount_fen,
                                      growth_before)
            pending_back = refunds.reversal(pending_points, int(order.amount_fen), refunded, body.amount_fen,
                                            pending_before) if pending_points else 0
        except refunds.RefundExceedsOrder:
            raise Conflict("refunds of this order would exceed its amount", code="refund_exceeds_order") from None
        record = store.member(program_id, order.member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        entry = risk_store.get_pending(program_id, order.member_id, detail["pending_entry"]) if pending_back else None
        from_pending = pending_back if entry is not None and entry.status == "pending" else 0
        from_released = pending_back if entry is not None and entry.status == "released" else 0
        now = clock.now()
        today = config.today(now)
        change = balance.reverse(store.balances_of(record.account), record.lot_values, today, points + from_released,
                                 growth, detail.get("growth_month"))
        if from_pending:
            change = replace(change, after=replace(change.after, pending=change.after.pending - from_pending))
        answer = {
            "refund_id": body.refund_id, "order_id": order_id, "member_id": order.member_id,
            "points_reversed": points + from_released, "growth_reversed": growth,
            "points_balance": change.after.points, "points_debt": change.after.debt,
            "pending_reversed": from_pending,
        }
        row = store.LedgerRow(
            key=caller_key.item_key, type="reverse", points=-(points + from_released), growth=-growth,
            reason=f"refund {body.refund_id} of order {order_id}", ref=order_id,
            request_hash=caller_key.request_hash, response=caller_key.answer(answer), pending=-from_pending,
            detail={"amount_fen": body.amount_fen, "new_debt": change.new_debt},
        )

        def order_totals(tx: Transaction) -> None:
            guard = (OrderTotalsItem.refunded_fen == refunded) if isinstance(totals, OrderTotalsItem) \
                else OrderTotalsItem.pk.does_not_exist()
            tx.put(OrderTotalsItem(*totals_key, refunded_fen=refunded + body.amount_fen,
                                   points_reversed=points_before + points, growth_reversed=growth_before + growth,
                                   refund_count=int(getattr(totals, "refund_count", 0) or 0) + 1,
                                   pending_reversed=(pending_before + pending_back) or None),
                   guard, label="order")
            if from_pending and entry is not None:
                risk_store.take_from_pending(tx, entry, from_pending)

        counters = risk.record_refund(risk.Counters.from_json(record.account.risk), body.amount_fen, today)
        with reread_if_taken("ledger", "order", "pending"):
            store.apply_change(program_id, record.account, change, _lots_before(record), row, clock.stamp(now),
                               ids.new_entry_id(), extra=_with_nonce(till, order_totals), risk=counters.to_json())
        return answer, 201

    return with_retries(settings, attempt)


def adjust(settings: Settings, staff: StaffPrincipal, member_id: str, body: AdjustmentIn) -> tuple[dict[str, Any], int]:
    """Staff add or remove points with a reason; the ledger row names the staff key."""
    if staff.points_limit is not None and abs(body.points) > staff.points_limit:
        # A clerk's account carries the most the owner lets it adjust in one request.
        raise Forbidden(f"this account may adjust at most {staff.points_limit} points at a time",
                        code="over_staff_limit")
    program_id = staff.program_id
    config = program_config(settings, program_id)
    caller_key = CallerKey("request_id", keys.member_operation(program_id, member_id, "adjust", body.request_id),
                           fingerprint(body, member_id=member_id))

    def attempt() -> tuple[dict[str, Any], int]:
        replayed = caller_key.lookup(LedgerItem)
        if replayed:
            return replayed
        record = store.member(program_id, member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = clock.now()
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
                if caller_key.lookup(LedgerItem) is not None:  # our duplicate landed since the first read
                    raise TryAgain from None
                raise InsufficientPoints("the member does not have that many points to remove") from None
        answer = {"member_id": member_id, "request_id": body.request_id, "points": body.points,
                  "points_balance": change.after.points, "points_debt": change.after.debt}
        row = store.LedgerRow(
            key=caller_key.item_key, type="adjust", points=body.points, reason=body.reason, ref=body.request_id,
            request_hash=caller_key.request_hash, response=caller_key.answer(answer),
            detail={"staff": staff.key_name, "staff_key": staff.key_ref,
                    "expires_on": body.expires_on.isoformat() if body.expires_on else None},
        )
        with reread_if_taken("ledger"):
            store.apply_change(program_id, record.account, change, _lots_before(record), row, clock.stamp(now),
                               ids.new_entry_id())
        return answer, 201

    return with_retries(settings, attempt)


def require_member(program_id: str, member_id: str) -> None:
    if store.get_item(AccountItem, keys.account(program_id, member_id)) is None:
        raise NotFound("no such member", code="member_not_found")


def member_page(program_id: str, member_id: str, partition: str, limit: int, cursor: str | None,
                *, newest_first: bool = True) -> paging.Page:
    """A page of one of a member's timelines; an unknown (or another program's) member is a 404
    rather than an empty list."""
    page = paging.gsi1_page(partition, limit, cursor, newest_first=newest_first)
    if not page.items and page.first:
        require_member(program_id, member_id)
    return page


def history(program_id: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    page = member_page(program_id, member_id, keys.points_history(program_id, member_id), limit, cursor)
    return {
        "items": [
            {"id": row.entry_id, "type": row.type,
             # A `pending` row changes only the pending bucket: its points are the pending ones.
             "points": int(row.pending or 0) if row.type == "pending" else int(row.points),
             "pending": int(row.pending or 0),
             "balance_after": int(row.balance_after), "growth": int(row.growth or 0),
             "reason": row.reason, "ref": row.ref, "created_at": row.created_at}
            for row in page.items if isinstance(row, LedgerItem)
        ],
        "next_cursor": page.next_cursor,
    }
