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

from chalicelib import clock, ids, metrics
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.domain import balance
from chalicelib.domain.lots import Draw
from chalicelib.errors import Conflict, InsufficientPoints, NotFound
from chalicelib.services.idempotency import CallerKey, TryAgain, fingerprint, reread_if_taken, with_retries
from chalicelib.services.members import resolve_member_id
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys, paging
from chalicelib.store import ledger as store
from chalicelib.store.models import LedgerItem, RedemptionItem, RewardItem, RewardLimitItem
from chalicelib.store.tx import Transaction


class RewardIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=64)
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
        try:
            change = balance.spend(store.balances_of(record.account), record.lot_values, config.today(now), price)
        except balance.InDebt:
            raise InsufficientPoints("points are owed from a refund; redemption is paused until repaid") from None
        except balance.NotEnoughPoints:
            if caller_key.lookup(RedemptionItem) is not None:  # our duplicate landed since the first read
                raise TryAgain from None
            raise InsufficientPoints() from None
        answer = {
            "redemption_id": redemption_id, "request_id": body.request_id, "reward_id": body.reward_id,
            "quantity": body.quantity, "points_spent": price, "cash_fen": int(reward.cash_fen) * body.quantity,
            "points_balance": change.after.points, "status": "redeemed",
        }
        redemption = RedemptionItem(
            *caller_key.item_key, program_id=program_id, member_id=member_id, redemption_id=redemption_id,
            reward_id=body.reward_id, reward_name=reward.name, quantity=body.quantity, points_spent=price,
            cash_fen=int(reward.cash_fen) * body.quantity, limited=1 if limit is not None else 0,
            status="redeemed", draws=[[d.expires_on.isoformat(), d.points] for d in change.draws],
            created_at=clock.stamp(now), request_hash=caller_key.request_hash, response=caller_key.answer(answer),
        )
        row = store.LedgerRow(
            key=keys.member_operation(program_id, member_id, "redeem", body.request_id), type="redeem",
            points=-price, reason=f"redeemed {body.quantity} x {reward.name}", ref=redemption_id,
            request_hash=None, response=None, detail={"reward_id": body.reward_id, "quantity": body.quantity},
        )

        def redemption_stock_and_limit(tx: Transaction) -> None:
            tx.put(redemption, RedemptionItem.pk.does_not_exist(), label="redemption")
            tx.update(RewardItem(*reward_key), actions=[RewardItem.stock.add(-body.quantity)],
                      condition=RewardItem.stock >= body.quantity, label="stock")
            if limit is not None:
                _limit_update(tx, limit_key, body.quantity, int(limit))

        # re-read: a replay, or the stock/limit answer is now final
        with reread_if_taken("ledger", "redemption", "stock", "limit"):
            store.apply_change(program_id, record.account, change, _lots(record), row, clock.stamp(now),
                               ids.new_entry_id(), extra=redemption_stock_and_limit,
                               activity_day=config.today(now).isoformat())
        metrics.emit("Redemptions")
        metrics.emit("PointsRedeemed", price)
        return answer, 201

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
