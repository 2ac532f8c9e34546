"""Paid membership (付费会员): plans, the one free trial, buying through WeChat Pay, the card's
view, the daily reminders and coupon packs.

Every activation is one transaction: the entitlement row (guarded by not existing: once per
trial, once per out_trade_no), the account's `membership_until`/`membership_plan_id` (guarded by
the end we read, so two activations never both start from the same end), and the operation's own
guards: the trial claims (by unionid/openid, phone hash and member, each a conditional put) or the
WeChat Pay order moving pending -> paid. Benefits: domain/membership.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.expressions.condition import Condition

from chalicelib import clock, ids
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.domain import membership as rules
from chalicelib.domain import notifications as message_rules
from chalicelib.domain.program import ProgramConfig
from chalicelib.errors import NotFound, RetryLater, TrialUsed
from chalicelib.jobs import JobContext, Step
from chalicelib.logs import logger
from chalicelib.services import pay_orders
from chalicelib.services.idempotency import CallerKey, TryAgain, fingerprint, reread_if_taken, with_retries
from chalicelib.services.members import resolve_member_id
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.members import membership_until
from chalicelib.store.models import (
    AccountItem,
    MembershipItem,
    PayOrderItem,
    PayRefundItem,
    ProfileItem,
    StoredValueItem,
    TableItem,
    TrialClaimItem,
    TrialPhoneClaimItem,
)
from chalicelib.store.tx import ConditionsFailed, Transaction, TransactionConflict

TRIAL_SOURCE = "trial"
MEMBERSHIP_LABEL, ENTITLEMENT_LABEL, TRIAL_LABEL = "membership", "entitlement", "trial"



class MembershipIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    plan_id: str = Field(pattern=ids.ID_PATTERN)
    request_id: str = Field(pattern=ids.ID_PATTERN)


# --- plans and the card's view ----------------------------------------------------------------

def plans(settings: Settings, principal: MemberPrincipal, limit: int, cursor: str | None) -> dict[str, Any]:
    policy = program_config(settings, principal.program_id).membership
    start = int(cursor.removeprefix("plans:")) if cursor and cursor.startswith("plans:") and cursor[6:].isdigit() else 0
    shown = policy.plans[start:start + limit]
    following = f"plans:{start + limit}" if start + limit < len(policy.plans) else None
    return {"items": [{"plan_id": p.plan_id, "name": p.name, "days": p.days, "price_fen": p.price_fen,
                       "trial": p.trial} for p in shown],
            "next_cursor": following}


# --- activation (shared by the trial and a paid order) -----------------------------------------

def _activate(tx: Transaction, config: ProgramConfig, account: AccountItem, plan_id: str, days: int, source: str,
              source_id: str, price_fen: int, now: dt.datetime) -> MembershipItem:
    """Add the entitlement and move the account's end, both in `tx`."""
    program_id, member_id = account.program_id, account.member_id
    current = membership_until(account)
    entitlement = rules.next_entitlement(current, now, days)
    ends_at = clock.stamp(entitlement.ends_at)
    remind_on = config.local_day(entitlement.ends_at - dt.timedelta(days=config.membership.reminder_days))
    item = MembershipItem(
        *keys.membership(program_id, member_id, source_id), program_id=program_id, member_id=member_id,
        plan_id=plan_id, source=source, source_id=source_id, starts_at=clock.stamp(entitlement.starts_at),
        ends_at=ends_at, price_fen=price_fen, packs_issued=0, status="active", created_at=clock.stamp(now),
        gsi2pk=keys.membership_reminders(program_id, remind_on.isoformat()), gsi2sk=f"{ends_at}#{member_id}",
    )
    # The first coupon pack goes out from the stream (reaction on this item); later ones from the daily job.
    offsets = rules.packs_due(entitlement.starts_at, entitlement.ends_at)
    if config.membership.monthly_coupons and len(offsets) > 1:
        next_day = config.local_day(entitlement.starts_at + dt.timedelta(days=offsets[1]))
        item.gsi1pk, item.gsi1sk = keys.membership_packs(program_id, next_day.isoformat()), f"{member_id}#{source_id}"
    tx.put(item, MembershipItem.pk.does_not_exist(), label=ENTITLEMENT_LABEL)
    moved: Condition = (AccountItem.membership_until == account.membership_until) if account.membership_until \
        else AccountItem.membership_until.does_not_exist()
    tx.update(AccountItem(account.pk, account.sk),
              actions=[AccountItem.membership_until.set(ends_at), AccountItem.membership_plan_id.set(plan_id)],
              condition=AccountItem.pk.exists() & moved, label=MEMBERSHIP_LABEL)
    return item


def _answer(item: MembershipItem) -> dict[str, Any]:
    return {"membership": {"plan_id": item.plan_id, "until": item.ends_at}}


def buy(settings: Settings, principal: MemberPrincipal, body: MembershipIn) -> tuple[dict[str, Any], int]:
    """A trial activates at once (201 `membership`); a paid plan opens a WeChat Pay order (201
    `order_id` + `pay_params`) and activates when the payment is reported, once."""
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    config = program_config(settings, program_id)
    plan = config.membership.plan(body.plan_id)
    if plan is None:
        raise NotFound("no such membership plan", code="plan_not_found")
    if plan.trial:
        return _trial(settings, config, member_id, plan.plan_id, plan.days, body)
    return _order(settings, principal, config, member_id, plan.plan_id, plan.days, plan.price_fen, plan.name, body)


def _trial(settings: Settings, config: ProgramConfig, member_id: str, plan_id: str, days: int,
           body: MembershipIn) -> tuple[dict[str, Any], int]:
    program_id = config.program_id
    caller_key = CallerKey.generic(program_id, f"membership:{member_id}", body.request_id, body)
    account_key, profile_key = keys.account(program_id, member_id), keys.profile(program_id, member_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([caller_key.item_key, account_key, profile_key])
        replayed = caller_key.replay_of(found.get(caller_key.item_key))
        if replayed:
            return replayed
        account, profile = found.get(account_key), found.get(profile_key)
        if not isinstance(account, AccountItem) or not isinstance(profile, ProfileItem):
            raise NotFound("no such member", code="member_not_found")
        now = clock.now()
        tx = Transaction()
        # One trial per person: the claims are conditional puts, so of concurrent requests one wins.
        claims: list[tuple[type[TrialClaimItem] | type[TrialPhoneClaimItem], tuple[str, str]]] = [
            (TrialClaimItem, keys.trial_claim_member(program_id, member_id)),
            (TrialClaimItem, keys.trial_claim_wechat(program_id, profile.unionid or profile.openid))]
        if profile.phone_hash:
            claims.append((TrialPhoneClaimItem, keys.trial_claim_phone(program_id, profile.phone_hash)))
        for model, claim in claims:
            tx.put(model(*claim, member_id=member_id, claimed_at=clock.stamp(now)),
                   model.pk.does_not_exist(), label=TRIAL_LABEL)
        item = _activate(tx, config, account, plan_id, days, "trial", TRIAL_SOURCE, 0, now)
        caller_key.record(tx, _answer(item), 201)
        try:
            with reread_if_taken(MEMBERSHIP_LABEL):
                tx.commit()
        except ConditionsFailed as failed:
            if failed.labels & {TRIAL_LABEL, ENTITLEMENT_LABEL}:
                raise TrialUsed("the free trial was already used by this person") from None
            raise
        return _answer(item), 201

    return with_retries(settings, attempt)


def _order(settings: Settings, principal: MemberPrincipal, config: ProgramConfig, member_id: str, plan_id: str,
           days: int, price_fen: int, name: str, body: MembershipIn) -> tuple[dict[str, Any], int]:
    """The WeChat Pay order, through the same machinery as a top-up (services/pay_orders.py)."""
    program_id = config.program_id
    out_trade_no = pay_orders.out_trade_no_for(program_id, member_id, "membership", body.request_id)
    caller_key = CallerKey("request_id", keys.pay_order(out_trade_no), fingerprint(body, member_id=member_id))

    def attempt() -> tuple[dict[str, Any], int]:
        order = store.get_item(PayOrderItem, caller_key.item_key)
        replayed = pay_orders.replay(caller_key, order)
        if replayed:
            return replayed
        new = pay_orders.NewOrder(program_id, member_id, "membership", plan_id, price_fen, 0, config.appid,
                                  principal.openid, f"{config.name} {name}", config.today(clock.now()).isoformat(),
                                  days=days)

        def answer_of(order_id: str, pay_params: dict[str, str]) -> dict[str, Any]:
            return {"order_id": order_id, "plan_id": plan_id, "price_fen": price_fen, "pay_params": pay_params}

        return pay_orders.open_order(settings, caller_key, new, order, answer_of)

    return with_retries(settings, attempt)


def activate_paid(settings: Settings, order: PayOrderItem, wallet_item: StoredValueItem | None,
                  transaction_id: str, paid_at: str) -> str:
    """The membership order was paid (notification or query): the entitlement starts, once per
    out_trade_no (the order's status pending -> paid is in the same transaction)."""
    if order.status == pay_orders.PAID:  # as read (consistently) by the caller: a repeated notification
        return "duplicate"
    config = program_config(settings, order.program_id)
    account_key = keys.account(order.program_id, order.member_id)
    for _ in range(settings.max_conflict_retries):
        found = store.read_items([(order.pk, order.sk), account_key])
        current, account = found.get((order.pk, order.sk)), found.get(account_key)
        if not isinstance(current, PayOrderItem):
            return "unknown_order"
        if current.status == pay_orders.PAID:
            return "duplicate"
        if current.status != pay_orders.PENDING:
            logger().warning("payment for a closed order", extra={"out_trade_no": order.out_trade_no})
            return "closed"
        if not isinstance(account, AccountItem):
            logger().warning("membership paid for no member", extra={"out_trade_no": order.out_trade_no})
            return "member_not_found"
        days = int(current.days or 0) or getattr(config.membership.plan(current.ref), "days", 0)
        if not days:
            logger().warning("membership order without days", extra={"out_trade_no": order.out_trade_no})
            return "unknown_plan"
        tx = Transaction()
        tx.update(PayOrderItem(current.pk, current.sk),
                  actions=[PayOrderItem.status.set(pay_orders.PAID), PayOrderItem.paid_at.set(paid_at),
                           PayOrderItem.transaction_id.set(transaction_id),
                           PayOrderItem.gsi2pk.remove(), PayOrderItem.gsi2sk.remove()],
                  condition=PayOrderItem.status == pay_orders.PENDING, label=pay_orders.ORDER_LABEL)
        _activate(tx, config, account, current.ref, days, "order", current.out_trade_no, int(current.total_fen),
                  clock.now())
        try:
            with reread_if_taken(pay_orders.ORDER_LABEL, MEMBERSHIP_LABEL, ENTITLEMENT_LABEL):
                tx.commit()
            return "credited"
        except (TryAgain, TransactionConflict):
            continue
    raise RetryLater("the membership is very busy; retry shortly")


# --- a refund settles (made in services/membership_refunds.py) ---------------------------------

def settle_refund(tx: Transaction, refund: PayRefundItem, succeeded: bool, now: dt.datetime) -> None:
    """A membership order's refund (services/membership_refunds.py) settles: called by
    payments.settle_refund inside its transaction (the refund pending -> final).
    Success: nothing more (the membership was cut when the refund was made). Failure: the
    membership comes back: the entitlement active with its old end, the account's end moved out
    again by the days cut (from wherever it is now, guarded by that value), the order's refunded
    total back to 0."""
    if succeeded or not refund.cut_from or not refund.cut_to:
        return
    program_id, member_id = refund.program_id, refund.member_id
    account = store.get_item(AccountItem, keys.account(program_id, member_id))
    cut_days = dt.datetime.fromisoformat(refund.cut_from) - dt.datetime.fromisoformat(refund.cut_to)
    tx.update(MembershipItem(*keys.membership(program_id, member_id, refund.out_trade_no)),
              actions=[MembershipItem.status.set("active"), MembershipItem.ends_at.set(refund.cut_from),
                       MembershipItem.refunded_days.set(0)],
              condition=MembershipItem.status == "refunded", label=ENTITLEMENT_LABEL)
    tx.update(PayOrderItem(*keys.pay_order(refund.out_trade_no)),
              actions=[PayOrderItem.refunded_fen.add(-int(refund.refund_fen))],
              condition=PayOrderItem.pk.exists(), label=pay_orders.ORDER_LABEL)
    if isinstance(account, AccountItem):
        current = membership_until(account)
        if account.membership_until == refund.cut_to or current is None:
            restored = refund.cut_from
        else:  # bought again since: give the days back after whatever runs now
            restored = clock.stamp(max(current, now) + cut_days)
        moved = (AccountItem.membership_until == account.membership_until) if account.membership_until \
            else AccountItem.membership_until.does_not_exist()
        tx.update(AccountItem(account.pk, account.sk), actions=[AccountItem.membership_until.set(restored)],
                  condition=moved, label=MEMBERSHIP_LABEL)


# --- benefits over time: the first pack (stream), reminders and later packs (daily job) ---------

def first_pack(settings: Settings, program_id: str, member_id: str, source_id: str) -> int:
    """An entitlement started: its first coupon pack, once (coupons.gift guards per cause)."""
    from chalicelib.services import coupons

    templates = program_config(settings, program_id).membership.monthly_coupons
    return coupons.gift(settings, program_id, member_id, list(templates), f"membership:{source_id}:0") if templates else 0


def daily_step(ctx: JobContext) -> Step:
    """`membership-daily`: a subscribe message `reminder_days` before a membership's end (only if
    that is still the end: a renewal moved it), and the coupon packs due today."""
    from chalicelib.services import coupons, notifications

    config = program_config(ctx.settings, ctx.program_id)
    day = ctx.as_of.isoformat()
    reminded = packs = 0
    for item in TableItem.gsi2.query(keys.membership_reminders(ctx.program_id, day)):
        if not isinstance(item, MembershipItem) or item.status != "active":
            continue
        account = store.get_item(AccountItem, keys.account(ctx.program_id, item.member_id))
        if not isinstance(account, AccountItem) or account.membership_until != item.ends_at:
            continue  # renewed (or refunded) since: the end moved
        plan = config.membership.plan(item.plan_id)
        until = dt.datetime.fromisoformat(item.ends_at)
        reminded += notifications.enqueue(ctx.settings, ctx.program_id, item.member_id,
                                          message_rules.MEMBERSHIP_EXPIRING, f"membership#{item.ends_at}", {
                                              "plan_name": plan.name if plan else item.plan_id,
                                              "until": config.local_day(until).isoformat(),
                                              "days_left": config.membership.reminder_days})
    templates = list(config.membership.monthly_coupons)
    for item in TableItem.gsi1.query(keys.membership_packs(ctx.program_id, day)):
        if not isinstance(item, MembershipItem) or item.status != "active" or not templates:
            continue
        starts, ends = dt.datetime.fromisoformat(item.starts_at), dt.datetime.fromisoformat(item.ends_at)
        offsets = rules.packs_due(starts, ends)
        index = next((n for n, offset in enumerate(offsets)
                      if config.local_day(starts + dt.timedelta(days=offset)).isoformat() == day), None)
        if index is None:
            continue
        packs += coupons.gift(ctx.settings, ctx.program_id, item.member_id, templates,
                              f"membership:{item.source_id}:{index}")
        actions: list[Any]
        if index + 1 < len(offsets):
            following = config.local_day(starts + dt.timedelta(days=offsets[index + 1])).isoformat()
            actions = [MembershipItem.gsi1pk.set(keys.membership_packs(ctx.program_id, following))]
        else:
            actions = [MembershipItem.gsi1pk.remove(), MembershipItem.gsi1sk.remove()]
        MembershipItem(item.pk, item.sk).update(actions=actions + [MembershipItem.packs_issued.set(index + 1)])
    return Step(True, {}, {"membership_reminders": reminded, "membership_packs": packs})
