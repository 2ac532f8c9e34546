"""Points and growth for a paid order (demo program: 1 point + 1 growth per whole yuan)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.earning import award_for_order
from chalicelib.domain.program import demo_program
from tests.unit.builders import campaign, d, with_campaigns

JUNE_10 = d("2025-06-10")
DEMO = demo_program()
NORMAL, SILVER, GOLD = (DEMO.tier(code) for code in ("normal", "silver", "gold"))


@pytest.mark.parametrize(("amount_fen", "points", "growth"), [
    pytest.param(0, 0, 0, id="nothing-paid"),
    pytest.param(99, 0, 0, id="99-fen-is-no-whole-yuan"),
    pytest.param(100, 1, 1, id="exactly-1-yuan"),
    pytest.param(199, 1, 1, id="1.99-yuan-rounds-down"),
    pytest.param(12_345, 123, 123, id="123.45-yuan"),
    pytest.param(1_000_000_099, 10_000_000, 10_000_000, id="large-order"),
])
def test_base_tier_earns_one_point_and_one_growth_per_whole_yuan(amount_fen, points, growth):
    award = award_for_order(DEMO, NORMAL, amount_fen, JUNE_10)
    assert (award.points, award.growth, award.base_points) == (points, growth, points)
    assert (award.tier_multiplier_pct, award.campaign_multiplier_pct, award.bonus_points) == (100, 100, 0)
    assert award.campaigns == ()


@pytest.mark.parametrize(("tier", "amount_fen", "points"), [
    pytest.param(NORMAL, 1_000, 10, id="normal-x1.0-10-yuan"),
    pytest.param(SILVER, 1_000, 12, id="silver-x1.2-10-yuan"),
    pytest.param(GOLD, 1_000, 15, id="gold-x1.5-10-yuan"),
    pytest.param(SILVER, 700, 8, id="silver-7-yuan-8.4-rounds-down-to-8"),
    pytest.param(GOLD, 700, 10, id="gold-7-yuan-10.5-rounds-down-to-10"),
    pytest.param(SILVER, 499, 4, id="silver-4.99-yuan-is-4-yuan-4.8-to-4"),
    pytest.param(GOLD, 99, 0, id="gold-under-1-yuan-earns-nothing"),
])
def test_tier_multiplier_applies_to_points_rounded_down(tier, amount_fen, points):
    award = award_for_order(DEMO, tier, amount_fen, JUNE_10)
    assert award.points == points
    assert award.tier_multiplier_pct == tier.points_multiplier_pct
    assert award.growth == amount_fen // 100


def test_demo_tier_multipliers_are_100_120_150():
    assert [t.points_multiplier_pct for t in DEMO.tiers] == [100, 120, 150]


DOUBLE = campaign("double", "2025-06-01", "2025-06-03", multiplier_pct=200)


@pytest.mark.parametrize(("paid_on", "points"), [
    pytest.param("2025-05-31", 10, id="day-before-start"),
    pytest.param("2025-06-01", 20, id="first-day-inclusive"),
    pytest.param("2025-06-02", 20, id="middle"),
    pytest.param("2025-06-03", 20, id="last-day-inclusive"),
    pytest.param("2025-06-04", 10, id="day-after-end"),
])
def test_campaign_multiplier_applies_only_within_its_inclusive_dates(paid_on, points):
    award = award_for_order(with_campaigns(DOUBLE), NORMAL, 1_000, d(paid_on))
    assert award.points == points
    assert award.campaign_multiplier_pct == (200 if points == 20 else 100)
    assert ("double" in award.campaigns) is (points == 20)


def test_single_day_campaign_is_active_on_that_day_only():
    one_day = with_campaigns(campaign("flash", "2025-06-10", "2025-06-10", multiplier_pct=300))
    assert [award_for_order(one_day, NORMAL, 1_000, d(day)).points
            for day in ("2025-06-09", "2025-06-10", "2025-06-11")] == [10, 30, 10]


@pytest.mark.parametrize(("multipliers", "expected_pct", "points"), [
    pytest.param([150], 150, 15, id="one-campaign"),
    pytest.param([150, 200], 200, 20, id="best-wins-not-150x200"),
    pytest.param([200, 150], 200, 20, id="order-does-not-matter"),
    pytest.param([120, 130, 110], 130, 13, id="three-campaigns-best-wins"),
    pytest.param([100], 100, 10, id="x1.0-campaign-changes-nothing"),
])
def test_best_active_campaign_multiplier_wins_and_does_not_stack(multipliers, expected_pct, points):
    config = with_campaigns(*(campaign(f"c{i}", multiplier_pct=pct) for i, pct in enumerate(multipliers)))
    award = award_for_order(config, NORMAL, 1_000, JUNE_10)
    assert award.campaign_multiplier_pct == expected_pct
    assert award.points == points


def test_inactive_campaign_with_a_higher_multiplier_does_not_win():
    config = with_campaigns(campaign("now", multiplier_pct=150),
                            campaign("later", "2025-07-01", "2025-07-31", multiplier_pct=500))
    award = award_for_order(config, NORMAL, 1_000, JUNE_10)
    assert (award.campaign_multiplier_pct, award.points, award.campaigns) == (150, 15, ("now",))


@pytest.mark.parametrize(("tier", "campaign_pct", "amount_fen", "points"), [
    pytest.param(SILVER, 150, 900, 16, id="silver-x1.5-9-yuan-16.2-not-double-rounded-15"),
    pytest.param(GOLD, 200, 700, 21, id="gold-x2-7-yuan-21"),
    pytest.param(GOLD, 150, 333, 6, id="gold-x1.5-3-yuan-6.75-to-6"),
    pytest.param(SILVER, 300, 1_000, 36, id="silver-x3-10-yuan-36"),
])
def test_tier_and_campaign_multiply_together_and_round_down_once(tier, campaign_pct, amount_fen, points):
    """Points = floor(yuan x tier% x campaign% / 10000): one rounding at the end, never a
    rounded intermediate."""
    award = award_for_order(with_campaigns(campaign("boost", multiplier_pct=campaign_pct)), tier, amount_fen, JUNE_10)
    assert award.points == points


BONUS_100 = campaign("spend100", bonus_threshold_fen=10_000, bonus_points=50)


@pytest.mark.parametrize(("amount_fen", "bonus", "points"), [
    pytest.param(9_999, 0, 99, id="one-fen-under-threshold"),
    pytest.param(10_000, 50, 150, id="exactly-at-threshold"),
    pytest.param(10_001, 50, 150, id="over-threshold"),
    pytest.param(50_000, 50, 550, id="far-over-is-still-one-bonus"),
])
def test_threshold_bonus_at_over_and_under_the_threshold(amount_fen, bonus, points):
    award = award_for_order(with_campaigns(BONUS_100), NORMAL, amount_fen, JUNE_10)
    assert (award.bonus_points, award.points) == (bonus, points)
    assert ("spend100" in award.campaigns) is (bonus > 0)


def test_threshold_bonus_compares_fen_not_whole_yuan():
    """A threshold of 100.50 yuan is not met by 100.49, though both are 100 whole yuan."""
    config = with_campaigns(campaign("odd", bonus_threshold_fen=10_050, bonus_points=7))
    assert award_for_order(config, NORMAL, 10_049, JUNE_10).bonus_points == 0
    assert award_for_order(config, NORMAL, 10_050, JUNE_10).bonus_points == 7


def test_threshold_bonus_is_not_multiplied_by_tier_or_campaign():
    config = with_campaigns(campaign("both", multiplier_pct=200, bonus_threshold_fen=10_000, bonus_points=50))
    award = award_for_order(config, GOLD, 10_000, JUNE_10)
    # 100 yuan x 1.5 x 2 = 300, plus a flat 50.
    assert (award.points, award.bonus_points, award.base_points) == (350, 50, 100)


def test_threshold_bonus_outside_campaign_dates_is_not_given():
    config = with_campaigns(campaign("june", "2025-06-01", "2025-06-30", bonus_threshold_fen=100, bonus_points=9))
    assert award_for_order(config, NORMAL, 10_000, d("2025-07-01")).bonus_points == 0
    assert award_for_order(config, NORMAL, 10_000, d("2025-06-30")).bonus_points == 9


@pytest.mark.parametrize(("amount_fen", "bonus"), [
    pytest.param(4_999, 0, id="below-both"),
    pytest.param(5_000, 20, id="first-only"),
    pytest.param(10_000, 70, id="both-add-up"),
])
def test_bonuses_from_several_active_campaigns_add_up(amount_fen, bonus):
    config = with_campaigns(campaign("spend50", bonus_threshold_fen=5_000, bonus_points=20),
                            campaign("spend100", bonus_threshold_fen=10_000, bonus_points=50))
    award = award_for_order(config, NORMAL, amount_fen, JUNE_10)
    assert award.bonus_points == bonus
    assert award.points == amount_fen // 100 + bonus


@pytest.mark.parametrize("tier", [NORMAL, SILVER, GOLD], ids=lambda t: t.code)
def test_growth_ignores_tier_campaign_multipliers_and_bonuses(tier):
    config = with_campaigns(campaign("big", multiplier_pct=300, bonus_threshold_fen=100, bonus_points=999))
    award = award_for_order(config, tier, 12_399, JUNE_10)
    assert award.growth == 123
    assert award.points > award.growth


@pytest.mark.parametrize(("points_rate", "growth_rate", "points", "growth"), [
    pytest.param(2, 1, 20, 10, id="2-points-per-yuan"),
    pytest.param(1, 3, 10, 30, id="3-growth-per-yuan"),
    pytest.param(0, 1, 0, 10, id="no-points-only-growth"),
])
def test_custom_earning_rates(points_rate, growth_rate, points, growth):
    config = with_campaigns(points_per_yuan=points_rate, growth_per_yuan=growth_rate)
    award = award_for_order(config, NORMAL, 1_050, JUNE_10)
    assert (award.points, award.growth, award.base_points) == (points, growth, points)


def test_campaign_that_neither_multiplies_nor_pays_a_bonus_is_not_named():
    config = with_campaigns(campaign("idle", multiplier_pct=100),
                            campaign("unreached", bonus_threshold_fen=1_000_000, bonus_points=5))
    assert award_for_order(config, NORMAL, 1_000, JUNE_10).campaigns == ()


@given(tier=st.sampled_from([NORMAL, SILVER, GOLD]), low=st.integers(0, 10**7), extra=st.integers(0, 10**7))
def test_more_money_never_earns_fewer_points_or_growth(tier, low, extra):
    config = with_campaigns(campaign("x", multiplier_pct=130, bonus_threshold_fen=8_000, bonus_points=25))
    smaller = award_for_order(config, tier, low, JUNE_10)
    larger = award_for_order(config, tier, low + extra, JUNE_10)
    assert larger.points >= smaller.points
    assert larger.growth >= smaller.growth
    assert smaller.growth == low // 100
