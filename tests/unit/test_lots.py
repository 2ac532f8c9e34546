"""Points lots: the expiry day of earned points, which lots are live, and which lots a spend
draws from."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.lots import Draw, Lot, NotEnoughPoints, expiry_day, live, plan_draw, spendable
from chalicelib.domain.program import ExpiryPolicy
from tests.unit.builders import d, lots_of


@pytest.mark.parametrize(("months_after", "earned_on", "expires_on"), [
    pytest.param(12, "2024-01-15", "2025-01-31", id="12m-mid-january"),
    pytest.param(12, "2024-01-01", "2025-01-31", id="12m-first-of-month"),
    pytest.param(12, "2024-01-31", "2025-01-31", id="12m-last-of-month"),
    pytest.param(12, "2024-12-01", "2025-12-31", id="12m-december-crosses-year"),
    pytest.param(12, "2024-12-31", "2025-12-31", id="12m-new-years-eve"),
    pytest.param(12, "2023-02-10", "2024-02-29", id="12m-into-leap-february"),
    pytest.param(12, "2024-02-29", "2025-02-28", id="12m-from-leap-day"),
    pytest.param(12, "2025-02-28", "2026-02-28", id="12m-plain-february"),
    pytest.param(12, "2023-11-30", "2024-11-30", id="12m-30-day-month"),
    pytest.param(12, "1899-02-01", "1900-02-28", id="12m-1900-is-not-leap"),
    pytest.param(12, "1999-02-01", "2000-02-29", id="12m-2000-is-leap"),
    pytest.param(1, "2024-01-31", "2024-02-29", id="1m-jan-to-leap-feb"),
    pytest.param(1, "2023-01-31", "2023-02-28", id="1m-jan-to-feb"),
    pytest.param(1, "2024-12-15", "2025-01-31", id="1m-december-to-january"),
    pytest.param(11, "2024-02-01", "2025-01-31", id="11m-crosses-year"),
    pytest.param(13, "2024-12-01", "2026-01-31", id="13m-lands-in-january"),
    pytest.param(24, "2022-02-14", "2024-02-29", id="24m-leap-february"),
    pytest.param(24, "2023-02-01", "2025-02-28", id="24m-plain-february"),
    pytest.param(120, "2024-06-15", "2034-06-30", id="120m-ten-years"),
])
def test_expiry_day_is_the_end_of_the_month_months_after_earning(months_after, earned_on, expires_on):
    assert expiry_day(ExpiryPolicy(months_after=months_after), d(earned_on)) == d(expires_on)


def test_demo_policy_is_end_of_the_12th_month():
    assert ExpiryPolicy().months_after == 12
    assert expiry_day(ExpiryPolicy(), d("2025-03-10")) == d("2026-03-31")


@given(earned_on=st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31)), months_after=st.integers(1, 120))
def test_expiry_day_is_a_month_end_exactly_n_months_later(earned_on, months_after):
    expires = expiry_day(ExpiryPolicy(months_after=months_after), earned_on)
    assert expires.day == calendar.monthrange(expires.year, expires.month)[1]
    assert (expires.year * 12 + expires.month) - (earned_on.year * 12 + earned_on.month) == months_after
    assert expires > earned_on


TODAY = d("2025-06-15")
MIXED = lots_of({
    "2025-09-30": 40,   # later
    "2025-06-14": 25,   # expired yesterday, job not yet run
    "2025-06-15": 10,   # expires today: still live
    "2025-07-31": 0,    # empty
    "2025-06-30": 5,
})


def test_live_lots_exclude_expired_and_empty_and_are_soonest_first():
    assert live(MIXED, TODAY) == [Lot(d("2025-06-15"), 10), Lot(d("2025-06-30"), 5), Lot(d("2025-09-30"), 40)]


@pytest.mark.parametrize(("today", "expected"), [
    pytest.param("2025-06-14", 80, id="day-before-everything-live"),
    pytest.param("2025-06-15", 55, id="yesterdays-lot-gone-todays-lot-live"),
    pytest.param("2025-06-16", 45, id="todays-lot-gone-tomorrow"),
    pytest.param("2025-07-01", 40, id="next-month"),
    pytest.param("2025-10-01", 0, id="all-expired"),
])
def test_spendable_counts_only_live_lots(today, expected):
    assert spendable(MIXED, d(today)) == expected


def test_no_lots_means_nothing_live():
    assert live([], TODAY) == []
    assert spendable([], TODAY) == 0


@pytest.mark.parametrize(("points", "draws"), [
    pytest.param(0, [], id="nothing"),
    pytest.param(7, [("2025-06-15", 7)], id="part-of-the-soonest-lot"),
    pytest.param(10, [("2025-06-15", 10)], id="exactly-the-soonest-lot"),
    pytest.param(11, [("2025-06-15", 10), ("2025-06-30", 1)], id="spills-into-the-next"),
    pytest.param(15, [("2025-06-15", 10), ("2025-06-30", 5)], id="exactly-two-lots"),
    pytest.param(55, [("2025-06-15", 10), ("2025-06-30", 5), ("2025-09-30", 40)], id="everything-live"),
])
def test_plan_draw_takes_soonest_expiring_live_lots_first_and_exactly(points, draws):
    assert plan_draw(MIXED, TODAY, points) == [Draw(d(day), n) for day, n in draws]


@pytest.mark.parametrize(("today", "points", "available"), [
    pytest.param("2025-06-15", 56, 55, id="one-more-than-live"),
    pytest.param("2025-06-15", 80, 55, id="expired-lot-does-not-count"),
    pytest.param("2025-10-01", 1, 0, id="all-expired"),
])
def test_plan_draw_short_raises_not_enough_points_with_the_figures(today, points, available):
    with pytest.raises(NotEnoughPoints) as raised:
        plan_draw(MIXED, d(today), points)
    assert (raised.value.wanted, raised.value.available) == (points, available)
    assert str(raised.value) == f"wanted {points}, {available} available"


def test_plan_draw_with_no_lots():
    assert plan_draw([], TODAY, 0) == []
    with pytest.raises(NotEnoughPoints) as raised:
        plan_draw([], TODAY, 3)
    assert (raised.value.wanted, raised.value.available) == (3, 0)


lot_sets = st.dictionaries(st.dates(dt.date(2025, 1, 1), dt.date(2026, 12, 31)), st.integers(0, 500), max_size=14)


@given(spec=lot_sets, today=st.dates(dt.date(2025, 1, 1), dt.date(2026, 12, 31)), points=st.integers(1, 4000))
def test_plan_draw_is_exact_soonest_first_and_within_each_lot(spec, today, points):
    lots = [Lot(day, remaining) for day, remaining in spec.items()]
    available = spendable(lots, today)
    if points > available:
        with pytest.raises(NotEnoughPoints):
            plan_draw(lots, today, points)
        return
    draws = plan_draw(lots, today, points)
    assert sum(draw.points for draw in draws) == points
    assert all(draw.points > 0 and draw.expires_on >= today for draw in draws)
    assert all(draw.points <= spec[draw.expires_on] for draw in draws)
    days = [draw.expires_on for draw in draws]
    assert days == sorted(set(days))
    # Every live lot before the last one drawn is emptied: nothing later is touched first.
    for lot in live(lots, today):
        if lot.expires_on < days[-1]:
            assert Draw(lot.expires_on, lot.remaining) in draws
