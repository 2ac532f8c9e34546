"""The rewards catalogue and redemptions.

A redemption is one transaction: the member's account (version), the lots it draws from, the
reward's stock (`stock >= quantity`), the member's count for a limited reward, the redemption
item (its own status: redeemed -> cancelled; keyed by the member's request_id, so it is also that
key's record) and its ledger row. Cancelling puts the points back into the lots they came from
and the stock back on the shelf, once: the redemption's status moves under a condition, and the
cancellation writes a ledger row of its own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pynamodb.expressions.update import Action

from chalicelib import clock, ids, metrics
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.domain import balance
from chalicelib.domain.lots import Draw
from chalicelib.domain.text import FreeText
from chalicelib.errors import Conflict, InsufficientPoints, NotFound
from chalicelib.services import holds, pay_orders
from chalicelib.services.idempotency import CallerKey, TryAgain, fingerprint, reread_if_taken, with_retries
from chalicelib.services.members import resolve_member_id
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys, paging
from chalicelib.store import ledger as store
from chalicelib.store.models import HoldItem, LedgerItem, PayOrderItem, RedemptionItem, RewardItem, RewardLimitItem
from chalicelib.store.tx import Transaction


class RewardIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    name: FreeText = Field(min_length=1, max_length=64)
    points_price: StrictInt = Field(ge=1, le=10**9)
    cash_fen: StrictInt = Field(default=0, ge=0, le=10**10)
    stock: StrictInt = Field(ge=0, le=10**9)
    per_member_limit: StrictInt | None = Field(default=None, ge=1, le=10**6)
    active: StrictBool = True


class RedemptionIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    reward_id: str = Field(pattern=ids.ID_PATTERN)
    quantity: StrictInt = Field(ge=1, le=100)
    request_id: str = Field(pattern=ids.ID_PATTERN)


def reward_view(item: RewardItem) -> dict[str, Any]:
    return {"reward_id": item.reward_id, "name": item.name, "points_price": int(item.points_price),
            "cash_fen": int(item.cash_fen), "stock": int(item.stock),
            "per_member_limit": int(item.per_member_limit) if item.per_member_limit is not None else None,
            "active": bool(item.active)}


def put_reward(program_id: str, reward_id: str, body: RewardIn) -> dict[str, Any]:
    """Create or replace a reward (staff). Stock is set as given: restocking is staff's call."""
    item = RewardItem(
        *keys.reward(program_id, reward_id),
        program_id=program_id, reward_id=reward_id, name=body.name, points_price=body.points_price,
        cash_fen=body.cash_fen, stock=body.stock, per_member_limit=body.per_member_limit,
        active=1 if body.active else 0, updated_at=clock.stamp(clock.now()),
        gsi1pk=keys.rewards_list(program_id), gsi1sk=reward_id,
    )
    item.save()
    return reward_view(item)


def list_rewards(program_id: str, limit: int, cursor: str | None, include_inactive: bool = False) -> dict[str, Any]:
    page = paging.gsi1_page(keys.rewards_list(program_id), limit, cursor, newest_first=False)
    items = [reward_view(item) for item in page.items if isinstance(item, RewardItem)]
    return {"items": [r for r in items if include_inactive or r["active"]], "next_cursor": page.next_cursor}


def redeem(settings: Settings, principal: MemberPrincipal, body: RedemptionIn) -> tuple[dict[str, Any], int]:
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    config = program_config(settings, program_id)
    redemption_id = redemption_id_for(body.request_id)
    caller_key = CallerKey("request_id", keys.redemption(program_id, member_id, redemption_id), fingerprint(body))
    reward_key = keys.reward(program_id, body.reward_id)
    limit_key = keys.reward_limit(program_id, member_id, body.reward_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([caller_key.item_key, reward_key, limit_key])
        replayed = caller_key.replay_of(found.get(caller_key.item_key))
        if replayed and replayed[0].get("out_trade_no"):  # points + cash: the answer carries pay_params
            return _pay_cash(settings, member_id, replayed[0], order_key_of(replayed[0]["out_trade_no"]), None)
        if replayed:
            return replayed
        reward = found.get(reward_key)
        if not isinstance(reward, RewardItem) or not reward.active:
            raise NotFound("no such reward", code="reward_not_found")
        if int(reward.stock) < body.quantity:
            raise Conflict("not enough stock", code="out_of_stock")
        redeemed_before = int(getattr(found.get(limit_key), "redeemed", 0) or 0)
        limit = reward.per_member_limit
        if limit is not None and redeemed_before + body.quantity > int(limit):
            raise Conflict(f"at most {int(limit)} per member", code="limit_reached")
        record = store.member(program_id, member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = clock.now()
        price = int(reward.points_price) * body.quantity
        cash = int(reward.cash_fen) * body.quantity
        try:
            # Points + cash: the points are held until the cash part is paid (or the order times out).
            change = balance.spend(store.balances_of(record.account), record.lot_values, config.today(now), price,
                                   to_held=cash > 0)
        except balance.InDebt:
            raise InsufficientPoints("points are owed from a refund; redemption is paused until repaid") from None
        except balance.NotEnoughPoints:
            if caller_key.lookup(RedemptionItem) is not None:  # our duplicate landed since the first read
                raise TryAgain from None
            raise InsufficientPoints() from None
        status = AWAITING_PAYMENT if cash else "redeemed"
        out_trade_no = pay_orders.out_trade_no_for(program_id, member_id, "reward", body.request_id)
        answer = {
            "redemption_id": redemption_id, "request_id": body.request_id, "reward_id": body.reward_id,
            "quantity": body.quantity, "points_spent": price, "cash_fen": cash,
            "points_balance": change.after.points, "status": status,
            **({"out_trade_no": out_trade_no} if cash else {}),
        }
        draws = [[d.expires_on.isoformat(), d.points] for d in change.draws]
        redemption = RedemptionItem(
            *caller_key.item_key, program_id=program_id, member_id=member_id, redemption_id=redemption_id,
            reward_id=body.reward_id, reward_name=reward.name, quantity=body.quantity, points_spent=price,
            cash_fen=cash, limited=1 if limit is not None else 0,
            status=status, draws=draws,
            created_at=clock.stamp(now), request_hash=caller_key.request_hash, response=caller_key.answer(answer),
        )
        row = store.LedgerRow(
            key=keys.member_operation(program_id, member_id, "redeem", body.request_id),
            type="hold" if cash else "redeem", points=-price,
            reason=f"{'held for' if cash else 'redeemed'} {body.quantity} x {reward.name}", ref=redemption_id,
            request_hash=None, response=None, detail={"reward_id": body.reward_id, "quantity": body.quantity},
        )
        order_key = order_key_of(out_trade_no, caller_key.request_hash)
        order = None
        if cash:
            order = pay_orders.pending_item(settings, order_key, pay_orders.NewOrder(
                program_id, member_id, "reward", redemption_id, cash, 0, config.appid, principal.openid,
                f"{config.name} {reward.name}", config.today(now).isoformat()))
            held = HoldItem(
                *keys.hold(program_id, redemption_id), program_id=program_id, member_id=member_id,
                hold_id=redemption_id, order_id=out_trade_no, points=price, deduction_fen=0, status=holds.HELD,
                expires_at=order.expires_at, draws=draws, created_at=clock.stamp(now),
                request_hash=caller_key.request_hash, response={},
                gsi1pk=keys.member_holds(program_id, member_id), gsi1sk=f"{clock.stamp(now)}#{redemption_id}")

        def redemption_stock_and_limit(tx: Transaction) -> None:
            if order is not None:  # the cash part's WeChat Pay order and the points' hold, with it
                pay_orders.put_pending(tx, order)
                tx.put(held, HoldItem.pk.does_not_exist(), label="hold")
            tx.put(redemption, RedemptionItem.pk.does_not_exist(), label="redemption")
            tx.update(RewardItem(*reward_key), actions=[RewardItem.stock.add(-body.quantity)],
                      condition=RewardItem.stock >= body.quantity, label="stock")
            if limit is not None:
                _limit_update(tx, limit_key, body.quantity, int(limit))

        # re-read: a replay, or the stock/limit answer is now final
        with reread_if_taken("ledger", "redemption", "stock", "limit", "hold", pay_orders.ORDER_LABEL):
            store.apply_change(program_id, record.account, change, _lots(record), row, clock.stamp(now),
                               ids.new_entry_id(), extra=redemption_stock_and_limit,
                               activity_day=config.today(now).isoformat())
        metrics.emit("Redemptions")
        metrics.emit("PointsRedeemed", price)
        if order is not None:
            return _pay_cash(settings, member_id, answer, order_key, order)
        return answer, 201

    return with_retries(settings, attempt)


AWAITING_PAYMENT = "awaiting_payment"


def order_key_of(out_trade_no: str, request_hash: str = "") -> CallerKey:
    """The cash part's WeChat Pay order: keyed by its out_trade_no, fingerprinted as the redemption."""
    return CallerKey("request_id", keys.pay_order(out_trade_no), request_hash)


def _pay_cash(settings: Settings, member_id: str, answer: dict[str, Any], order_key: CallerKey,
              order: PayOrderItem | None) -> tuple[dict[str, Any], int]:
    """The redemption's answer with the pay_params of its cash part (asked of WeChat Pay once; a
    replay answers the stored ones)."""
    if order is None:
        order = store.get_item(PayOrderItem, order_key.item_key)
        if not isinstance(order, PayOrderItem):
            raise NotFound("the redemption's payment order is missing", code="redemption_not_found")
        order_key = order_key_of(order.out_trade_no, order.request_hash)
        if order.response:
            return order_key.replay_of(order) or (answer, 201)
    if order.status != pay_orders.PENDING:  # paid or closed since: answer without new pay_params
        return {**answer, "pay_params": (order.response or {}).get("pay_params")}, 201
    config = program_config(settings, order.program_id)
    new = pay_orders.NewOrder(order.program_id, member_id, "reward", order.ref, int(order.total_fen), 0, order.appid,
                              order.openid, f"{config.name} {order.ref}", "")
    return pay_orders.open_order(settings, order_key, new, order, lambda _no, params: {**answer, "pay_params": params})


def capture_paid(settings: Settings, order: PayOrderItem, _wallet: Any, transaction_id: str, paid_at: str) -> str:
    """The cash part was paid: the held points are spent, the redemption is redeemed and the order
    paid, in one transaction (once: each moves under a condition on its status)."""
    return _settle_cash(settings, order, "paid", transaction_id, paid_at)


def release_unpaid(settings: Settings, order: PayOrderItem) -> str:
    """The cash part was never paid: the points go back to their lots, the stock to the shelf, the
    redemption is cancelled and the order closed, in one transaction (once)."""
    return _settle_cash(settings, order, "closed", None, None)


def _settle_cash(settings: Settings, order: PayOrderItem, outcome: str, transaction_id: str | None,
                 paid_at: str | None) -> str:
    program_id, member_id, redemption_id = order.program_id, order.member_id, order.ref
    config = program_config(settings, program_id)
    hold_key = keys.hold(program_id, redemption_id)

    def attempt() -> str:
        found = store.read_items([(order.pk, order.sk), hold_key,
                                  keys.redemption(program_id, member_id, redemption_id)])
        current, hold = found.get((order.pk, order.sk)), found.get(hold_key)
        redemption = found.get(keys.redemption(program_id, member_id, redemption_id))
        if not (isinstance(current, PayOrderItem) and isinstance(hold, HoldItem)
                and isinstance(redemption, RedemptionItem)):
            return "unknown_order"
        if current.status != pay_orders.PENDING:
            return "duplicate" if current.status == outcome else current.status
        record = store.member(program_id, member_id)
        if record is None:
            return "unknown_member"
        now = clock.now()
        points = int(hold.points)
        before = store.balances_of(record.account)
        if outcome == "paid":
            if before.held < points:
                raise TryAgain
            change = balance.capture(before, points)
            row_type, row_points, reason = "redeem", 0, f"redeemed {int(redemption.quantity)} x {redemption.reward_name}"
        else:
            draws = [Draw(dt.date.fromisoformat(day), int(n)) for day, n in hold.draws]
            change = balance.restore(before, draws, config.today(now), from_held=points)
            row_type, row_points = "release", change.after.points - before.points
            reason = "points + cash: not paid in time"
        row = store.LedgerRow(
            key=keys.member_operation(program_id, member_id, outcome, redemption_id), type=row_type,
            points=row_points, reason=reason, ref=redemption_id, request_hash=None, response=None,
            detail={"redemption_id": redemption_id, "out_trade_no": order.out_trade_no, "held_points": points})
        stamp = clock.stamp(now)

        def statuses(tx: Transaction) -> None:
            order_actions: list[Action] = [PayOrderItem.status.set(outcome), PayOrderItem.gsi2pk.remove(),
                                           PayOrderItem.gsi2sk.remove()]
            if outcome == "paid":
                order_actions += [PayOrderItem.paid_at.set(paid_at or stamp),
                                  PayOrderItem.transaction_id.set(transaction_id or "")]
            else:
                order_actions.append(PayOrderItem.closed_at.set(stamp))
            tx.update(PayOrderItem(order.pk, order.sk), actions=order_actions,
                      condition=PayOrderItem.status == pay_orders.PENDING, label=pay_orders.ORDER_LABEL)
            tx.update(HoldItem(*hold_key),
                      actions=[HoldItem.status.set(holds.CAPTURED if outcome == "paid" else holds.RELEASED),
                               HoldItem.settled_at.set(stamp), HoldItem.settled_balance.set(change.after.points)],
                      condition=HoldItem.status == holds.HELD, label="hold")
            redemption_actions: list[Action] = [
                RedemptionItem.status.set("redeemed" if outcome == "paid" else "cancelled")]
            if outcome != "paid":
                redemption_actions.append(RedemptionItem.cancelled_at.set(stamp))
            tx.update(RedemptionItem(redemption.pk, redemption.sk), actions=redemption_actions,
                      condition=RedemptionItem.status == AWAITING_PAYMENT, label="redemption")
            if outcome != "paid":
                quantity = int(redemption.quantity)
                tx.update(RewardItem(*keys.reward(program_id, redemption.reward_id)),
                          actions=[RewardItem.stock.add(quantity)], condition=RewardItem.pk.exists(), label="stock")
                if redemption.limited:
                    _limit_update(tx, keys.reward_limit(program_id, member_id, redemption.reward_id), -quantity, None)

        with reread_if_taken("ledger", "hold", "redemption", pay_orders.ORDER_LABEL):
            store.apply_change(program_id, record.account, change, _lots(record), row, stamp, ids.new_entry_id(),
                               extra=statuses)
        return "credited" if outcome == "paid" else "released"

    return with_retries(settings, attempt)


def _lots(record: Any) -> dict[dt.date, int]:
    return {lot.expires_on: lot.remaining for lot in record.lot_values}


def _limit_update(tx: Transaction, key: tuple[str, str], delta: int, limit: int | None) -> None:
    condition = None
    if delta > 0 and limit is not None:
        condition = RewardLimitItem.redeemed.does_not_exist() | (RewardLimitItem.redeemed <= limit - delta)
    tx.update(RewardLimitItem(*key), actions=[RewardLimitItem.kind.set(RewardLimitItem), RewardLimitItem.redeemed.add(delta)],
              condition=condition, label="limit")


def cancel_redemption(settings: Settings, program_id: str, member_id: str, redemption_id: str) -> dict[str, Any]:
    """Put the points back into the lots they came from and the stock back; once."""
    config = program_config(settings, program_id)
    cancel_key = keys.member_operation(program_id, member_id, "cancel", redemption_id)

    def attempt() -> dict[str, Any]:
        redemption = store.get_item(RedemptionItem, keys.redemption(program_id, member_id, redemption_id))
        if not isinstance(redemption, RedemptionItem):
            raise NotFound("no such redemption", code="redemption_not_found")
        if redemption.status == "cancelled":
            previous = store.get_item(LedgerItem, cancel_key)
            return dict((previous.response or {}) if previous else {}, status="cancelled")
        if redemption.status == AWAITING_PAYMENT:
            raise Conflict("the cash part is not paid yet; it is released if not paid in time",
                           code="redemption_awaiting_payment")
        record = store.member(program_id, member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = clock.now()
        draws = [Draw(dt.date.fromisoformat(day), int(n)) for day, n in redemption.draws]
        change = balance.restore(store.balances_of(record.account), draws, config.today(now))
        returned = change.after.points - int(record.account.points)
        answer = {"redemption_id": redemption_id, "status": "cancelled", "points_returned": returned,
                  "points_forfeited": int(redemption.points_spent) - returned, "points_balance": change.after.points}
        ledger_row = store.LedgerRow(
            key=cancel_key, type="reverse", points=returned, reason="redemption cancelled",
            ref=redemption_id, request_hash=None, response=answer,
            detail={"forfeited_expired": answer["points_forfeited"]},
        )
        quantity = int(redemption.quantity)

        def cancel_and_restock(tx: Transaction) -> None:
            tx.update(RedemptionItem(redemption.pk, redemption.sk),
                      actions=[RedemptionItem.status.set("cancelled"), RedemptionItem.cancelled_at.set(clock.stamp(now))],
                      condition=RedemptionItem.status == "redeemed", label="redemption")
            tx.update(RewardItem(*keys.reward(program_id, redemption.reward_id)),
                      actions=[RewardItem.stock.add(quantity)], condition=RewardItem.pk.exists(), label="stock")
            if redemption.limited:
                _limit_update(tx, keys.reward_limit(program_id, member_id, redemption.reward_id), -quantity, None)

        # The redemption's status guard (and the cancel row's key) make a cancel happen once.
        with reread_if_taken("ledger", "redemption"):
            store.apply_change(program_id, record.account, change, _lots(record), ledger_row,
                               clock.stamp(now), ids.new_entry_id(), extra=cancel_and_restock)
        return answer

    return with_retries(settings, attempt)


def redemption_id_for(request_id: str) -> str:
    """A redemption's id names the member's request_id (`rd-` + request_id)."""
    return f"rd-{request_id}"


def cancel_my_redemption(settings: Settings, principal: MemberPrincipal, redemption_id: str) -> dict[str, Any]:
    return cancel_redemption(settings, principal.program_id, resolve_member_id(principal), redemption_id)
