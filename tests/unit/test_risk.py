"""The risk rules (domain/risk.py): how an order's points split, the counters, the till window."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.domain import balance, risk
from chalicelib.domain.program import RiskRules, TillCaps
from chalicelib.domain.reconcile import MemberTotals, differences

DAY = dt.date(2026, 11, 30)


def test_defaults_change_nothing_for_an_order():
    split = risk.assess_order(RiskRules(), risk.Counters(), 10_000, 10**9, DAY)
    assert (split.available, split.pending, split.reason) == (10_000, 0, None)


def test_daily_cap_lets_through_what_fits_and_pends_the_rest():
    rules = RiskRules(daily_points_cap=100)
    first = risk.assess_order(rules, risk.Counters(), 70, 7_000, DAY)
    assert (first.available, first.pending) == (70, 0)
    second = risk.assess_order(rules, first.counters, 50, 5_000, DAY)
    assert (second.available, second.pending, second.reason) == (30, 20, risk.DAILY_CAP)
    third = risk.assess_order(rules, second.counters, 10, 1_000, DAY)
    assert (third.available, third.pending) == (0, 10)
    # A new program day starts at 0 again.
    tomorrow = risk.assess_order(rules, third.counters, 90, 9_000, DAY + dt.timedelta(days=1))
    assert (tomorrow.available, tomorrow.pending) == (90, 0)


def test_monthly_cap_binds_across_days_and_resets_with_the_month():
    rules = RiskRules(daily_points_cap=1_000, monthly_points_cap=1_500)
    counters = risk.Counters()
    for n in range(3):
        split = risk.assess_order(rules, counters, 700, 70_000, dt.date(2026, 11, 1 + n))
        counters = split.counters
    assert (split.available, split.pending, split.reason) == (100, 600, risk.MONTHLY_CAP)
    december = risk.assess_order(rules, counters, 700, 70_000, dt.date(2026, 12, 1))
    assert december.pending == 0


def test_review_threshold_pends_the_whole_order_with_an_auto_release_day():
    rules = RiskRules(review_threshold_fen=5_000_000, review_auto_release_days=7)
    below = risk.assess_order(rules, risk.Counters(), 49_999, 4_999_999, DAY)
    assert below.pending == 0
    at = risk.assess_order(rules, risk.Counters(), 50_000, 5_000_000, DAY)
    assert (at.available, at.pending, at.reason) == (0, 50_000, risk.REVIEW)
    assert at.auto_release_on == DAY + dt.timedelta(days=7)
    never = risk.assess_order(rules.model_copy(update={"review_auto_release_days": None}), risk.Counters(), 1, 5_000_000,
                              DAY)
    assert never.auto_release_on is None


def test_refund_ratio_over_30_days_pends_new_accruals():
    rules = RiskRules(refund_ratio_pct=50, refund_ratio_min_ordered_fen=10_000)
    split = risk.assess_order(rules, risk.Counters(), 200, 20_000, DAY)
    counters = risk.record_refund(split.counters, 10_000, DAY)  # exactly 50 %: not above
    assert risk.assess_order(rules, counters, 10, 1_000, DAY).pending == 0
    counters = risk.record_refund(counters, 1, DAY)
    flagged = risk.assess_order(rules, counters, 10, 1_000, DAY)
    assert (flagged.available, flagged.pending, flagged.reason) == (0, 10, risk.REFUND_RATIO)
    # 30 days on, the old orders and refunds have left the window.
    later = DAY + dt.timedelta(days=30)
    assert risk.window_totals(counters, later) == (0, 0)
    assert risk.assess_order(rules, counters, 10, 1_000, later).pending == 0


def test_refund_ratio_needs_enough_ordered_first():
    rules = RiskRules(refund_ratio_pct=10, refund_ratio_min_ordered_fen=50_000)
    counters = risk.record_refund(risk.assess_order(rules, risk.Counters(), 100, 10_000, DAY).counters, 10_000, DAY)
    assert risk.assess_order(rules, counters, 10, 1_000, DAY).pending == 0


def test_counters_stay_small_and_round_trip():
    counters = risk.Counters()
    for n in range(200):
        counters = risk.assess_order(RiskRules(), counters, 10, 1_000, DAY + dt.timedelta(days=n)).counters
    assert len(counters.window) <= risk.WINDOW_BUCKETS
    assert risk.Counters.from_json(counters.to_json()) == counters
    assert len(str(counters.to_json())) < 250


def test_till_window_buckets_by_utc_hour_and_minute():
    moment = dt.datetime(2026, 11, 30, 17, 5, 59, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    window = risk.till_window(moment)
    assert (window.hour, window.minute) == ("2026-11-30T09", "m05")
    assert window.expires_at == int(dt.datetime(2026, 11, 30, 11, tzinfo=dt.timezone.utc).timestamp())


def test_till_caps_fall_back_to_the_wildcard():
    rules = RiskRules(till_caps={"*": TillCaps(orders_per_minute=5), "big": TillCaps(amount_fen_per_hour=10)})
    assert rules.caps_for("any").orders_per_minute == 5
    assert rules.caps_for("big").amount_fen_per_hour == 10
    assert RiskRules().caps_for("any") is None
    with pytest.raises(ValueError):
        RiskRules(till_caps={"bad key!": TillCaps(orders_per_minute=1)})


def test_pending_is_its_own_bucket():
    before = balance.Balances(points=10, debt=0)
    change = balance.earn(before, 30, DAY, pending=20)
    assert (change.after.points, change.after.pending, change.lot_changes) == (40, 20, {DAY: 30})
    released = balance.release_pending(change.after, 20, DAY)
    assert (released.after.points, released.after.pending, released.lot_changes) == (60, 0, {DAY: 20})
    dropped = balance.drop_pending(change.after, 20)
    assert (dropped.after.points, dropped.after.pending, dropped.lot_changes) == (40, 0, {})
    with pytest.raises(ValueError):
        balance.release_pending(change.after, 21, DAY)
    # A release repays debt first, like any earning.
    owed = balance.release_pending(balance.Balances(points=-5, debt=5, pending=20), 20, DAY)
    assert (owed.after.points, owed.after.debt, owed.lot_changes) == (15, 0, {DAY: 15})


def test_reconciliation_checks_the_pending_bucket():
    clean = MemberTotals("m", 10, 0, 0, 0, 10, 0, 10, 0, pending=5, ledger_pending=5, open_pending=5)
    assert differences(clean) == []
    drift = MemberTotals("m", 10, 0, 0, 0, 10, 0, 10, 0, pending=5, ledger_pending=5, open_pending=0)
    assert differences(drift) == ["pending 5 != open pending entries 0"]
