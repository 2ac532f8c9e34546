"""Pure parts of issue 15: what a change counts, comparisons, RFM scoring, segment rules."""

from __future__ import annotations

import datetime as dt

from chalicelib.domain import analytics, rfm
from chalicelib.domain.segments import MemberFacts, SegmentRules, matches


def test_growth_from_nothing_is_new_never_a_percentage():
    assert analytics.compare(50, 0) == {"current": 50, "previous": 0, "change_bp": None, "trend": "new"}
    assert analytics.compare(0, 0)["trend"] == "none"
    assert analytics.compare(0, 7) == {"current": 0, "previous": 7, "change_bp": -10000, "trend": "gone"}
    assert analytics.compare(150, 100)["change_bp"] == 5000 and analytics.compare(1, 3)["change_bp"] == -6666
    assert analytics.compare(-5, -10)["trend"] == "up"


def test_what_a_change_counts():
    order = {"kind": "order", "type": "earn", "points": 30, "amount_fen": 3000, "member_id": "m1", "sk": "ORDER",
             "created_at": "2026-01-01T00:00:00+00:00"}
    found = analytics.contribution("INSERT", order)
    assert found is not None and found.active_member == "m1"
    assert found.counts == {"points_net": 30, "points_issued": 30, "orders": 1, "gross_sales_fen": 3000}
    refund = {"kind": "ledger", "type": "reverse", "points": -10, "sk": "REFUND#r1", "detail": '{"amount_fen": 1000}',
              "created_at": "2026-01-02T00:00:00+00:00"}
    assert analytics.contribution("INSERT", refund).counts == {"points_net": -10, "points_reversed": 10,
                                                               "refunds": 1, "refunds_fen": 1000}
    cancelled = {"kind": "ledger", "type": "reverse", "points": 100, "sk": "OP#cancel#x", "created_at": "x"}
    assert analytics.contribution("INSERT", cancelled).counts == {"points_net": 100, "points_redeemed": -100}
    assert analytics.contribution("MODIFY", order) is None
    assert analytics.contribution("INSERT", {"kind": "account"}) is None
    # Tier distribution: an account enters its first tier, a move leaves one for another, a removed
    # account leaves its tier (on the day it is seen: no moment).
    enrolled = analytics.contribution("INSERT", {"kind": "account", "tier": "normal",
                                                 "updated_at": "2026-03-01T00:00:00+00:00"})
    assert enrolled is not None and (enrolled.tiers, enrolled.counts, enrolled.what) == ({"normal": 1}, {}, "day")
    moved = analytics.contribution("INSERT", {"kind": "tier_change", "from_tier": "normal", "to_tier": "silver",
                                              "created_at": "2026-03-01T00:00:00+00:00"})
    assert moved is not None and moved.tiers == {"normal": -1, "silver": 1}
    same = analytics.contribution("INSERT", {"kind": "tier_change", "from_tier": "gold", "to_tier": "gold",
                                             "created_at": "2026-03-01T00:00:00+00:00"})
    assert same is not None and same.tiers == {}
    gone = analytics.contribution("REMOVE", {}, {"kind": "account", "tier": "gold"})
    assert gone is not None and (gone.tiers, gone.moment, gone.what) == ({"gold": -1}, None, "gone")
    assert analytics.contribution("MODIFY", {"kind": "account", "tier": "gold"}, {"kind": "account"}) is None
    assert analytics.rate_bp(1, 3) == 3333 and analytics.rate_bp(2, 3) == 6667 and analytics.rate_bp(5, 0) is None


def test_quintiles_share_scores_on_ties_and_thresholds_take_over_when_one_value_dominates():
    rules = rfm.RfmRules()
    raws = [rfm.Raw(f"m{n}", recency_days=n, frequency=1 if n < 6 else n, monetary_fen=100 * n) for n in range(10)]
    scores, how = rfm.score(raws, rules)
    assert how == {"r": "quintiles", "f": "thresholds", "m": "quintiles"}
    assert [s.r for s in scores] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert [s.m for s in scores] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [s.f for s in scores] == [1] * 6 + [4, 4, 5, 5]  # thresholds 2, 3, 5, 8
    assert rfm.quintile(7, [7, 7, 7, 7], higher_is_better=True) == 1
    assert rfm.segment_of(5, 5, 5, rules.segments) == "重要价值" and rfm.segment_of(1, 1, 1, rules.segments) == "沉睡"
    assert rfm.raw_of("m", [rfm.OrderFact("o", 10, 500, 500)], 20) is None


def test_segment_rules():
    facts = MemberFacts("m", "gold", 120, "2026-06-01", "1990-07-04", frozenset({"vip"}), "沉睡",
                        "2026-12-31T00:00:00+00:00")
    today = dt.date(2026, 7, 1)
    assert matches(SegmentRules(tiers=["gold"], tags_any=["vip", "x"], points_min=100, birthday_month=7,
                                inactive_days_min=30, paid_member=True, rfm_segments=["沉睡"]), facts, today)
    assert not matches(SegmentRules(inactive_days_min=31), facts, today)
    assert not matches(SegmentRules(paid_member=True), MemberFacts("m", "gold", 0, None, None, frozenset(), None,
                                                                   None), today)
