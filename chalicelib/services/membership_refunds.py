"""Refunding a paid membership order (staff, issue 14), through the money feature's WeChat Pay
refund machinery (services/payments.py: PayRefundItem, its statuses, the query job, REFUND.*
notifications all settle it).

Policy (domain/membership.py `refund_for`): the unused WHOLE days of the entitlement are paid back
pro rata (rounded down to the fen), less the value of the benefits already granted: every coupon
pack issued so far (one when the entitlement starts, then one each 30 days) is deducted at its
face value (an amount-off coupon's `off_fen`, a percent coupon's `max_off_fen`, else 0), used or
not; the coupons themselves stay with the member. Points earned through the membership's
multiplier are not taken back.

Only the member's LATEST entitlement (the one whose end is the account's `membership_until`) can
be refunded: an earlier one has a later one stacked on it (409 `refund_latest_first`; refund the
later one first). One transaction: the refund item (pending, the query job's queue), the order's
refunded total (guarded by its value: 0, so once per order), the entitlement (active -> refunded,
its end cut to now or to its start if it had not started, the refund's id/time/days on it: the
history) and the account's `membership_until` moved back to that cut (guarded by its value). Then
WeChat Pay is asked (stable out_refund_no). SUCCESS: done. Failed (CLOSED, ABNORMAL, refused): the
membership is restored in one transaction (entitlement active with its old end; the account's end
moved out again by the days cut) and the order's refunded total drops back, so staff can retry
with a new request_id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.exceptions import UpdateError

from chalicelib import clock, ids
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.domain import membership as rules
from chalicelib.domain.program import ProgramConfig
from chalicelib.domain.text import FreeText
from chalicelib.errors import Conflict, NotFound
from chalicelib.services import pay_orders, payments
from chalicelib.services.idempotency import CallerKey, fingerprint, reread_if_taken, with_retries
from chalicelib.services.membership import ENTITLEMENT_LABEL, MEMBERSHIP_LABEL
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import AccountItem, CouponTemplateItem, MembershipItem, PayOrderItem, PayRefundItem
from chalicelib.store.tx import Transaction

PURPOSE = "membership"
REASON = "会员退款"


class MembershipRefundIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    request_id: str = Field(pattern=ids.ID_PATTERN)
    reason: FreeText = Field(default=REASON, min_length=1, max_length=80)


def pack_value_fen(settings: Settings, config: ProgramConfig) -> int:
    """What one coupon pack is worth at face value (the templates as they are now)."""
    total = 0
    for template_id in config.membership.monthly_coupons:
        template = store.get_item(CouponTemplateItem, keys.coupon_template(config.program_id, template_id))
        if isinstance(template, CouponTemplateItem) and isinstance(template.rules, dict):
            face = template.rules.get("off_fen") or template.rules.get("max_off_fen") or 0
            total += int(face) if isinstance(face, int) else 0
    return total


def _view(refund: PayRefundItem, until: str | None) -> dict[str, Any]:
    return {"refund_id": refund.out_refund_no, "order_id": refund.out_trade_no, "member_id": refund.member_id,
            "refund_fen": int(refund.refund_fen), "unused_days": int(refund.unused_days or 0),
            "deducted_fen": int(refund.deducted_fen or 0), "status": refund.status, "membership_until": until}


def refund_membership(settings: Settings, staff: StaffPrincipal, member_id: str, order_id: str,
                      body: MembershipRefundIn) -> tuple[dict[str, Any], int]:
    program_id = staff.program_id
    out_refund_no = payments.out_refund_no_for(program_id, order_id, body.request_id)
    caller_key = CallerKey("request_id", keys.pay_refund(out_refund_no),
                           fingerprint(body, member_id=member_id, order_id=order_id))
    order_key = keys.pay_order(order_id)
    account_key = keys.account(program_id, member_id)
    entitlement_key = keys.membership(program_id, member_id, order_id)

    def attempt() -> PayRefundItem:
        found = store.read_items([caller_key.item_key, order_key, account_key, entitlement_key])
        existing = found.get(caller_key.item_key)
        if isinstance(existing, PayRefundItem):
            caller_key.replay_of(existing)  # 409 if the same request_id came with another body
            return existing
        order, account, entitlement = found.get(order_key), found.get(account_key), found.get(entitlement_key)
        if not (isinstance(order, PayOrderItem) and order.purpose == "membership" and order.program_id == program_id
                and order.member_id == member_id and isinstance(account, AccountItem)):
            raise NotFound("no such membership order", code="membership_not_found")
        if order.status != pay_orders.PAID or not isinstance(entitlement, MembershipItem):
            raise Conflict(f"the membership order is {order.status}, not paid", code="membership_not_paid")
        if entitlement.status != "active" or int(order.refunded_fen or 0):
            raise Conflict("this membership was already refunded", code="nothing_to_refund")
        if account.membership_until != entitlement.ends_at:
            raise Conflict("a later membership is stacked on this one: refund that one first",
                           code="refund_latest_first")
        config = program_config(settings, program_id)
        now = clock.now()
        starts, ends = dt.datetime.fromisoformat(entitlement.starts_at), dt.datetime.fromisoformat(entitlement.ends_at)
        deducted = rules.packs_granted(starts, ends, now) * pack_value_fen(settings, config) \
            if config.membership.monthly_coupons else 0
        plan = rules.refund_for(int(entitlement.price_fen), starts, ends, now, deducted)
        if plan.refund_fen == 0:
            raise Conflict("nothing of this membership is left to refund", code="nothing_to_refund")
        cut = clock.stamp(min(ends, max(now, starts)))
        stamp = clock.stamp(now)
        due_pk = keys.pay_refunds_due((now + payments.REFUND_RECHECK).date().isoformat())
        refund = PayRefundItem(
            *caller_key.item_key, program_id=program_id, member_id=member_id, out_refund_no=out_refund_no,
            out_trade_no=order_id, refund_fen=plan.refund_fen, total_fen=int(order.total_fen), forfeit_bonus_fen=0,
            status=payments.REFUND_PENDING, created_at=stamp, request_hash=caller_key.request_hash, response={},
            gsi2pk=due_pk, gsi2sk=f"{clock.stamp(now + payments.REFUND_RECHECK)}#{out_refund_no}",
            purpose=PURPOSE, cut_from=entitlement.ends_at, cut_to=cut, unused_days=plan.unused_days,
            deducted_fen=min(deducted, int(entitlement.price_fen)),
        )
        tx = Transaction()
        tx.put(refund, PayRefundItem.pk.does_not_exist(), label="pay_refund")
        tx.update(PayOrderItem(*order_key),
                  actions=[PayOrderItem.refunded_fen.set(plan.refund_fen), PayOrderItem.refund_count.add(1)],
                  condition=PayOrderItem.refunded_fen == int(order.refunded_fen or 0), label=pay_orders.ORDER_LABEL)
        tx.update(MembershipItem(*entitlement_key),
                  actions=[MembershipItem.status.set("refunded"), MembershipItem.ends_at.set(cut),
                           MembershipItem.refund_id.set(out_refund_no), MembershipItem.refunded_at.set(stamp),
                           MembershipItem.refunded_days.set(plan.unused_days)],
                  condition=(MembershipItem.status == "active") & (MembershipItem.ends_at == entitlement.ends_at),
                  label=ENTITLEMENT_LABEL)
        tx.update(AccountItem(*account_key), actions=[AccountItem.membership_until.set(cut)],
                  condition=AccountItem.membership_until == entitlement.ends_at, label=MEMBERSHIP_LABEL)
        with reread_if_taken("pay_refund", pay_orders.ORDER_LABEL, ENTITLEMENT_LABEL, MEMBERSHIP_LABEL):
            tx.commit()
        return refund

    refund = with_retries(settings, attempt)
    if refund.response:  # the same request_id again: the first answer
        return caller_key.replay_of(refund)  # type: ignore[return-value]
    if refund.status == payments.REFUND_PENDING:
        payments._ask_wechat_pay(settings, refund, body.reason)
        refund = store.get_item(PayRefundItem, caller_key.item_key) or refund
    account = store.get_item(AccountItem, account_key)
    answer = _view(refund, account.membership_until if isinstance(account, AccountItem) else None)
    with contextlib.suppress(UpdateError):
        PayRefundItem(*caller_key.item_key).update(
            actions=[PayRefundItem.response.set(caller_key.answer(answer))],
            condition=PayRefundItem.response == {})
    return answer, 201

