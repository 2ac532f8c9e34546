"""WeChat Pay orders we create (a top-up, the cash part of a reward): one item per order
(`PayOrderItem`, pending -> paid | closed) keyed by its out_trade_no, which hashes the caller's
key in, so the order item is also that key's record.

Opening an order: the pending item is written first (guarded by not existing), then WeChat Pay is
asked for a prepay_id with exactly the item's parameters, then the item gets the answer. A crash
in between leaves a pending item without an answer: the caller's retry asks WeChat Pay again with
the same parameters (WeChat Pay answers the same prepay_id) and completes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Callable

from chalicelib import clock
from chalicelib.errors import IdempotencyConflict
from chalicelib.services.idempotency import CallerKey, TryAgain, reread_if_taken
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store.models import PayOrderItem, PayOrderRefItem
from chalicelib.store.tx import Transaction

PENDING, PAID, CLOSED = "pending", "paid", "closed"
ORDER_LABEL = "pay_order"
# An unpaid order is first queried this long after it was made, then when it times out.
FIRST_CHECK = dt.timedelta(minutes=5)


def out_trade_no_for(program_id: str, member_id: str, purpose: str, key: str) -> str:
    """32 characters of [a-z0-9], as WeChat Pay allows: the same caller's key, the same order."""
    digest = hashlib.sha256(f"{program_id}\n{member_id}\n{purpose}\n{key}".encode()).hexdigest()
    return {"top_up": "tu", "reward": "rw", "membership": "mb"}[purpose] + digest[:30]


def attach_for(program_id: str, member_id: str) -> str:
    """Sent with the order and returned in its notification: where to read the wallet at once."""
    return f"{program_id}/{member_id}"


def due_slot(out_trade_no: str, when: dt.datetime) -> tuple[str, str]:
    return keys.pay_orders_due(when.date().isoformat()), f"{clock.stamp(when)}#{out_trade_no}"


@dataclass(frozen=True)
class NewOrder:
    program_id: str
    member_id: str
    purpose: str  # top_up | reward | membership
    ref: str
    total_fen: int
    bonus_fen: int
    appid: str
    openid: str
    description: str
    day: str  # the program's day (reconciliation lists orders by it)
    days: int | None = None  # a membership order: the plan's days as sold


def pending_item(settings: Settings, caller_key: CallerKey, order: NewOrder) -> PayOrderItem:
    """The order's item as first written: pending, in the program's day list and the due queue."""
    out_trade_no = caller_key.item_key[0].removeprefix("PAYORDER#")
    now = clock.now()
    expires_at = now + dt.timedelta(minutes=settings.wechatpay_order_ttl_minutes)
    check_pk, check_sk = due_slot(out_trade_no, min(now + FIRST_CHECK, expires_at))
    return PayOrderItem(
        *caller_key.item_key, program_id=order.program_id, member_id=order.member_id,
        out_trade_no=out_trade_no, purpose=order.purpose, ref=order.ref, status=PENDING,
        total_fen=order.total_fen, bonus_fen=order.bonus_fen, appid=order.appid, openid=order.openid,
        created_at=clock.stamp(now), expires_at=clock.stamp(expires_at), request_hash=caller_key.request_hash,
        gsi1pk=keys.pay_orders_of_day(order.program_id, order.day), gsi1sk=f"{clock.stamp(now)}#{out_trade_no}",
        gsi2pk=check_pk, gsi2sk=check_sk, days=order.days,
    )


def put_pending(tx: Transaction, item: PayOrderItem) -> None:
    tx.put(item, PayOrderItem.pk.does_not_exist(), label=ORDER_LABEL)
    # The member's pointer to it: how export and erasure find a member's orders (pending too).
    tx.put(PayOrderRefItem(*keys.pay_order_ref(item.program_id, item.member_id, item.out_trade_no),
                           out_trade_no=item.out_trade_no, created_at=item.created_at), label="pay_order_ref")


def open_order(settings: Settings, caller_key: CallerKey, order: NewOrder, found: PayOrderItem | None,
               answer_of: Callable[[str, dict[str, str]], dict[str, Any]]) -> tuple[dict[str, Any], int]:
    """Write the pending order unless `found` (an order written before, by this call's earlier
    attempt or in the caller's own transaction), get its prepay_id, sign the pay_params, store
    and return the answer."""
    from chalicelib.wechat import pay  # lazy: wechatpayv3 only where money moves

    out_trade_no = caller_key.item_key[0].removeprefix("PAYORDER#")
    if found is None:
        found = pending_item(settings, caller_key, order)
        tx = Transaction()
        put_pending(tx, found)
        with reread_if_taken(ORDER_LABEL):
            tx.commit()
    elif found.request_hash != caller_key.request_hash:
        raise IdempotencyConflict(caller_key.name)
    if found.status != PENDING:
        raise TryAgain  # settled meanwhile: the caller's re-read answers from the stored answer
    # The order's own parameters, as stored: a retry asks for exactly the same order.
    prepay_id = found.prepay_id or pay.jsapi_order(
        settings, appid=found.appid, out_trade_no=out_trade_no, description=order.description,
        total_fen=int(found.total_fen), openid=found.openid, time_expire=_wechat_time(found.expires_at),
        attach=attach_for(found.program_id, found.member_id))
    answer = answer_of(out_trade_no, pay.pay_params(settings, found.appid, prepay_id))
    stored = caller_key.answer(answer)
    PayOrderItem(*caller_key.item_key).update(
        actions=[PayOrderItem.prepay_id.set(prepay_id), PayOrderItem.response.set(stored)])
    return answer, 201


def _wechat_time(stamp: str) -> str:
    """WeChat Pay's time format: RFC 3339 with seconds and an offset (+08:00 as it shows them)."""
    moment = dt.datetime.fromisoformat(stamp).astimezone(dt.timezone(dt.timedelta(hours=8)))
    return moment.replace(microsecond=0).isoformat()


def replay(caller_key: CallerKey, found: PayOrderItem | None) -> tuple[dict[str, Any], int] | None:
    """The stored answer of an order opened before (None: not opened, or not answered yet)."""
    if found is None or not found.response:
        if found is not None and found.request_hash != caller_key.request_hash:
            raise IdempotencyConflict(caller_key.name)
        return None
    return caller_key.replay_of(found)
