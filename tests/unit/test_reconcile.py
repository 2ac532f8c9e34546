"""The per-member ledger check: points == ledger sum == lots - debt, held == open holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.domain.reconcile import MemberTotals, differences

CONSISTENT = MemberTotals(member_id="m-1", points=70, held=20, debt=30, growth=400, ledger_points=70,
                          ledger_growth=400, lots_remaining=100, open_holds=20)


def test_consistent_totals_have_no_differences():
    assert differences(CONSISTENT) == []


def test_all_zero_member_is_consistent():
    assert differences(MemberTotals("m-0", 0, 0, 0, 0, 0, 0, 0, 0)) == []


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({"ledger_points": 71}, ["balance 70 != ledger sum 71"], id="ledger-sum"),
    pytest.param({"lots_remaining": 99}, ["balance 70 != lots 99 - debt 30"], id="lots-minus-debt"),
    pytest.param({"debt": 0}, ["balance 70 != lots 100 - debt 0"], id="debt-forgotten"),
    pytest.param({"open_holds": 0}, ["held 20 != open holds 0"], id="held-vs-open-holds"),
    pytest.param({"ledger_growth": 399}, ["growth 400 != ledger growth 399"], id="growth"),
    pytest.param({"points": 80, "ledger_points": 80, "lots_remaining": 110}, [], id="all-moved-together"),
    pytest.param({"points": 71}, ["balance 71 != ledger sum 70", "balance 71 != lots 100 - debt 30"],
                 id="balance-off-both-ways"),
    pytest.param({"debt": -5, "lots_remaining": 65}, ["negative debt or held"], id="negative-debt"),
    pytest.param({"held": -1, "open_holds": -1}, ["negative debt or held"], id="negative-held"),
])
def test_each_difference_is_reported_with_its_figures(overrides, expected):
    assert differences(replace(CONSISTENT, **overrides)) == expected
