"""Stored value (储值): plans, top-ups through WeChat Pay, history, paying at the till.

The member's money lives on its own item (`StoredValueItem`, version-guarded, apart from the
points account). Every change is one transaction: the wallet (guarded by the version read),
the history row (guarded by not existing) and the operation's own item (a top-up order moving
pending -> paid, a till payment, a refund: each guarded by its status or by not existing).
Spending order: principal first, bonus last (domain/stored_value.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from chalicelib import clock, ids
from chalicelib.auth.principals import MemberPrincipal, NonceClaim, TillPrincipal
from chalicelib.domain import stored_value as money
from chalicelib.errors import Conflict, InsufficientBalance, NotFound, RetryLater
from chalicelib.logs import logger
from chalicelib.services import pay_orders
from chalicelib.services.ledger import member_page
from chalicelib.services.idempotency import CallerKey, TryAgain, fingerprint, reread_if_taken, with_retries
from chalicelib.services.members import resolve_member_id
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store import stored_value as wallets
from chalicelib.store.models import (
    AccountItem,
    PayOrderItem,
    ProfileItem,
    StoredValueEntryItem,
    StoredValueItem,
    StoredValuePaymentItem,
    StoredValuePaymentRefundItem,
    TableItem,
)
from chalicelib.store.tx import Transaction, TransactionConflict

PAID, FROZEN, RELEASED = "paid", "frozen", "released"
# A conflict on any of these means another request got there first: re-read and answer again.
_MOVED = (wallets.WALLET_LABEL, wallets.ENTRY_LABEL)


class TopUpIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    plan_id: str = Field(pattern=ids.ID_PATTERN)
    request_id: str = Field(pattern=ids.ID_PATTERN)


class PaymentIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    payment_id: str = Field(pattern=ids.ID_PATTERN)
    member_id: str = Field(pattern=ids.ID_PATTERN)
    order_id: str = Field(pattern=ids.ID_PATTERN)
    amount_fen: StrictInt = Field(ge=1, le=10**9)
    # Two-step tills: true freezes the money; capture or release it later.
    freeze: StrictBool = False


class PaymentRefundIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    refund_id: str = Field(pattern=ids.ID_PATTERN)
    amount_fen: StrictInt = Field(ge=1, le=10**9)


def _now_and_day(settings: Settings, program_id: str) -> tuple[str, str]:
    now = clock.now()
    return clock.stamp(now), program_config(settings, program_id).today(now).isoformat()


# --- plans and history ------------------------------------------------------------------------

def plans(settings: Settings, principal: MemberPrincipal, limit: int, cursor: str | None) -> dict[str, Any]:
    """The program's plans in their order; the cursor is the position of the next page (sealed by the API)."""
    policy = program_config(settings, principal.program_id).stored_value
    start = int(cursor.removeprefix("plans:")) if cursor and cursor.startswith("plans:") and cursor[6:].isdigit() else 0
    shown = policy.plans[start:start + limit]
    following = f"plans:{start + limit}" if start + limit < len(policy.plans) else None
    return {"items": [{"plan_id": p.plan_id, "pay_fen": p.pay_fen, "bonus_fen": p.bonus_fen} for p in shown],
            "next_cursor": following}


def history(program_id: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Newest first; an unknown (or another program's) member is a 404, not an empty list."""
    page = member_page(program_id, member_id, keys.stored_value_history(program_id, member_id), limit, cursor)
    return {
        "items": [
            {"id": row.entry_id, "type": row.type, "amount_fen": int(row.amount_fen),
             "principal_fen": int(row.principal_fen), "bonus_fen": int(row.bonus_fen),
             "balance_after_fen": int(row.balance_after_fen), "ref": row.ref, "created_at": row.created_at}
            for row in page.items if isinstance(row, StoredValueEntryItem)
        ],
        "next_cursor": page.next_cursor,
    }


def my_history(principal: MemberPrincipal, limit: int, cursor: str | None) -> dict[str, Any]:
    return history(principal.program_id, resolve_member_id(principal), limit, cursor)


# --- top-ups ----------------------------------------------------------------------------------

def top_up(settings: Settings, principal: MemberPrincipal, body: TopUpIn) -> tuple[dict[str, Any], int]:
    """Open a WeChat Pay order for a plan. The cap is checked first: a top-up that would pass it
    is refused before any payment exists (409 balance_cap)."""
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    config = program_config(settings, program_id)
    out_trade_no = pay_orders.out_trade_no_for(program_id, member_id, "top_up", body.request_id)
    caller_key = CallerKey("request_id", keys.pay_order(out_trade_no), fingerprint(body, member_id=member_id))
    wallet_key = keys.stored_value(program_id, member_id)
    profile_key = keys.profile(program_id, member_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([caller_key.item_key, wallet_key, profile_key])
        order = found.get(caller_key.item_key)
        assert order is None or isinstance(order, PayOrderItem)
        replayed = pay_orders.replay(caller_key, order)
        if replayed:
            return replayed
        plan = config.stored_value.plan(body.plan_id)
        if plan is None:
            raise NotFound("no such top-up plan", code="plan_not_found")
        profile = found.get(profile_key)
        if not isinstance(profile, ProfileItem):
            raise NotFound("no such member", code="member_not_found")
        if order is None:
            wallet_item = found.get(wallet_key)
            wallet = wallets.wallet_of(wallet_item if isinstance(wallet_item, StoredValueItem) else None)
            policy = config.stored_value
            money.check_top_up(wallet, plan.pay_fen, plan.bonus_fen,
                               money.cap_for(policy.cap_named_fen, policy.cap_anonymous_fen, bool(profile.phone_hash)))
        new = pay_orders.NewOrder(program_id, member_id, "top_up", plan.plan_id, plan.pay_fen, plan.bonus_fen,
                                  config.appid, principal.openid, f"{config.name} 储值 {plan.plan_id}",
                                  config.today(clock.now()).isoformat())

        def answer_of(top_up_id: str, pay_params: dict[str, str]) -> dict[str, Any]:
            return {"top_up_id": top_up_id, "plan_id": plan.plan_id, "pay_fen": plan.pay_fen,
                    "bonus_fen": plan.bonus_fen, "pay_params": pay_params}

        return pay_orders.open_order(settings, caller_key, new, order, answer_of)

    return with_retries(settings, attempt)


def credit_top_up(settings: Settings, order: PayOrderItem, wallet_item: StoredValueItem | None,
                  transaction_id: str, paid_at: str) -> str:
    """The order was paid: credit principal and bonus, once (the order's status moves pending ->
    paid in the same transaction). Returns "credited" or "duplicate"."""
    program_id, member_id = order.program_id, order.member_id
    config = program_config(settings, program_id)

    def attempt(order: PayOrderItem, wallet_item: StoredValueItem | None) -> str:
        if order.status == pay_orders.PAID:
            return "duplicate"
        if order.status != pay_orders.PENDING:
            logger().warning("payment for a closed order", extra={"out_trade_no": order.out_trade_no})
            return "closed"
        now = clock.now()
        after = money.credit(wallets.wallet_of(wallet_item), int(order.total_fen), int(order.bonus_fen))
        tx = Transaction()
        tx.update(PayOrderItem(order.pk, order.sk),
                  actions=[PayOrderItem.status.set(pay_orders.PAID), PayOrderItem.paid_at.set(paid_at),
                           PayOrderItem.transaction_id.set(transaction_id),
                           PayOrderItem.gsi2pk.remove(), PayOrderItem.gsi2sk.remove()],
                  condition=PayOrderItem.status == pay_orders.PENDING, label=pay_orders.ORDER_LABEL)
        wallets.write(tx, program_id, member_id, wallet_item, after,
                      wallets.Entry("topup", order.out_trade_no, "top_up", int(order.total_fen), int(order.bonus_fen),
                                    order.out_trade_no),
                      clock.stamp(now), config.today(now).isoformat(), ids.new_entry_id())
        tx.commit()
        return "credited"

    first = True
    for _ in range(settings.max_conflict_retries):
        if not first:
            found = store.read_items([(order.pk, order.sk), keys.stored_value(program_id, member_id)])
            order = found[(order.pk, order.sk)]  # type: ignore[assignment]
            wallet_item = found.get(keys.stored_value(program_id, member_id))  # type: ignore[assignment]
        first = False
        try:
            with reread_if_taken(pay_orders.ORDER_LABEL, *_MOVED):
                return attempt(order, wallet_item)
        except (TryAgain, TransactionConflict):
            continue
    raise RetryLater("the stored value is very busy; retry shortly")


# --- paying at the till -----------------------------------------------------------------------

def _payment_view(item: StoredValuePaymentItem, stored_value_fen: int) -> dict[str, Any]:
    return {"payment_id": item.payment_id, "member_id": item.member_id, "order_id": item.order_id,
            "amount_fen": int(item.amount_fen), "principal_fen": int(item.principal_fen),
            "bonus_fen": int(item.bonus_fen), "status": item.status, "refunded_fen": int(item.refunded_fen),
            "stored_value_fen": stored_value_fen}


def pay(settings: Settings, till: TillPrincipal, body: PaymentIn) -> tuple[dict[str, Any], int]:
    """Pay (or freeze, for a two-step till) from the member's stored value: one BatchGet, one
    transaction carrying the till's nonce. Beyond the balance: 409 insufficient_balance."""
    program_id = till.program_id
    caller_key = CallerKey("payment_id", keys.sv_payment(program_id, body.payment_id), fingerprint(body))
    wallet_key = keys.stored_value(program_id, body.member_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([caller_key.item_key, wallet_key])
        replayed = caller_key.replay_of(found.get(caller_key.item_key))
        if replayed:
            return replayed
        wallet_item = found.get(wallet_key)
        wallet = wallets.wallet_of(wallet_item)  # type: ignore[arg-type]
        try:
            split = money.spend_split(wallet, body.amount_fen)
        except InsufficientBalance:
            if wallet_item is None:
                _require_member(program_id, body.member_id)
            if caller_key.lookup(StoredValuePaymentItem) is not None:  # our duplicate landed meanwhile
                raise TryAgain from None
            raise
        after = money.freeze(wallet, split) if body.freeze else money.spend(wallet, split)
        stamp, day = _now_and_day(settings, program_id)
        status = FROZEN if body.freeze else PAID
        answer = {"payment_id": body.payment_id, "member_id": body.member_id, "order_id": body.order_id,
                  "amount_fen": body.amount_fen, "principal_fen": split.principal, "bonus_fen": split.bonus,
                  "status": status, "refunded_fen": 0, "stored_value_fen": after.available}
        item = StoredValuePaymentItem(
            *caller_key.item_key, program_id=program_id, member_id=body.member_id, payment_id=body.payment_id,
            order_id=body.order_id, amount_fen=body.amount_fen, principal_fen=split.principal,
            bonus_fen=split.bonus, status=status, created_at=stamp, request_hash=caller_key.request_hash,
            response=caller_key.answer(answer))
        if body.freeze:  # in the due queue while frozen: a till that never settles does not keep the money
            due = clock.now() + dt.timedelta(minutes=program_config(settings, program_id).holds.ttl_minutes)
            item.gsi2pk = keys.sv_payments_due(due.date().isoformat())
            item.gsi2sk = f"{clock.stamp(due)}#{program_id}#{body.payment_id}"
        tx = Transaction()
        tx.put(item, StoredValuePaymentItem.pk.does_not_exist(), label="sv_payment")
        wallets.write(tx, program_id, body.member_id, wallet_item, after,  # type: ignore[arg-type]
                      wallets.Entry("pay", body.payment_id, "freeze" if body.freeze else "payment",
                                    -split.principal, -split.bonus, body.payment_id),
                      stamp, day, ids.new_entry_id())
        if till.nonce is not None:
            till.nonce.add_to(tx)
        with reread_if_taken("sv_payment", *_MOVED):
            tx.commit()
        return answer, 201

    return with_retries(settings, attempt)


def _require_member(program_id: str, member_id: str) -> None:
    if store.get_item(AccountItem, keys.account(program_id, member_id)) is None:
        raise NotFound("no such member", code="member_not_found")


def settle_payment(settings: Settings, till: TillPrincipal, payment_id: str, outcome: str) -> dict[str, Any]:
    """Capture (outcome "paid") or release a frozen payment, once; settling it again the same way
    answers the same."""
    return _settle_payment(settings, till.program_id, payment_id, outcome, till.nonce)


def release_due_payments(settings: Settings, now: dt.datetime, limit: int = 500) -> dict[str, int]:
    """Frozen till payments never captured within the program's hold time go back (frequent job)."""
    released = 0
    cutoff = clock.stamp(now)
    for days_back in range(8, -1, -1):  # the hold time is at most 7 days
        day = (now - dt.timedelta(days=days_back)).date().isoformat()
        for item in TableItem.gsi2.query(keys.sv_payments_due(day), TableItem.gsi2sk <= cutoff, limit=limit):
            if isinstance(item, StoredValuePaymentItem) and item.status == FROZEN:
                try:
                    _settle_payment(settings, item.program_id, item.payment_id, RELEASED, None)
                    released += 1
                except Conflict:
                    pass
    return {"released": released}


def _settle_payment(settings: Settings, program_id: str, payment_id: str, outcome: str,
                    nonce: NonceClaim | None) -> dict[str, Any]:
    payment_key = keys.sv_payment(program_id, payment_id)

    def attempt() -> dict[str, Any]:
        payment = store.get_item(StoredValuePaymentItem, payment_key)
        if not isinstance(payment, StoredValuePaymentItem):
            raise NotFound("no such payment", code="payment_not_found")
        wallet_key = keys.stored_value(program_id, payment.member_id)
        wallet_item = store.get_item(StoredValueItem, wallet_key)
        wallet = wallets.wallet_of(wallet_item)
        if payment.status == outcome:  # settled the same way before: its answer, not today's balance
            if payment.settled_response:
                return dict(payment.settled_response)
            paid_at_once = {k: v for k, v in (payment.response or {}).items() if k != "_status"}
            if paid_at_once.get("status") == outcome:  # paid in one step: the payment's own answer
                return paid_at_once
            return _payment_view(payment, wallet.available)
        if payment.status != FROZEN:
            raise Conflict(f"the payment is already {payment.status}", code="payment_settled")
        split = money.Split(int(payment.principal_fen), int(payment.bonus_fen))
        after = money.capture(wallet, split) if outcome == PAID else money.release(wallet, split)
        stamp, day = _now_and_day(settings, program_id)
        payment.status = outcome
        answer = _payment_view(payment, after.available)
        tx = Transaction()
        tx.update(StoredValuePaymentItem(*payment_key),
                  actions=[StoredValuePaymentItem.status.set(outcome), StoredValuePaymentItem.settled_at.set(stamp),
                           StoredValuePaymentItem.settled_response.set(answer),
                           StoredValuePaymentItem.gsi2pk.remove(), StoredValuePaymentItem.gsi2sk.remove()],
                  condition=StoredValuePaymentItem.status == FROZEN, label="sv_payment")
        entry_type = "capture" if outcome == PAID else "release"
        back = split if outcome == RELEASED else money.Split(0, 0)
        wallets.write(tx, program_id, payment.member_id, wallet_item, after,
                      wallets.Entry(entry_type, payment_id, entry_type, back.principal, back.bonus, payment_id),
                      stamp, day, ids.new_entry_id())
        if nonce is not None:
            nonce.add_to(tx)
        with reread_if_taken("sv_payment", *_MOVED):
            tx.commit()
        return answer

    return with_retries(settings, attempt)


def refund_payment(settings: Settings, till: TillPrincipal, payment_id: str,
                   body: PaymentRefundIn) -> tuple[dict[str, Any], int]:
    """Give (part of) a captured payment back to stored value; refunds of one payment never add
    up past it (409 refund_exceeds_payment)."""
    program_id = till.program_id
    payment_key = keys.sv_payment(program_id, payment_id)
    caller_key = CallerKey("refund_id", keys.sv_payment_refund(program_id, payment_id, body.refund_id),
                           fingerprint(body, payment_id=payment_id))

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([caller_key.item_key, payment_key])
        replayed = caller_key.replay_of(found.get(caller_key.item_key))
        if replayed:
            return replayed
        payment = found.get(payment_key)
        if not isinstance(payment, StoredValuePaymentItem):
            raise NotFound("no such payment", code="payment_not_found")
        if payment.status != PAID:
            raise Conflict(f"the payment is {payment.status}: only a paid payment is refunded", code="payment_not_paid")
        paid = money.Split(int(payment.principal_fen), int(payment.bonus_fen))
        before = money.Split(int(payment.refunded_principal_fen), int(payment.refunded_bonus_fen))
        split = money.payment_refund_split(paid, before, body.amount_fen)
        member_id = payment.member_id
        wallet_item = store.get_item(StoredValueItem, keys.stored_value(program_id, member_id))
        after = money.give_back(wallets.wallet_of(wallet_item), split)
        stamp, day = _now_and_day(settings, program_id)
        answer = {"refund_id": body.refund_id, "payment_id": payment_id, "amount_fen": body.amount_fen,
                  "principal_fen": split.principal, "bonus_fen": split.bonus, "stored_value_fen": after.available}
        tx = Transaction()
        tx.put(StoredValuePaymentRefundItem(
            *caller_key.item_key, program_id=program_id, member_id=member_id, payment_id=payment_id,
            refund_id=body.refund_id, amount_fen=body.amount_fen, principal_fen=split.principal,
            bonus_fen=split.bonus, created_at=stamp, request_hash=caller_key.request_hash,
            response=caller_key.answer(answer)), StoredValuePaymentRefundItem.pk.does_not_exist(),
            label="sv_payment_refund")
        tx.update(StoredValuePaymentItem(*payment_key),
                  actions=[StoredValuePaymentItem.refunded_fen.set(before.total + body.amount_fen),
                           StoredValuePaymentItem.refunded_principal_fen.set(before.principal + split.principal),
                           StoredValuePaymentItem.refunded_bonus_fen.set(before.bonus + split.bonus)],
                  condition=StoredValuePaymentItem.refunded_fen == before.total, label="sv_payment")
        wallets.write(tx, program_id, member_id, wallet_item, after,
                      wallets.Entry("payrefund", f"{payment_id}#{body.refund_id}", "payment_refund", split.principal,
                                    split.bonus, payment_id),
                      stamp, day, ids.new_entry_id())
        if till.nonce is not None:
            till.nonce.add_to(tx)
        with reread_if_taken("sv_payment", "sv_payment_refund", *_MOVED):
            tx.commit()
        return answer, 201

    return with_retries(settings, attempt)
