"""The rewards catalogue and redemptions.

A redemption is one transaction: the member's account (version), the lots it draws from, the
reward's stock (`stock >= quantity`), the member's count for a limited reward, and the redemption
row keyed by the member's request_id. Cancelling puts the points back into the lots they came
from and the stock back on the shelf, once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from chalicelib import metrics
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.domain import balance
from chalicelib.domain.lots import Draw
from chalicelib.errors import Conflict, InsufficientPoints, NotFound
from chalicelib.services.idempotency import (
    TryAgain,
    fingerprint,
    first_answer,
    replay,
    reread_if_taken,
    with_retries,
)
from chalicelib.services.ledger import _ID, new_entry_id, now_utc, stamp
from chalicelib.services.members import program_config, resolve_member_id
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import LedgerItem, RewardItem, RewardLimitItem, TableItem
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
    reward_id: str = Field(pattern=_ID)
    quantity: StrictInt = Field(ge=1, le=100)
    request_id: str = Field(pattern=_ID)


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
        active=1 if body.active else 0, updated_at=stamp(now_utc()),
        gsi1pk=keys.rewards_list(program_id), gsi1sk=reward_id,
    )
    item.save()
    return reward_view(item)


def list_rewards(program_id: str, limit: int, cursor: str | None, include_inactive: bool = False) -> dict[str, Any]:
    from chalicelib.services.ledger import decode_cursor, encode_cursor

    start = decode_cursor(cursor, keys.rewards_list(program_id))
    query = TableItem.gsi1.query(keys.rewards_list(program_id), limit=limit, last_evaluated_key=start)
    items = [reward_view(item) for item in query if isinstance(item, RewardItem)]
    visible = [r for r in items if include_inactive or r["active"]]
    return {"items": visible, "next_cursor": encode_cursor(query.last_evaluated_key) if len(items) == limit else None}


def redeem(settings: Settings, principal: MemberPrincipal, body: RedemptionIn) -> tuple[dict[str, Any], int]:
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    config = program_config(settings, program_id)
    request_hash = fingerprint(body)
    row_key = keys.member_operation(program_id, member_id, "redeem", body.request_id)
    reward_key = keys.reward(program_id, body.reward_id)
    limit_key = keys.reward_limit(program_id, member_id, body.reward_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([row_key, reward_key, limit_key])
        if row_key in found:
            return replay(found[row_key], request_hash, "request_id")
        reward = found.get(reward_key)
        if not isinstance(reward, RewardItem) or not reward.active:
            raise NotFound("no such reward", code="reward_not_found")
        if int(reward.stock) < body.quantity:
            raise Conflict("not enough stock", code="out_of_stock")
        redeemed_before = int(getattr(found.get(limit_key), "count", 0) or 0)
        limit = reward.per_member_limit
        if limit is not None and redeemed_before + body.quantity > int(limit):
            raise Conflict(f"at most {int(limit)} per member", code="limit_reached")
        record = store.member(program_id, member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = now_utc()
        price = int(reward.points_price) * body.quantity
        try:
            change = balance.spend(store.balances_of(record.account), record.lot_values, config.today(now), price)
        except balance.InDebt:
            raise InsufficientPoints("points are owed from a refund; redemption is paused until repaid") from None
        except balance.NotEnoughPoints:
            if store.get_item(LedgerItem, row_key) is not None:  # our duplicate landed since the first read
                raise TryAgain from None
            raise InsufficientPoints() from None
        redemption_id = redemption_id_for(body.request_id)
        answer = {
            "redemption_id": redemption_id, "request_id": body.request_id, "reward_id": body.reward_id,
            "quantity": body.quantity, "points_spent": price, "cash_fen": int(reward.cash_fen) * body.quantity,
            "points_balance": change.after.points, "status": "redeemed",
        }
        row = store.LedgerRow(
            key=row_key, type="redeem", points=-price, reason=f"redeemed {body.quantity} x {reward.name}",
            ref=redemption_id, request_hash=request_hash, response=first_answer(answer),
            detail={"reward_id": body.reward_id, "quantity": body.quantity, "status": "redeemed",
                    "limited": limit is not None,
                    "draws": [[d.expires_on.isoformat(), d.points] for d in change.draws]},
        )

        def stock_and_limit(tx: Transaction) -> None:
            tx.update(RewardItem(*reward_key), actions=[RewardItem.stock.add(-body.quantity)],
                      condition=RewardItem.stock >= body.quantity, label="stock")
            if limit is not None:
                _limit_update(tx, limit_key, body.quantity, int(limit))

        with reread_if_taken("ledger", "stock", "limit"):  # re-read: a replay, or the stock/limit answer is now final
            store.apply_change(program_id, record.account, change,
                               {lot.expires_on: lot.remaining for lot in record.lot_values}, row, stamp(now),
                               new_entry_id(), extra=stock_and_limit,
                               activity_day=config.today(now).isoformat())
        metrics.emit("Redemptions")
        metrics.emit("PointsRedeemed", price)
        return answer, 201

    return with_retries(settings, attempt)


def _limit_update(tx: Transaction, key: tuple[str, str], delta: int, limit: int | None) -> None:
    condition = None
    if delta > 0 and limit is not None:
        condition = RewardLimitItem.count.does_not_exist() | (RewardLimitItem.count <= limit - delta)
    tx.update(RewardLimitItem(*key), actions=[RewardLimitItem.kind.set(RewardLimitItem), RewardLimitItem.count.add(delta)],
              condition=condition, label="limit")


def cancel_redemption(settings: Settings, program_id: str, member_id: str, redemption_id: str) -> dict[str, Any]:
    """Put the points back into the lots they came from and the stock back; once."""
    config = program_config(settings, program_id)

    def attempt() -> dict[str, Any]:
        row = _find_redemption(program_id, member_id, redemption_id)
        detail = dict(row.detail or {})
        cancel_key = keys.member_operation(program_id, member_id, "cancel", redemption_id)
        if detail.get("status") == "cancelled":
            previous = store.get_item(LedgerItem, cancel_key)
            return dict((previous.response or {}) if previous else {}, status="cancelled")
        record = store.member(program_id, member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        now = now_utc()
        draws = [Draw(dt.date.fromisoformat(day), int(n)) for day, n in detail.get("draws", [])]
        change = balance.restore(store.balances_of(record.account), draws, config.today(now))
        returned = change.after.points - int(record.account.points)
        answer = {"redemption_id": redemption_id, "status": "cancelled", "points_returned": returned,
                  "points_forfeited": -int(row.points) - returned, "points_balance": change.after.points}
        ledger_row = store.LedgerRow(
            key=cancel_key, type="reverse", points=returned, reason="redemption cancelled",
            ref=redemption_id, request_hash=None, response=answer,
            detail={"forfeited_expired": answer["points_forfeited"]},
        )
        reward_key = keys.reward(program_id, detail["reward_id"])
        quantity = int(detail["quantity"])

        def restock(tx: Transaction) -> None:
            tx.update(LedgerItem(row.pk, row.sk),
                      actions=[LedgerItem.detail.set({**detail, "status": "cancelled"})],
                      condition=LedgerItem.pk.exists(), label="redemption")
            tx.update(RewardItem(*reward_key), actions=[RewardItem.stock.add(quantity)],
                      condition=RewardItem.pk.exists(), label="stock")
            if detail.get("limited"):
                _limit_update(tx, keys.reward_limit(program_id, member_id, detail["reward_id"]), -quantity, None)

        # The cancel row (keyed by the redemption) is what makes a cancel happen once.
        with reread_if_taken("ledger", "redemption"):
            store.apply_change(program_id, record.account, change,
                               {lot.expires_on: lot.remaining for lot in record.lot_values}, ledger_row,
                               stamp(now), new_entry_id(), extra=restock)
        return answer

    return with_retries(settings, attempt)


def redemption_id_for(request_id: str) -> str:
    """A redemption's id names the member's request_id, so the row is one key read away."""
    return f"rd-{request_id}"


def _find_redemption(program_id: str, member_id: str, redemption_id: str) -> LedgerItem:
    if not redemption_id.startswith("rd-"):
        raise NotFound("no such redemption", code="redemption_not_found")
    row = store.get_item(LedgerItem, keys.member_operation(program_id, member_id, "redeem", redemption_id[3:]))
    if row is None or row.type != "redeem":
        raise NotFound("no such redemption", code="redemption_not_found")
    return row


def cancel_my_redemption(settings: Settings, principal: MemberPrincipal, redemption_id: str) -> dict[str, Any]:
    return cancel_redemption(settings, principal.program_id, resolve_member_id(principal), redemption_id)
