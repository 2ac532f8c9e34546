"""WeChat Pay's side of money: notifications, settling orders nobody told us about, refunds of
top-ups, and the daily reconciliation and liability.

A payment is applied once however often and in whatever order it is reported (the notification,
its retries for 24 h, the query job): every path ends in the same transaction whose condition is
the order's status `pending`. A notification we cannot use is logged with its reason and answered
so that WeChat Pay retries only where a retry can help (our failure: 5xx; a bad signature or a
stale timestamp: 401, its next retry is signed afresh). Facts a retry cannot change (an unknown
out_trade_no, a wrong amount, appid or mchid) are acknowledged, logged and left for reconciliation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.exceptions import UpdateError

from chalicelib import clock, ids
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.auth.wechatpay import PaymentNotice
from chalicelib.domain import stored_value as money
from chalicelib.domain.text import FreeText
from chalicelib.errors import Conflict, NotFound, RetryLater
from chalicelib.jobs import JobContext, Step
from chalicelib.logs import logger
from chalicelib.services import membership, pay_orders, rewards, stored_value
from chalicelib.services.idempotency import CallerKey, fingerprint, reread_if_taken, with_retries
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store import stored_value as wallets
from chalicelib.store.models import (
    LiabilityItem,
    PayOrderItem,
    PayRefundItem,
    StoredValueEntryItem,
    StoredValueItem,
    TableItem,
)
from chalicelib.store.tx import Transaction

SUCCESS_REPLY = {"code": "SUCCESS", "message": "OK"}
REFUND_PENDING, REFUND_SUCCEEDED, REFUND_FAILED = "pending", "succeeded", "failed"
_MAX_DUE_DAYS = 3  # an order lives at most a day (settings); a missed weekend of runs still catches up
REFUND_RECHECK = dt.timedelta(minutes=2)


# --- settling a paid order (notification or query) --------------------------------------------

def _settlers() -> dict[str, Callable[..., str]]:
    """What a paid order of each purpose does."""
    return {"top_up": stored_value.credit_top_up, "reward": rewards.capture_paid,
            "membership": membership.activate_paid}


def settle_paid(settings: Settings, transaction: dict[str, Any], source: str) -> str:
    """Apply a transaction WeChat Pay reports as paid to our order, once. Returns the outcome
    (credited, duplicate, or why nothing was credited), which is also logged."""
    out_trade_no = str(transaction.get("out_trade_no") or "")
    order_key = keys.pay_order(out_trade_no) if out_trade_no else None
    wanted: list[tuple[str, str]] = [order_key] if order_key else []
    # `attach` (set by us when ordering, signed by WeChat Pay) names the wallet: one read for both.
    program_id, _, member_id = str(transaction.get("attach") or "").partition("/")
    wallet_key = keys.stored_value(program_id, member_id) if program_id and member_id else None
    if wallet_key:
        wanted.append(wallet_key)
    found = store.read_items(wanted) if wanted else {}
    order = found.get(order_key) if order_key else None
    reason = _mismatch(settings, order, transaction)
    if reason or not isinstance(order, PayOrderItem):
        logger().warning("payment not applied", extra={"reason": reason, "out_trade_no": out_trade_no, "source": source})
        return reason or "unknown_order"
    wallet_item = found.get(wallet_key) if wallet_key == keys.stored_value(order.program_id, order.member_id) else \
        store.get_item(StoredValueItem, keys.stored_value(order.program_id, order.member_id))
    outcome = _settlers()[order.purpose](settings, order, wallet_item, str(transaction.get("transaction_id") or ""),
                                         str(transaction.get("success_time") or clock.stamp(clock.now())))
    logger().info("payment settled", extra={"outcome": outcome, "out_trade_no": out_trade_no, "source": source})
    return outcome


def _mismatch(settings: Settings, order: TableItem | None, transaction: dict[str, Any]) -> str | None:
    if not isinstance(order, PayOrderItem):
        return "unknown_order"
    if transaction.get("trade_state") != "SUCCESS":
        return f"trade_state_{str(transaction.get('trade_state') or 'missing').lower()}"
    if transaction.get("mchid") != settings.secret("wechatpay_mchid"):
        return "wrong_mchid"
    if transaction.get("appid") != order.appid:
        return "wrong_appid"
    amount = transaction.get("amount") or {}
    if not isinstance(amount, dict) or amount.get("total") != int(order.total_fen) or amount.get("currency", "CNY") != "CNY":
        return "wrong_amount"
    return None


def on_notification(settings: Settings, notice: PaymentNotice) -> dict[str, str]:
    """The notify route's view: the notification is already verified and decrypted."""
    if notice.event_type == "TRANSACTION.SUCCESS":
        settle_paid(settings, notice.resource, "notification")
    elif notice.event_type.startswith("REFUND."):
        out_refund_no = str(notice.resource.get("out_refund_no") or "")
        status = str(notice.resource.get("refund_status") or "")
        settle_refund(settings, out_refund_no, status, "notification")
    else:
        logger().info("notification ignored", extra={"event_type": notice.event_type})
    return SUCCESS_REPLY


# --- the frequent job: orders and refunds nobody told us about --------------------------------

def _due(partition_of: Callable[[str], str], now: dt.datetime, limit: int) -> list[TableItem]:
    cutoff = clock.stamp(now)
    found: list[TableItem] = []
    for days_back in range(_MAX_DUE_DAYS, -1, -1):
        day = (now - dt.timedelta(days=days_back)).date().isoformat()
        found += list(TableItem.gsi2.query(partition_of(day), TableItem.gsi2sk <= cutoff, limit=limit))
    return found


def settle_due_orders(settings: Settings, now: dt.datetime, limit: int = 200) -> dict[str, int]:
    """Query every pending order due for a check: paid ones are settled, timed-out ones closed,
    the others checked again when they time out."""
    from chalicelib.wechat import pay

    summary = {"queried": 0, "settled": 0, "closed": 0, "refunds_settled": 0}
    for item in _due(keys.pay_orders_due, now, limit):
        if not isinstance(item, PayOrderItem) or item.status != pay_orders.PENDING:
            continue
        summary["queried"] += 1
        try:
            found = pay.query_order(settings, item.out_trade_no)
            if found and found.get("trade_state") == "SUCCESS":
                if settle_paid(settings, found, "query") == "credited":
                    summary["settled"] += 1
                continue
            if clock.stamp(now) < item.expires_at:  # not yet timed out: look again when it does
                expires_at = dt.datetime.fromisoformat(item.expires_at)
                pk, sk = pay_orders.due_slot(item.out_trade_no, expires_at)
                PayOrderItem(item.pk, item.sk).update(actions=[PayOrderItem.gsi2pk.set(pk), PayOrderItem.gsi2sk.set(sk)],
                                                      condition=PayOrderItem.status == pay_orders.PENDING)
                continue
            if found is not None:
                try:
                    pay.close_order(settings, item.out_trade_no)
                except pay.WechatPayRefused as refused:
                    if refused.wechat_code == "ORDERPAID":  # paid at the last moment: settle it next run
                        continue
                    raise
            if _close(settings, item, now):
                summary["closed"] += 1
        except (RetryLater, pay.WechatPayRefused) as exc:
            logger().warning("order check failed", extra={"out_trade_no": item.out_trade_no, "error": type(exc).__name__})
    for item in _due(keys.pay_refunds_due, now, limit):
        if isinstance(item, PayRefundItem) and item.status == REFUND_PENDING:
            try:
                found = pay.query_refund(settings, item.out_refund_no)
            except (RetryLater, pay.WechatPayRefused):
                continue
            if found is None:  # our request never reached WeChat Pay: ask again (same out_refund_no)
                _ask_wechat_pay(settings, item, "会员退款" if item.purpose == "membership" else "储值退款")
                again = store.get_item(PayRefundItem, (item.pk, item.sk))
                if isinstance(again, PayRefundItem) and again.status != REFUND_PENDING:
                    summary["refunds_settled"] += 1
                continue
            if found and settle_refund(settings, item.out_refund_no, str(found.get("status") or ""), "query") != "pending":
                summary["refunds_settled"] += 1
    return summary


def _close(settings: Settings, item: PayOrderItem, now: dt.datetime) -> bool:
    """Mark a timed-out order closed, once; a reward's held points go back in the same transaction."""
    if item.purpose == "reward":
        return rewards.release_unpaid(settings, item) == "released"
    try:
        PayOrderItem(item.pk, item.sk).update(
            actions=[PayOrderItem.status.set(pay_orders.CLOSED), PayOrderItem.closed_at.set(clock.stamp(now)),
                     PayOrderItem.gsi2pk.remove(), PayOrderItem.gsi2sk.remove()],
            condition=PayOrderItem.status == pay_orders.PENDING)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":  # settled meanwhile
            return False
        raise
    return True


def settle_or_close_now(settings: Settings, item: PayOrderItem, now: dt.datetime) -> str:
    """A pending order that must end now (its member is leaving): paid at WeChat Pay -> settled
    ("credited"), otherwise closed there and here ("closed"), so it can never be paid later.
    Raises RetryLater while WeChat Pay cannot be reached."""
    from chalicelib.wechat import pay

    found = pay.query_order(settings, item.out_trade_no)
    if found and found.get("trade_state") == "SUCCESS":
        settle_paid(settings, found, "query")
        return "credited"
    if found is not None:
        try:
            pay.close_order(settings, item.out_trade_no)
        except pay.WechatPayRefused as refused:
            if refused.wechat_code == "ORDERPAID":
                raise RetryLater("the order was paid at this moment: ask again") from None
            raise
    _close(settings, item, now)
    return "closed"


# --- refunding a top-up (staff) ---------------------------------------------------------------

class TopUpRefundIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    request_id: str = Field(pattern=ids.ID_PATTERN)
    reason: FreeText = Field(default="储值退款", min_length=1, max_length=80)


def out_refund_no_for(program_id: str, top_up_id: str, request_id: str) -> str:
    digest = hashlib.sha256(f"{program_id}\n{top_up_id}\n{request_id}".encode()).hexdigest()
    return "rf" + digest[:30]


def _refund_view(item: PayRefundItem, stored_value_fen: int | None = None) -> dict[str, Any]:
    view = {"refund_id": item.out_refund_no, "top_up_id": item.out_trade_no, "member_id": item.member_id,
            "refund_fen": int(item.refund_fen), "bonus_forfeited_fen": int(item.forfeit_bonus_fen),
            "status": item.status}
    if stored_value_fen is not None:
        view["stored_value_fen"] = stored_value_fen
    return view


def refund_top_up(settings: Settings, staff: StaffPrincipal, member_id: str, top_up_id: str,
                  body: TopUpRefundIn) -> tuple[dict[str, Any], int]:
    """Refund a top-up's unspent principal through WeChat Pay; its bonus is forfeited in
    proportion. The money is frozen first (one transaction, guarded by the wallet's version and
    the top-up's refunded total), then WeChat Pay is asked (stable out_refund_no); the answer, a
    refund notification or the query job settles it: paid out, or given back if it failed."""
    program_id = staff.program_id
    out_refund_no = out_refund_no_for(program_id, top_up_id, body.request_id)
    caller_key = CallerKey("request_id", keys.pay_refund(out_refund_no),
                           fingerprint(body, member_id=member_id, top_up_id=top_up_id))
    order_key = keys.pay_order(top_up_id)
    wallet_key = keys.stored_value(program_id, member_id)

    def attempt() -> PayRefundItem:
        found = store.read_items([caller_key.item_key, order_key, wallet_key])
        existing = found.get(caller_key.item_key)
        if isinstance(existing, PayRefundItem):
            caller_key.replay_of(existing)  # 409 if the same request_id came with another body
            return existing
        order = found.get(order_key)
        if not (isinstance(order, PayOrderItem) and order.purpose == "top_up" and order.program_id == program_id
                and order.member_id == member_id):
            raise NotFound("no such top-up", code="top_up_not_found")
        if order.status != pay_orders.PAID:
            raise Conflict(f"the top-up is {order.status}, not paid", code="top_up_not_paid")
        wallet_item = found.get(wallet_key)
        wallet = wallets.wallet_of(wallet_item)  # type: ignore[arg-type]
        plan = money.top_up_refund(int(order.total_fen), int(order.bonus_fen), int(order.refunded_fen),
                                   int(order.forfeited_bonus_fen), wallet)
        if plan.refund_fen == 0:
            raise Conflict("nothing of this top-up's principal is left to refund", code="nothing_to_refund")
        split = money.Split(plan.refund_fen, plan.forfeit_bonus_fen)
        after = money.freeze(wallet, split)
        now = clock.now()
        stamp, day = clock.stamp(now), program_config(settings, program_id).today(now).isoformat()
        due_pk = keys.pay_refunds_due((now + REFUND_RECHECK).date().isoformat())
        refund = PayRefundItem(
            *caller_key.item_key, program_id=program_id, member_id=member_id, out_refund_no=out_refund_no,
            out_trade_no=top_up_id, refund_fen=plan.refund_fen, total_fen=int(order.total_fen),
            forfeit_bonus_fen=plan.forfeit_bonus_fen, status=REFUND_PENDING, created_at=stamp,
            request_hash=caller_key.request_hash, response={},
            gsi2pk=due_pk, gsi2sk=f"{clock.stamp(now + REFUND_RECHECK)}#{out_refund_no}",
        )
        tx = Transaction()
        tx.put(refund, PayRefundItem.pk.does_not_exist(), label="pay_refund")
        tx.update(PayOrderItem(*order_key),
                  actions=[PayOrderItem.refunded_fen.set(int(order.refunded_fen) + plan.refund_fen),
                           PayOrderItem.forfeited_bonus_fen.set(int(order.forfeited_bonus_fen) + plan.forfeit_bonus_fen),
                           PayOrderItem.refund_count.add(1)],
                  condition=PayOrderItem.refunded_fen == int(order.refunded_fen), label=pay_orders.ORDER_LABEL)
        wallets.write(tx, program_id, member_id, wallet_item, after,  # type: ignore[arg-type]
                      wallets.Entry("refund", out_refund_no, "refund_pending", -split.principal, -split.bonus,
                                    top_up_id),
                      stamp, day, ids.new_entry_id())
        with reread_if_taken("pay_refund", pay_orders.ORDER_LABEL, wallets.WALLET_LABEL, wallets.ENTRY_LABEL):
            tx.commit()
        return refund

    refund = with_retries(settings, attempt)
    if refund.response:  # the same request_id again: the first answer, as every idempotent call
        return caller_key.replay_of(refund)  # type: ignore[return-value]
    if refund.status == REFUND_PENDING:
        _ask_wechat_pay(settings, refund, body.reason)
        refund = store.get_item(PayRefundItem, caller_key.item_key) or refund
    wallet_item = store.get_item(StoredValueItem, wallet_key)
    answer = _refund_view(refund, wallets.wallet_of(wallet_item).available)
    # Kept for replays; the first caller to get here wins (a retry racing the first may answer live).
    with contextlib.suppress(UpdateError):
        PayRefundItem(*caller_key.item_key).update(
            actions=[PayRefundItem.response.set(caller_key.answer(answer))],
            condition=PayRefundItem.response == {})
    return answer, 201


def _ask_wechat_pay(settings: Settings, refund: PayRefundItem, reason: str) -> None:
    """Ask WeChat Pay (again: out_refund_no makes it idempotent there) and settle on a final answer;
    anything else leaves it pending for the notification or the query job."""
    from chalicelib.wechat import pay

    try:
        answer = pay.refund(settings, out_refund_no=refund.out_refund_no, out_trade_no=refund.out_trade_no,
                            refund_fen=int(refund.refund_fen), total_fen=int(refund.total_fen), reason=reason)
    except RetryLater:
        return  # unknown: the query job asks again
    except pay.WechatPayRefused as refused:
        logger().warning("refund refused", extra={"out_refund_no": refund.out_refund_no, "code": refused.wechat_code})
        settle_refund(settings, refund.out_refund_no, "REFUSED", "answer")
        return
    settle_refund(settings, refund.out_refund_no, str(answer.get("status") or ""), "answer")


def settle_refund(settings: Settings, out_refund_no: str, wechat_status: str, source: str) -> str:
    """SUCCESS: the frozen money leaves for good. CLOSED, ABNORMAL or refused: it goes back to the
    member and the top-up's refunded total drops again. Anything else: still pending. Once."""
    if wechat_status == "SUCCESS":
        outcome = REFUND_SUCCEEDED
    elif wechat_status in ("CLOSED", "ABNORMAL", "REFUSED"):
        outcome = REFUND_FAILED
    else:
        return REFUND_PENDING
    refund_key = keys.pay_refund(out_refund_no)

    def attempt() -> str:
        refund = store.get_item(PayRefundItem, refund_key)
        if not isinstance(refund, PayRefundItem):
            logger().warning("refund not ours", extra={"out_refund_no": out_refund_no, "source": source})
            return "unknown_refund"
        if refund.status != REFUND_PENDING:
            return refund.status
        if refund.purpose == "membership":  # a membership order's refund (services/membership_refunds.py)
            return _settle_membership_refund(refund, outcome, source)
        program_id, member_id = refund.program_id, refund.member_id
        wallet_item = store.get_item(StoredValueItem, keys.stored_value(program_id, member_id))
        split = money.Split(int(refund.refund_fen), int(refund.forfeit_bonus_fen))
        wallet = wallets.wallet_of(wallet_item)
        now = clock.now()
        stamp, day = clock.stamp(now), program_config(settings, program_id).today(now).isoformat()
        tx = Transaction()
        tx.update(PayRefundItem(*refund_key),
                  actions=[PayRefundItem.status.set(outcome), PayRefundItem.settled_at.set(stamp),
                           PayRefundItem.gsi2pk.remove(), PayRefundItem.gsi2sk.remove()],
                  condition=PayRefundItem.status == REFUND_PENDING, label="pay_refund")
        if outcome == REFUND_SUCCEEDED:
            after = money.capture(wallet, split)
            entry = wallets.Entry("refunded", out_refund_no, "refund", 0, 0, refund.out_trade_no)
        else:
            after = money.release(wallet, split)
            entry = wallets.Entry("refunded", out_refund_no, "refund_failed", split.principal, split.bonus,
                                  refund.out_trade_no)
            tx.update(PayOrderItem(*keys.pay_order(refund.out_trade_no)),
                      actions=[PayOrderItem.refunded_fen.add(-split.principal),
                               PayOrderItem.forfeited_bonus_fen.add(-split.bonus)],
                      condition=PayOrderItem.pk.exists(), label=pay_orders.ORDER_LABEL)
        wallets.write(tx, program_id, member_id, wallet_item, after, entry, stamp, day, ids.new_entry_id())
        with reread_if_taken("pay_refund", wallets.WALLET_LABEL, wallets.ENTRY_LABEL):
            tx.commit()
        logger().info("refund settled", extra={"out_refund_no": out_refund_no, "outcome": outcome, "source": source})
        return outcome

    return with_retries(settings, attempt)


def _settle_membership_refund(refund: PayRefundItem, outcome: str, source: str) -> str:
    """The refund pending -> final; on failure the membership is restored in the same transaction."""
    now = clock.now()
    tx = Transaction()
    tx.update(PayRefundItem(refund.pk, refund.sk),
              actions=[PayRefundItem.status.set(outcome), PayRefundItem.settled_at.set(clock.stamp(now)),
                       PayRefundItem.gsi2pk.remove(), PayRefundItem.gsi2sk.remove()],
              condition=PayRefundItem.status == REFUND_PENDING, label="pay_refund")
    membership.settle_refund(tx, refund, outcome == REFUND_SUCCEEDED, now)
    with reread_if_taken("pay_refund", membership.MEMBERSHIP_LABEL, membership.ENTITLEMENT_LABEL):
        tx.commit()
    logger().info("refund settled", extra={"out_refund_no": refund.out_refund_no, "outcome": outcome, "source": source})
    return outcome


# --- daily: reconciliation against WeChat Pay, and the stored-value liability -----------------

def reconcile_payments_step(ctx: JobContext) -> Step:
    """Every order we made on the day, against WeChat Pay's query: a paid order WeChat Pay does
    not call SUCCESS, or the reverse, or another amount, is reported (and changes nothing)."""
    from chalicelib.wechat import pay

    partition = keys.pay_orders_of_day(ctx.program_id, ctx.as_of.isoformat())
    start = ctx.state.get("after")
    query = TableItem.gsi1.query(partition, limit=100,
                                 last_evaluated_key=start if isinstance(start, dict) else None)
    checked, mismatches = 0, list[dict[str, Any]]()
    for item in query:
        if not isinstance(item, PayOrderItem):
            continue
        checked += 1
        try:
            theirs = pay.query_order(ctx.settings, item.out_trade_no)
        except (RetryLater, pay.WechatPayRefused) as exc:
            mismatches.append({"out_trade_no": item.out_trade_no, "ours": item.status, "theirs": f"error:{type(exc).__name__}"})
            continue
        state = (theirs or {}).get("trade_state", "NOT_FOUND")
        amount = ((theirs or {}).get("amount") or {}).get("total")
        ours_paid = item.status == pay_orders.PAID
        if ours_paid != (state in ("SUCCESS", "REFUND")) or (theirs and amount != int(item.total_fen)):
            mismatches.append({"out_trade_no": item.out_trade_no, "ours": item.status, "theirs": state,
                               "amount_fen": int(item.total_fen), "their_amount_fen": amount})
    if mismatches:
        logger().warning("payment mismatches", extra={"count": len(mismatches), "as_of": ctx.as_of.isoformat()})
    following = query.last_evaluated_key
    summary: dict[str, Any] = {"orders_checked": checked,
                               "mismatches": list(ctx.summary.get("mismatches", [])) + mismatches}
    return Step(done=not following, state={"after": following} if following else {}, summary=summary)


def liability_step(ctx: JobContext) -> Step:
    """Stored value owed at the end of the day = the day before's + the day's changes (principal
    and bonus apart; frozen money still owed). Reads only the day's changes (sharded queue)."""
    day = ctx.as_of.isoformat()
    previous_day = (ctx.as_of - dt.timedelta(days=1)).isoformat()
    previous = store.get_item(LiabilityItem, keys.liability(ctx.program_id, previous_day))
    principal = int(previous.principal_fen) if previous else 0
    bonus = int(previous.bonus_fen) if previous else 0
    changes = 0
    for shard in range(keys.MEMBER_SHARDS):
        for item in TableItem.gsi2.query(keys.stored_value_day_partition(ctx.program_id, day, shard)):
            if isinstance(item, StoredValueEntryItem):
                principal += int(item.owed_principal_fen or 0)
                bonus += int(item.owed_bonus_fen or 0)
                changes += 1
    LiabilityItem(*keys.liability(ctx.program_id, day), program_id=ctx.program_id, day=day, principal_fen=principal,
                  bonus_fen=bonus, created_at=clock.stamp(clock.now())).save()
    return Step(done=True, summary={"day": day, "changes": changes, "principal_fen": principal, "bonus_fen": bonus,
                                    "previous_day_known": previous is not None})

