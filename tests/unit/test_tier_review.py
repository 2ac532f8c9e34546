"""The periodic review (保级) and check-in rules, table-driven."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.domain import checkin, tiers
from chalicelib.domain.program import CheckinPolicy
from tests.unit.builders import d, program

AS_OF = d("2027-12-01")


def policy(**changes):
    return program(tier_policy={**program().tier_policy.model_dump(), **changes})


@pytest.mark.parametrize(
    ("tier", "growth", "config_changes", "floor", "floor_until", "grace_until", "expected"),
    [
        pytest.param("normal", 0, {}, None, None, None, ("keep", "normal", None), id="base tier never drops"),
        pytest.param("silver", 1000, {}, None, None, None, ("keep", "silver", None), id="retention met exactly"),
        pytest.param("silver", 999, {}, None, None, None, ("drop", "normal", None), id="one short drops"),
        pytest.param("gold", 0, {}, None, None, None, ("drop", "silver", None), id="one tier at a time"),
        pytest.param("gold", 0, {"downgrade": "to_supported"}, None, None, None, ("drop", "normal", None),
                     id="to supported tier"),
        pytest.param("gold", 1200, {"downgrade": "to_supported"}, None, None, None, ("drop", "silver", None),
                     id="to supported keeps what growth supports"),
        pytest.param("gold", 0, {}, "gold", "2027-12-01", None, ("keep", "gold", None), id="grant in force today"),
        pytest.param("gold", 0, {}, "gold", "2027-11-30", None, ("drop", "silver", None), id="grant expired"),
        pytest.param("gold", 0, {"downgrade": "to_supported"}, "silver", "2028-01-01", None,
                     ("drop", "silver", None), id="drop stops at the granted floor"),
        pytest.param("silver", 0, {"grace_days": 30}, None, None, None, ("grace", "silver", "2027-12-31"),
                     id="first failure starts grace"),
        pytest.param("silver", 0, {"grace_days": 30}, None, None, "2027-12-31", ("keep", "silver", "2027-12-31"),
                     id="still in grace"),
        pytest.param("silver", 0, {"grace_days": 30}, None, None, "2027-12-01", ("drop", "normal", None),
                     id="grace over"),
    ],
)
def test_review(tier, growth, config_changes, floor, floor_until, grace_until, expected):
    config = policy(**config_changes)
    outcome = tiers.review(
        config, config.tier(tier), growth, AS_OF,
        floor=config.tier(floor) if floor else None,
        floor_until=d(floor_until) if floor_until else None,
        grace_until=d(grace_until) if grace_until else None,
    )
    assert (outcome.action, outcome.tier.code, outcome.grace_until.isoformat() if outcome.grace_until else None) \
        == expected


def test_retention_threshold_can_differ_from_the_entry_threshold():
    data = program().model_dump()
    data["tiers"][1]["retention"] = 600
    config = program(tiers=data["tiers"])
    assert tiers.review(config, config.tier("silver"), 600, AS_OF).action == "keep"
    assert tiers.review(config, config.tier("silver"), 599, AS_OF).action == "drop"


@pytest.mark.parametrize(
    ("every", "day", "date", "due"),
    [(1, 1, "2027-03-01", True), (1, 1, "2027-03-02", False), (3, 1, "2027-04-01", True),
     (3, 1, "2027-05-01", False), (1, 15, "2027-05-15", True)],
)
def test_review_days(every, day, date, due):
    assert tiers.is_review_day(policy(review_every_months=every, review_day=day), d(date)) is due


@pytest.mark.parametrize(
    ("last", "streak", "today", "expected"),
    [(None, 0, "2026-11-01", 1), ("2026-10-31", 4, "2026-11-01", 5), ("2026-10-30", 4, "2026-11-01", 1),
     ("2026-12-31", 9, "2027-01-01", 10)],
)
def test_streaks(last, streak, today, expected):
    assert checkin.next_streak(d(last) if last else None, streak, d(today)) == expected


@pytest.mark.parametrize(
    ("streak", "points", "day_of_cycle"),
    [(1, 1, 1), (6, 1, 6), (7, 11, 7), (8, 1, 1), (14, 11, 7)],
)
def test_cycle_rewards(streak, points, day_of_cycle):
    reward = checkin.reward(CheckinPolicy(), streak)
    assert (reward.points, reward.growth, reward.day_of_cycle) == (points, 1, day_of_cycle)


def test_window_growth_counts_this_month_and_the_eleven_before():
    config = program()
    months = {"2026-12": 100, "2027-01": 10, "2027-12": 1}
    assert tiers.growth_in_window(config, months, 999, dt.date(2027, 12, 31)) == 11
    assert tiers.growth_in_window(config, months, 999, dt.date(2027, 11, 30)) == 110
    lifetime = policy(growth_window_months=None)
    assert tiers.growth_in_window(lifetime, months, 999, dt.date(2027, 12, 31)) == 999
