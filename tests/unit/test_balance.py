"""What each points change does to a member's balances and lots.

Invariant throughout: points == (points left in lots) - debt; `held` is outside both."""

from __future__ import annotations

import pytest

from chalicelib.domain.balance import (
    Balances,
    Change,
    InDebt,
    NotEnoughPoints,
    capture,
    earn,
    expire,
    restore,
    reverse,
    spend,
)
from chalicelib.domain.lots import Draw, Lot
from tests.unit.builders import d, lots_of

TODAY = d("2025-06-15")
JUNE, SEPT, NEXT_JUNE = d("2025-06-30"), d("2025-09-30"), d("2026-06-30")


# --- earn ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("debt", "points", "repaid", "lot_credit", "debt_after"), [
    pytest.param(0, 100, 0, 100, 0, id="no-debt-all-to-the-lot"),
    pytest.param(30, 100, 30, 70, 0, id="repays-debt-then-the-rest-to-the-lot"),
    pytest.param(100, 100, 100, 0, 0, id="exactly-repays-debt"),
    pytest.param(100, 40, 40, 0, 60, id="all-to-debt-some-still-owed"),
    pytest.param(0, 0, 0, 0, 0, id="zero-points"),
])
def test_earn_repays_debt_before_crediting_a_lot(debt, points, repaid, lot_credit, debt_after):
    before = Balances(points=-debt, debt=debt)
    change = earn(before, points, NEXT_JUNE)
    assert change.repaid_debt == repaid
    assert change.new_debt == 0
    assert change.lot_changes == ({NEXT_JUNE: lot_credit} if lot_credit else {})
    assert change.after.points == before.points + points
    assert change.after.debt == debt_after


def test_earn_adds_growth_to_the_total_and_to_its_month():
    before = Balances(points=5, growth=100, growth_months={"2025-05": 100})
    after = earn(before, 10, NEXT_JUNE, growth=10, month="2025-06").after
    assert (after.points, after.growth) == (15, 110)
    assert after.growth_months == {"2025-05": 100, "2025-06": 10}
    assert before.growth_months == {"2025-05": 100}, "the balances before are not mutated"


def test_growth_months_far_older_than_the_longest_window_are_dropped_when_a_month_is_written():
    """Windows are at most 24 months; a month 30 months back cannot count any more, one 12 months
    back still can."""
    before = Balances(growth=30, growth_months={"2022-12": 10, "2024-06": 10, "2025-05": 10})
    after = earn(before, 10, NEXT_JUNE, growth=5, month="2025-06").after
    assert after.growth_months == {"2024-06": 10, "2025-05": 10, "2025-06": 5}
    assert after.growth == 35, "lifetime growth is not pruned"


def test_reversing_growth_of_an_old_month_keeps_newer_months():
    before = Balances(points=10, growth=20, growth_months={"2023-01": 8, "2025-06": 12})
    after = reverse(before, lots_of({"2026-01-31": 10}), TODAY, 2, growth=8, month="2023-01").after
    assert after.growth_months.get("2023-01", 0) == 0
    assert after.growth_months["2025-06"] == 12
    assert after.growth == 12


def test_earn_keeps_held_untouched():
    assert earn(Balances(points=0, held=40), 10, NEXT_JUNE).after.held == 40


# --- spend --------------------------------------------------------------------------------------

WALLET = lots_of({"2025-09-30": 50, "2025-06-30": 30, "2025-06-14": 99, "2026-06-30": 100})
WALLET_BALANCES = Balances(points=279)  # all lots, including the expired one the job has not run on


@pytest.mark.parametrize(("points", "lot_changes"), [
    pytest.param(20, {JUNE: -20}, id="from-the-soonest-live-lot"),
    pytest.param(30, {JUNE: -30}, id="empties-the-soonest"),
    pytest.param(60, {JUNE: -30, SEPT: -30}, id="spills-over"),
    pytest.param(180, {JUNE: -30, SEPT: -50, NEXT_JUNE: -100}, id="every-live-point"),
])
def test_spend_draws_soonest_expiring_live_lots_and_skips_expired(points, lot_changes):
    change = spend(WALLET_BALANCES, WALLET, TODAY, points)
    assert change.lot_changes == lot_changes
    assert change.after == Balances(points=279 - points)
    assert sum(draw.points for draw in change.draws) == points


def test_spend_to_held_moves_points_into_held():
    change = spend(Balances(points=279, held=10), WALLET, TODAY, 40, to_held=True)
    assert (change.after.points, change.after.held) == (239, 50)
    assert change.lot_changes == {JUNE: -30, SEPT: -10}


def test_spend_more_than_live_points_is_refused_with_the_figures():
    with pytest.raises(NotEnoughPoints) as raised:
        spend(WALLET_BALANCES, WALLET, TODAY, 181)
    assert (raised.value.wanted, raised.value.available) == (181, 180)


@pytest.mark.parametrize("points", [1, 10], ids=["one-point", "well-within-lots"])
def test_spend_is_refused_while_in_debt_even_with_points_in_lots(points):
    """Lots with points and debt together can only come from expired-but-unprocessed lots or odd
    data; either way no redemption is allowed while debt is owed."""
    with pytest.raises(InDebt) as raised:
        spend(Balances(points=50, debt=5), lots_of({"2025-09-30": 55}), TODAY, points)
    assert raised.value.debt == 5


def test_spend_in_debt_and_short_reports_the_debt_first():
    with pytest.raises(InDebt):
        spend(Balances(points=-5, debt=5), [], TODAY, 10)


def test_spend_of_zero_changes_nothing():
    change = spend(WALLET_BALANCES, WALLET, TODAY, 0)
    assert (change.after, change.lot_changes) == (WALLET_BALANCES, {})


# --- reverse ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("points", "lot_changes", "new_debt"), [
    pytest.param(0, {}, 0, id="nothing"),
    pytest.param(25, {JUNE: -25}, 0, id="within-the-soonest-lot"),
    pytest.param(80, {JUNE: -30, SEPT: -50}, 0, id="across-lots"),
    pytest.param(180, {JUNE: -30, SEPT: -50, NEXT_JUNE: -100}, 0, id="every-live-point"),
    pytest.param(200, {JUNE: -30, SEPT: -50, NEXT_JUNE: -100}, 20, id="rest-becomes-debt"),
])
def test_reverse_takes_from_live_lots_then_creates_debt(points, lot_changes, new_debt):
    change = reverse(WALLET_BALANCES, WALLET, TODAY, points)
    assert change.lot_changes == lot_changes
    assert change.new_debt == new_debt
    assert change.after.debt == new_debt
    assert change.after.points == 279 - points
    assert change.after.points == 279 - sum(-n for n in lot_changes.values()) - new_debt


def test_reverse_with_no_points_left_is_all_debt_and_debt_accumulates():
    change = reverse(Balances(points=-10, debt=10), [], TODAY, 15)
    assert change.lot_changes == {}
    assert (change.new_debt, change.after.debt, change.after.points) == (15, 25, -25)


def test_reverse_ignores_expired_lots_even_if_not_yet_expired_by_the_job():
    change = reverse(Balances(points=99), lots_of({"2025-06-14": 99}), TODAY, 10)
    assert change.lot_changes == {}
    assert (change.after.points, change.after.debt) == (89, 10)


@pytest.mark.parametrize(("growth_before", "growth_reversed", "growth_after"), [
    pytest.param(500, 120, 380, id="takes-growth-back"),
    pytest.param(100, 120, 0, id="never-below-zero"),
])
def test_reverse_takes_growth_back_from_the_total_and_its_month(growth_before, growth_reversed, growth_after):
    before = Balances(points=180, growth=growth_before, growth_months={"2025-06": growth_before})
    after = reverse(before, WALLET, TODAY, 10, growth=growth_reversed, month="2025-06").after
    assert after.growth == growth_after
    assert after.growth_months == {"2025-06": growth_after}


def test_reverse_keeps_held_untouched():
    assert reverse(Balances(points=0, held=7), [], TODAY, 3).after.held == 7


# --- restore ------------------------------------------------------------------------------------

def test_restore_returns_points_to_the_lots_they_came_from():
    draws = [Draw(JUNE, 30), Draw(SEPT, 10)]
    change = restore(Balances(points=140), draws, TODAY)
    assert change.lot_changes == {JUNE: 30, SEPT: 10}
    assert change.after.points == 180
    assert change.repaid_debt == 0


@pytest.mark.parametrize(("today", "lot_changes", "returned"), [
    pytest.param("2025-06-30", {JUNE: 30, SEPT: 10}, 40, id="lot-expiring-today-still-returned"),
    pytest.param("2025-07-01", {SEPT: 10}, 10, id="expired-lot-forfeited"),
    pytest.param("2025-10-01", {}, 0, id="all-forfeited"),
])
def test_restore_forfeits_points_whose_lot_has_expired(today, lot_changes, returned):
    change = restore(Balances(points=0), [Draw(JUNE, 30), Draw(SEPT, 10)], d(today))
    assert change.lot_changes == lot_changes
    assert change.after.points == returned


@pytest.mark.parametrize(("debt", "lot_changes", "repaid"), [
    pytest.param(20, {JUNE: 10, SEPT: 10}, 20, id="debt-repaid-from-the-soonest-return"),
    pytest.param(30, {SEPT: 10}, 30, id="soonest-return-used-up"),
    pytest.param(35, {SEPT: 5}, 35, id="spills-into-the-next-return"),
    pytest.param(50, {}, 40, id="debt-larger-than-the-return"),
])
def test_restore_repays_debt_first(debt, lot_changes, repaid):
    before = Balances(points=-debt, debt=debt)
    change = restore(before, [Draw(JUNE, 30), Draw(SEPT, 10)], TODAY)
    assert change.lot_changes == lot_changes
    assert change.repaid_debt == repaid
    assert change.after.debt == debt - repaid
    assert change.after.points == -debt + 40


def test_release_of_a_hold_unfreezes_everything_held_but_returns_only_live_lots():
    """A released hold leaves `held` entirely; points drawn from a lot that expired meanwhile
    are forfeited, not revived."""
    before = Balances(points=100, held=40)
    change = restore(before, [Draw(d("2025-06-10"), 25), Draw(SEPT, 15)], TODAY, from_held=40)
    assert change.after.held == 0
    assert change.after.points == 115
    assert change.lot_changes == {SEPT: 15}


def test_restore_ignores_non_positive_draws():
    change = restore(Balances(points=0), [Draw(SEPT, 0), Draw(JUNE, -5)], TODAY)
    assert (change.lot_changes, change.after.points) == ({}, 0)


# --- capture and expire -------------------------------------------------------------------------

def test_capture_spends_held_points_without_touching_points_or_lots():
    change = capture(Balances(points=60, held=40), 40)
    assert change.after == Balances(points=60, held=0)
    assert change.lot_changes == {}


def test_partial_captures_of_two_holds():
    after = capture(capture(Balances(points=0, held=70), 30).after, 40).after
    assert after.held == 0


@pytest.mark.parametrize(("remaining", "points_after"), [
    pytest.param(99, 180, id="what-remains-expires"),
    pytest.param(0, 279, id="empty-lot-changes-nothing"),
])
def test_expire_removes_what_remains_in_a_lot(remaining, points_after):
    lot = Lot(d("2025-06-14"), remaining)
    change = expire(WALLET_BALANCES, lot)
    assert change.after.points == points_after
    assert change.lot_changes == {lot.expires_on: -remaining}


def test_expire_while_in_debt_keeps_points_equal_to_lots_minus_debt():
    """An expired lot the job had not yet processed, and debt from a later reversal."""
    before = Balances(points=70, debt=30)  # lots: 100 expired, 0 live
    change = expire(before, Lot(d("2025-06-14"), 100))
    assert change.after.points == 0 - 30
    assert change.after.debt == 30


# --- Change ---------------------------------------------------------------------------------------

def test_change_draws_lists_only_the_lots_drawn_from_soonest_first_as_positive_points():
    change = Change(Balances(), {SEPT: -10, NEXT_JUNE: 5, JUNE: -3})
    assert change.draws == [Draw(JUNE, 3), Draw(SEPT, 10)]


def test_spend_then_restore_round_trips():
    spent = spend(WALLET_BALANCES, WALLET, TODAY, 60)
    back = restore(spent.after, spent.draws, TODAY)
    assert back.after == WALLET_BALANCES
    assert {day: spent.lot_changes[day] + back.lot_changes[day] for day in spent.lot_changes} == {JUNE: 0, SEPT: 0}
