"""Tier arithmetic on the demo ladder: 普通 0, 银卡 1000, 金卡 5000 growth."""

from __future__ import annotations

import pytest

from chalicelib.domain.program import demo_program
from chalicelib.domain import tiers as tier_rules
from chalicelib.domain.tiers import NextTier, next_tier, tier_for_growth
from tests.unit.builders import d, program, tier_spec

DEMO = demo_program()


@pytest.mark.parametrize(("growth", "code"), [
    pytest.param(0, "normal", id="zero"),
    pytest.param(999, "normal", id="one-short-of-silver"),
    pytest.param(1000, "silver", id="exactly-silver"),
    pytest.param(1001, "silver", id="just-over-silver"),
    pytest.param(4999, "silver", id="one-short-of-gold"),
    pytest.param(5000, "gold", id="exactly-gold"),
    pytest.param(10**9, "gold", id="far-above-the-top"),
])
def test_tier_for_growth_at_and_around_thresholds(growth, code):
    assert tier_for_growth(DEMO, growth).code == code


def test_demo_tiers_names_levels_and_thresholds():
    assert [(t.code, t.name, t.level, t.threshold) for t in DEMO.tiers] == [
        ("normal", "普通", 0, 0), ("silver", "银卡", 1, 1000), ("gold", "金卡", 2, 5000)]


@pytest.mark.parametrize(("current", "growth", "expected"), [
    pytest.param("normal", 0, NextTier("silver", 1000), id="new-member"),
    pytest.param("normal", 999, NextTier("silver", 1), id="one-short"),
    pytest.param("silver", 1000, NextTier("gold", 4000), id="fresh-silver"),
    pytest.param("silver", 4999, NextTier("gold", 1), id="silver-one-short-of-gold"),
    pytest.param("silver", 6000, NextTier("gold", 0), id="past-threshold-before-review-needs-0"),
    pytest.param("gold", 5000, None, id="top-tier-has-no-next"),
    pytest.param("gold", 0, None, id="top-tier-after-growth-reset"),
])
def test_next_tier_and_growth_needed(current, growth, expected):
    assert next_tier(DEMO, DEMO.tier(current), growth) == expected


def test_tiers_given_out_of_order_are_ranked_by_level():
    config = program(tiers=[tier_spec("top", 5, 900), tier_spec("base", 0, 0), tier_spec("mid", 3, 100)])
    assert [t.code for t in config.tiers] == ["base", "mid", "top"]
    assert config.base_tier.code == "base"
    assert [tier_for_growth(config, g).code for g in (0, 99, 100, 899, 900)] == ["base", "base", "mid", "mid", "top"]
    assert next_tier(config, config.tier("base"), 50) == NextTier("mid", 50)
    assert next_tier(config, config.tier("mid"), 150) == NextTier("top", 750)


# --- growth window (counted over the last N calendar months, this one included) ----------------

@pytest.mark.parametrize(("as_of", "window", "months"), [
    pytest.param("2025-06-15", 1, ["2025-06"], id="this-month-only"),
    pytest.param("2025-03-01", 3, ["2025-01", "2025-02", "2025-03"], id="within-a-year"),
    pytest.param("2025-02-28", 4, ["2024-11", "2024-12", "2025-01", "2025-02"], id="across-new-year"),
    pytest.param("2025-01-31", 12, [f"2024-{m:02d}" for m in range(2, 13)] + ["2025-01"], id="twelve-months"),
])
def test_window_months_are_the_last_n_calendar_months_oldest_first(as_of, window, months):
    assert tier_rules.window_months(d(as_of), window) == months


def test_growth_in_window_sums_only_the_window_months():
    config = program(tier_policy={"growth_window_months": 3})
    months = {"2025-03": 1000, "2025-04": 200, "2025-05": 30, "2025-06": 4, "2025-07": 9999}
    assert tier_rules.growth_in_window(config, months, lifetime=123_456, as_of=d("2025-06-30")) == 234


def test_growth_in_window_is_lifetime_growth_without_a_window():
    config = program(tier_policy={"growth_window_months": None})
    assert tier_rules.growth_in_window(config, {"2025-06": 4}, lifetime=7_000, as_of=d("2025-06-30")) == 7_000


@pytest.mark.parametrize(("current", "growth", "upgrade"), [
    pytest.param("normal", 999, None, id="short-of-silver"),
    pytest.param("normal", 1000, "silver", id="reaches-silver"),
    pytest.param("normal", 5000, "gold", id="skips-straight-to-gold"),
    pytest.param("gold", 1000, None, id="growth-never-downgrades"),
    pytest.param("silver", 1500, None, id="already-there"),
])
def test_upgrade_happens_as_soon_as_growth_reaches_a_higher_threshold(current, growth, upgrade):
    target = tier_rules.upgrade_to(DEMO, DEMO.tier(current), growth)
    assert (target.code if target else None) == upgrade
