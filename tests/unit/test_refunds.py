"""How many points (or growth) a refund takes back: proportional to the cumulative amount
refunded, rounded down, computed as a running total so partial refunds never drift."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.refunds import RefundExceedsOrder, reversal


def run_refunds(awarded: int, amount_fen: int, refunds: list[int]) -> list[int]:
    """Apply refunds in order the way the ledger does; return what each one reversed."""
    refunded = reversed_total = 0
    taken = []
    for refund in refunds:
        points = reversal(awarded, amount_fen, refunded, refund, reversed_total)
        taken.append(points)
        refunded += refund
        reversed_total += points
    return taken


@pytest.mark.parametrize(("awarded", "amount_fen", "refunded_before", "refund", "reversed_before", "expected"), [
    pytest.param(100, 10_000, 0, 5_000, 0, 50, id="half-of-the-order"),
    pytest.param(100, 10_000, 0, 3_333, 0, 33, id="a-third-33.33-rounds-down"),
    pytest.param(15, 1_000, 0, 1, 0, 0, id="one-fen-of-15-points-is-0.015-to-0"),
    pytest.param(15, 1_000, 0, 999, 0, 14, id="all-but-one-fen-14.985-to-14"),
    pytest.param(100, 10_000, 3_333, 3_333, 33, 33, id="second-third-66-minus-33"),
    pytest.param(100, 10_000, 6_666, 3_334, 66, 34, id="last-part-takes-the-remainder"),
    pytest.param(100, 10_000, 0, 10_000, 0, 100, id="whole-order-at-once"),
    pytest.param(0, 10_000, 0, 10_000, 0, 0, id="nothing-awarded-nothing-reversed"),
    pytest.param(7, 1, 0, 1, 0, 7, id="one-fen-order"),
])
def test_reversal_is_proportional_and_rounded_down(awarded, amount_fen, refunded_before, refund, reversed_before,
                                                   expected):
    assert reversal(awarded, amount_fen, refunded_before, refund, reversed_before) == expected


@pytest.mark.parametrize(("awarded", "amount_fen", "refunds"), [
    pytest.param(100, 10_000, [10_000], id="one-full-refund"),
    pytest.param(100, 10_000, [3_333, 3_333, 3_334], id="three-thirds"),
    pytest.param(15, 1_000, [1] * 10 + [990], id="ten-single-fen-then-the-rest"),
    pytest.param(15, 1_000, [999, 1], id="all-but-one-fen-then-one-fen"),
    pytest.param(150, 9_999, [1_111] * 9, id="nine-equal-parts"),
    pytest.param(1, 3, [1, 1, 1], id="one-point-over-three-fen"),
    pytest.param(0, 500, [200, 300], id="zero-awarded"),
])
def test_full_refund_in_any_split_reverses_exactly_what_was_awarded(awarded, amount_fen, refunds):
    taken = run_refunds(awarded, amount_fen, refunds)
    assert sum(taken) == awarded
    assert all(points >= 0 for points in taken)


def test_partial_refunds_never_drift_from_a_single_refund_of_the_same_total():
    """Ten refunds of 1 fen from a 15-point, 10-yuan order reverse what one 10-fen refund would
    (0), not ten times a rounded share."""
    assert sum(run_refunds(15, 1_000, [1] * 10)) == reversal(15, 1_000, 0, 10, 0) == 0
    assert sum(run_refunds(100, 999, [333, 333])) == reversal(100, 999, 0, 666, 0) == 66


@pytest.mark.parametrize(("amount_fen", "refunded_before", "refund"), [
    pytest.param(10_000, 0, 0, id="refund-of-zero"),
    pytest.param(10_000, 0, -100, id="negative-refund"),
    pytest.param(10_000, 0, 10_001, id="more-than-the-order"),
    pytest.param(10_000, 6_000, 4_001, id="remainder-plus-one-fen"),
    pytest.param(10_000, 10_000, 1, id="after-a-full-refund"),
    pytest.param(0, 0, 1, id="zero-fen-order"),
])
def test_refund_of_zero_or_beyond_the_order_is_refused(amount_fen, refunded_before, refund):
    with pytest.raises(RefundExceedsOrder):
        reversal(100, amount_fen, refunded_before, refund, 0)


def test_refund_exactly_the_remainder_is_allowed():
    assert reversal(100, 10_000, 6_000, 4_000, 60) == 40


@st.composite
def refund_series(draw):
    """(awarded, amount_fen, refunds) with refunds >= 1 fen each, summing to at most amount_fen;
    about half the series refund the order in full."""
    awarded = draw(st.integers(0, 10**6))
    amount = draw(st.integers(1, 10**7))
    cuts = draw(st.lists(st.integers(1, amount), unique=True, max_size=12).map(sorted))
    if draw(st.booleans()) and (not cuts or cuts[-1] != amount):
        cuts.append(amount)
    refunds = [after - before for before, after in zip([0, *cuts], cuts)]
    return awarded, amount, refunds


@given(refund_series())
def test_running_reversal_is_monotone_bounded_and_exact_on_full_refund(series):
    awarded, amount, refunds = series
    refunded = reversed_total = 0
    for refund in refunds:
        points = reversal(awarded, amount, refunded, refund, reversed_total)
        assert points >= 0, "a refund never gives points back"
        refunded += refund
        reversed_total += points
        assert reversed_total <= awarded
        # Path independence: the running total depends only on how much has been refunded.
        assert reversed_total == (awarded if refunded == amount else awarded * refunded // amount)
    if refunded == amount:
        assert reversed_total == awarded
        with pytest.raises(RefundExceedsOrder):
            reversal(awarded, amount, refunded, 1, reversed_total)
    else:
        assert reversed_total <= awarded * refunded // amount
