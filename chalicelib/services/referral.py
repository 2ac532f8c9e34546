"""Referral rewards (邀请有礼) with caps, refusals and reversal (program rules: `referral`,
domain/referral.py). Driven by the stream: the invitee's enrolment (profile INSERT), first paid
order (order INSERT) or a refund of it (a `reverse` ledger row).

The reward row (`ReferralRewardItem`, in the inviter's partition) is the once-guard: its
`reward_status` is set exactly once (paid | capped | refused), conditionally, in the same
transaction as the inviter's points and the day's and month's cap counters (each `rewarded <
cap`, ADD 1: no read-modify-write). The invitee's reward is its own ledger row keyed by the pair.
A reversal moves paid -> reversed in the transaction that takes the points back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib import clock, ids
from chalicelib.domain import balance, lots
from chalicelib.domain import referral as rules
from chalicelib.domain.program import ProgramConfig
from chalicelib.logs import logger
from chalicelib.services.idempotency import with_retries
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import (
    OrderItem,
    OrderTotalsItem,
    ProfileItem,
    ReferralCapItem,
    ReferralRewardItem,
    SightingItem,
)
from chalicelib.store.tx import ConditionsFailed, Transaction

PAID, CAPPED, REFUSED, REVERSED = "paid", "capped", "refused", "reversed"
_CAPS = ("daily_cap", "monthly_cap")


def _people(program_id: str, inviter: ProfileItem, invitee: ProfileItem) -> tuple[rules.Person, rules.Person]:
    """Both sides with the phones they hold, plus a phone one of them tried while the other held
    it (the risk rule's sightings record every member who reached for a number)."""
    inviter_phones = {inviter.phone_hash} if inviter.phone_hash else set()
    invitee_phones = {invitee.phone_hash} if invitee.phone_hash else set()
    wanted: dict[tuple[str, str], tuple[str, str]] = {}
    if inviter.phone_hash:
        wanted[keys.sighting(program_id, "phone", inviter.phone_hash)] = ("inviter", inviter.phone_hash)
    if invitee.phone_hash:
        wanted[keys.sighting(program_id, "phone", invitee.phone_hash)] = ("invitee", invitee.phone_hash)
    found = store.read_items(list(wanted)) if wanted else {}
    for key, (holder, phone) in wanted.items():
        item = found.get(key)
        seen = set(item.member_ids or []) if isinstance(item, SightingItem) else set()
        if holder == "inviter" and invitee.member_id in seen:
            invitee_phones.add(phone)
        if holder == "invitee" and inviter.member_id in seen:
            inviter_phones.add(phone)
    return (rules.Person(inviter.member_id, inviter.unionid, frozenset(inviter_phones)),
            rules.Person(invitee.member_id, invitee.unionid, frozenset(invitee_phones)))


def _set_status(program_id: str, inviter_id: str, invitee_id: str, status: str, reason: str, trigger_ref: str,
                now: str) -> bool:
    tx = Transaction()
    tx.update(ReferralRewardItem(*keys.referral_reward(program_id, inviter_id, invitee_id)),
              actions=[ReferralRewardItem.kind.set(ReferralRewardItem), ReferralRewardItem.invitee_id.set(invitee_id),
                       ReferralRewardItem.created_at.set(now), ReferralRewardItem.reward_status.set(status),
                       ReferralRewardItem.reward_reason.set(reason), ReferralRewardItem.trigger_ref.set(trigger_ref),
                       ReferralRewardItem.rewarded_at.set(now)],
              condition=ReferralRewardItem.reward_status.does_not_exist(), label="referral")
    try:
        tx.commit()
        return True
    except ConditionsFailed:
        return False


def _cap_updates(tx: Transaction, config: ProgramConfig, program_id: str, inviter_id: str, now: dt.datetime) -> None:
    policy = config.referral
    day = config.today(now)
    for label, period, cap in (("daily_cap", f"D{day.isoformat()}", policy.daily_cap),
                               ("monthly_cap", f"M{day.strftime('%Y-%m')}", policy.monthly_cap)):
        if cap is None:
            continue
        tx.update(ReferralCapItem(*keys.referral_cap(program_id, inviter_id, period)),
                  actions=[ReferralCapItem.kind.set(ReferralCapItem), ReferralCapItem.rewarded.add(1)],
                  condition=ReferralCapItem.rewarded.does_not_exist() | (ReferralCapItem.rewarded < cap), label=label)


def reward(settings: Settings, program_id: str, inviter_id: str, invitee_id: str, trigger_ref: str) -> str:
    """Pay the referral's rewards once; returns the referral's reward status (or `disabled`)."""
    config = program_config(settings, program_id)
    policy = config.referral
    if not policy.enabled:
        return "disabled"
    ref_key = keys.referral_reward(program_id, inviter_id, invitee_id)
    found = store.read_items([ref_key, keys.profile(program_id, inviter_id), keys.profile(program_id, invitee_id)])
    existing = found.get(ref_key)
    if isinstance(existing, ReferralRewardItem) and existing.reward_status:
        return str(existing.reward_status)
    inviter, invitee = found.get(keys.profile(program_id, inviter_id)), found.get(keys.profile(program_id, invitee_id))
    if not isinstance(inviter, ProfileItem) or not isinstance(invitee, ProfileItem):
        return "member_not_found"
    now = clock.now()
    refusal = rules.refusal(*_people(program_id, inviter, invitee))
    if refusal:
        _set_status(program_id, inviter_id, invitee_id, REFUSED, refusal, trigger_ref, clock.stamp(now))
        logger().info("referral refused", extra={"reason": refusal})
        return REFUSED

    def attempt() -> str:
        stamp = clock.stamp(clock.now())
        tx_items: dict[str, Any] = {}

        def referral_items(tx: Transaction) -> None:
            tx.update(ReferralRewardItem(*ref_key),
                      actions=[ReferralRewardItem.kind.set(ReferralRewardItem), ReferralRewardItem.invitee_id.set(invitee_id),
                               ReferralRewardItem.created_at.set(stamp), ReferralRewardItem.reward_status.set(PAID),
                               ReferralRewardItem.trigger_ref.set(trigger_ref), ReferralRewardItem.rewarded_at.set(stamp),
                               ReferralRewardItem.inviter_points.set(policy.inviter.points),
                               ReferralRewardItem.invitee_points.set(policy.invitee.points)],
                      condition=ReferralRewardItem.reward_status.does_not_exist(), label="referral")
            _cap_updates(tx, config, program_id, inviter_id, now)
            tx_items["done"] = True

        try:
            if policy.inviter.points:
                _earn(config, program_id, inviter_id, policy.inviter.points, "invite", invitee_id,
                      f"邀请好友 {invitee_id}", extra=referral_items)
            else:
                tx = Transaction()
                referral_items(tx)
                tx.commit()
        except ConditionsFailed as failed:
            if failed.labels & set(_CAPS):
                return CAPPED if _set_status(program_id, inviter_id, invitee_id, CAPPED,
                                             sorted(failed.labels & set(_CAPS))[0], trigger_ref, stamp) else "already"
            if "referral" in failed.labels or "ledger" in failed.labels:
                return "already"
            raise
        return PAID

    outcome = with_retries(settings, attempt)
    if outcome == PAID and policy.inviter.coupon_template:
        from chalicelib.services import coupons

        coupons.gift(settings, program_id, inviter_id, [policy.inviter.coupon_template], f"invite:{invitee_id}")
    if outcome in (PAID, CAPPED):  # the invitee did nothing wrong when the inviter is over a cap
        _reward_invitee(settings, config, program_id, inviter_id, invitee_id)
    return outcome if outcome != "already" else PAID


def _earn(config: ProgramConfig, program_id: str, member_id: str, points: int, kind: str, key: str, reason: str,
          extra: Any = None) -> None:
    record = store.member(program_id, member_id)
    if record is None:
        raise ConditionsFailed({"member"})
    now = clock.now()
    today = config.today(now)
    change = balance.earn(store.balances_of(record.account), points, lots.expiry_day(config.expiry, today))
    row = store.LedgerRow(key=keys.member_operation(program_id, member_id, kind, key), type="earn", points=points,
                          reason=reason, ref=f"referral:{key}", request_hash=None, response=None)
    store.apply_change(program_id, record.account, change, None, row, clock.stamp(now), ids.new_entry_id(),
                       extra=extra)


def _reward_invitee(settings: Settings, config: ProgramConfig, program_id: str, inviter_id: str,
                    invitee_id: str) -> None:
    policy = config.referral.invitee
    if policy.points:
        def attempt() -> None:
            try:
                _earn(config, program_id, invitee_id, policy.points, "invited", inviter_id, "受邀有礼")
            except ConditionsFailed as failed:
                if not failed.labels & {"ledger", "member"}:
                    raise
        with_retries(settings, attempt)
    if policy.coupon_template:
        from chalicelib.services import coupons

        coupons.gift(settings, program_id, invitee_id, [policy.coupon_template], f"invited:{inviter_id}")


# --- stream triggers ----------------------------------------------------------------------------

def on_enrolment(settings: Settings, program_id: str, inviter_id: str, invitee_id: str) -> str:
    if program_config(settings, program_id).referral.trigger != "enrolment":
        return "not_the_trigger"
    return reward(settings, program_id, inviter_id, invitee_id, "enrolment")


def on_order(settings: Settings, program_id: str, member_id: str, order_id: str) -> str:
    """An order of an invited member: its first one pays the referral (the referral row's status
    is set once, so later orders change nothing)."""
    config = program_config(settings, program_id)
    if config.referral.trigger != "first_paid_order" or not config.referral.enabled:
        return "not_the_trigger"
    profile = store.get_item(ProfileItem, keys.profile(program_id, member_id))
    if not isinstance(profile, ProfileItem) or not profile.invited_by:
        return "not_invited"
    return reward(settings, program_id, profile.invited_by, member_id, order_id)


def on_refund(settings: Settings, program_id: str, member_id: str, order_id: str) -> str:
    """A refund of an invited member's order: if it is the order that paid the referral, now
    refunded in full within `reverse_within_days` of the reward, both rewards are taken back."""
    config = program_config(settings, program_id)
    if not config.referral.enabled:
        return "disabled"
    profile = store.get_item(ProfileItem, keys.profile(program_id, member_id))
    if not isinstance(profile, ProfileItem) or not profile.invited_by:
        return "not_invited"
    inviter_id = profile.invited_by
    found = store.read_items([keys.referral_reward(program_id, inviter_id, member_id), keys.order(program_id, order_id),
                              keys.order_totals(program_id, order_id)])
    referral = found.get(keys.referral_reward(program_id, inviter_id, member_id))
    order, totals = found.get(keys.order(program_id, order_id)), found.get(keys.order_totals(program_id, order_id))
    if not isinstance(referral, ReferralRewardItem) or referral.reward_status != PAID or referral.trigger_ref != order_id:
        return "not_the_rewarded_order"
    if not isinstance(order, OrderItem) or not isinstance(totals, OrderTotalsItem) \
            or int(totals.refunded_fen) < int(order.amount_fen):
        return "partial"
    now = clock.now()
    if not rules.reversible(dt.datetime.fromisoformat(str(referral.rewarded_at)), now,
                            config.referral.reverse_within_days):
        return "too_late"

    def take_back(target: str, points: int, kind: str, key: str, extra: Any = None) -> None:
        def attempt() -> None:
            record = store.member(program_id, target)
            if record is None:
                return
            today = config.today(clock.now())
            change = balance.reverse(store.balances_of(record.account), record.lot_values, today, points)
            row = store.LedgerRow(key=keys.member_operation(program_id, target, kind, key), type="reverse",
                                  points=-points, reason="邀请奖励撤回: 订单全额退款", ref=f"referral:{key}",
                                  request_hash=None, response=None, detail={"order_id": order_id})
            try:
                store.apply_change(program_id, record.account, change,
                                   {lot.expires_on: lot.remaining for lot in record.lot_values}, row,
                                   clock.stamp(clock.now()), ids.new_entry_id(), extra=extra)
            except ConditionsFailed as failed:
                if not failed.labels & {"ledger", "referral"}:
                    raise
        with_retries(settings, attempt)

    def mark(tx: Transaction) -> None:
        tx.update(ReferralRewardItem(*keys.referral_reward(program_id, inviter_id, member_id)),
                  actions=[ReferralRewardItem.reward_status.set(REVERSED), ReferralRewardItem.reversed_at.set(clock.stamp(now))],
                  condition=ReferralRewardItem.reward_status == PAID, label="referral")

    inviter_points = int(referral.inviter_points or 0)
    if inviter_points:
        take_back(inviter_id, inviter_points, "invite-reversal", member_id, extra=mark)
    else:
        tx = Transaction()
        mark(tx)
        try:
            tx.commit()
        except ConditionsFailed:
            return "already"
    invitee_points = int(referral.invitee_points or 0)
    if invitee_points:
        take_back(member_id, invitee_points, "invited-reversal", inviter_id)
    return REVERSED
