"""Paid membership's rules, pure: stacking of entitlements, multipliers, discounts, packs, refunds,
and the referral refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from chalicelib.domain import membership as rules
from chalicelib.domain import referral
from chalicelib.domain.earning import award_for_order
from chalicelib.domain.program import demo_program

T0 = dt.datetime(2026, 11, 1, 12, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


def test_a_renewal_before_the_end_stacks_after_it():
    old_end = T0 + 10 * DAY
    new = rules.next_entitlement(old_end, T0, 30)
    assert (new.starts_at, new.ends_at) == (old_end, old_end + 30 * DAY)


def test_after_a_lapse_the_new_one_starts_now():
    new = rules.next_entitlement(T0 - 5 * DAY, T0, 30)
    assert (new.starts_at, new.ends_at) == (T0, T0 + 30 * DAY)
    assert rules.next_entitlement(None, T0, 7).ends_at == T0 + 7 * DAY


def test_multipliers_add_the_memberships_extra_to_the_tiers():
    assert rules.points_multiplier_pct(150, 200) == 250
    assert rules.points_multiplier_pct(150, None) == 150
    config = demo_program()
    gold = config.tier("gold")
    day = dt.date(2026, 11, 1)
    assert award_for_order(config, gold, 10_000, day).points == 150
    assert award_for_order(config, gold, 10_000, day, 200).points == 250
    assert award_for_order(config, config.tier("normal"), 9_999, day, 200).points == 198  # 99 yuan x 2, integers


def test_the_member_price_is_the_better_discount_never_both():
    assert rules.member_discount_pct(95, 90) == 90
    assert rules.member_discount_pct(85, 90) == 85
    assert rules.member_discount_pct(95, None) == 95


def test_packs_every_thirty_days_while_it_runs():
    assert rules.packs_due(T0, T0 + 30 * DAY) == [0]
    assert rules.packs_due(T0, T0 + 7 * DAY) == [0]
    assert rules.packs_due(T0, T0 + 90 * DAY) == [0, 30, 60]


def test_refunds_pay_unused_whole_days_less_used_benefits():
    # 30 days for 1990 fen, refunded after 10.5 days: 19 whole days unused.
    plan = rules.refund_for(1990, T0, T0 + 30 * DAY, T0 + 10 * DAY + dt.timedelta(hours=12))
    assert plan == rules.RefundPlan(19, 1990 * 19 // 30)
    assert rules.refund_for(1990, T0, T0 + 30 * DAY, T0 + 10 * DAY, deducted_fen=1000).refund_fen == 1326 - 1000
    assert rules.refund_for(1990, T0, T0 + 30 * DAY, T0 + 40 * DAY).refund_fen == 0
    # A renewal not started yet is refunded in full.
    assert rules.refund_for(1990, T0 + 5 * DAY, T0 + 35 * DAY, T0).refund_fen == 1990


def test_the_card_view_only_while_it_runs():
    policy = demo_program().membership
    until = (T0 + DAY).isoformat()
    assert rules.card_view(policy, "svip-month", until, T0) == {
        "plan_id": "svip-month", "until": until, "points_multiplier_pct": 200, "discount_pct": 90}
    assert rules.card_view(policy, "svip-month", until, T0 + 2 * DAY) is None
    assert rules.card_view(policy, None, None, T0) is None


def test_plans_are_checked():
    with pytest.raises(ValidationError):
        rules.MembershipPlan(plan_id="x", name="x", days=7, price_fen=0)  # free but not a trial
    with pytest.raises(ValidationError):
        rules.MembershipPlan(plan_id="x", name="x", days=7, price_fen=100, trial=True)


def test_referral_refusals():
    a = referral.Person("a", "u1", frozenset({"h1"}))
    assert referral.refusal(a, referral.Person("b", None, frozenset({"h1"}))) == "same_phone"
    assert referral.refusal(a, referral.Person("b", "u1", frozenset())) == "same_unionid"
    assert referral.refusal(a, referral.Person("a", None, frozenset())) == "self"
    assert referral.refusal(a, referral.Person("b", "u2", frozenset({"h2"}))) is None
    assert referral.reversible(T0, T0 + 7 * DAY, 7) and not referral.reversible(T0, T0 + 8 * DAY, 7)


def test_packs_granted_by_a_refund_date():
    assert rules.packs_granted(T0, T0 + 30 * DAY, T0 - DAY) == 0  # a stacked renewal not yet started
    assert rules.packs_granted(T0, T0 + 30 * DAY, T0) == 1
    assert rules.packs_granted(T0, T0 + 90 * DAY, T0 + 30 * DAY) == 2
    assert rules.packs_granted(T0, T0 + 90 * DAY, T0 + 89 * DAY) == 3
