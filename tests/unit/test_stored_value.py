"""Stored-value arithmetic (domain/stored_value.py): buckets, spending order, caps, refunds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import stored_value as sv
from chalicelib.errors import BalanceCap, InsufficientBalance, RefundExceedsPayment


def test_principal_is_spent_first_and_bonus_last():
    wallet = sv.Wallet(principal=10_000, bonus=1_000)
    assert sv.spend_split(wallet, 3_000) == sv.Split(3_000, 0)
    assert sv.spend_split(wallet, 10_500) == sv.Split(10_000, 500)
    with pytest.raises(InsufficientBalance):
        sv.spend_split(wallet, 11_001)


def test_frozen_money_is_not_spendable_but_counts_against_the_cap():
    wallet = sv.freeze(sv.Wallet(10_000, 1_000), sv.Split(9_000, 0))
    assert wallet.available == 2_000 and wallet.held == 11_000
    with pytest.raises(BalanceCap):
        sv.check_top_up(wallet, 80_000, 9_001, 100_000)
    sv.check_top_up(wallet, 80_000, 9_000, 100_000)
    assert sv.release(wallet, sv.Split(9_000, 0)) == sv.Wallet(10_000, 1_000)
    assert sv.capture(wallet, sv.Split(9_000, 0)) == sv.Wallet(1_000, 1_000)


def test_the_cap_depends_on_a_bound_phone():
    assert sv.cap_for(500_000, 100_000, True) == 500_000
    assert sv.cap_for(500_000, 100_000, False) == 100_000
    with pytest.raises(BalanceCap):
        sv.check_top_up(sv.Wallet(95_000, 0), 10_000, 1_000, 100_000)


def test_payment_refunds_give_principal_back_first_and_never_pass_the_payment():
    paid = sv.Split(10_000, 500)
    first = sv.payment_refund_split(paid, sv.Split(0, 0), 10_200)
    assert first == sv.Split(10_000, 200)
    assert sv.payment_refund_split(paid, first, 300) == sv.Split(0, 300)
    with pytest.raises(RefundExceedsPayment):
        sv.payment_refund_split(paid, first, 301)


@given(st.integers(1, 10**6), st.integers(0, 10**6), st.lists(st.integers(1, 10**5), max_size=20))
def test_partial_refunds_add_up_to_the_payment_exactly(principal, bonus, amounts):
    paid, done = sv.Split(principal, bonus), sv.Split(0, 0)
    for amount in amounts:
        try:
            part = sv.payment_refund_split(paid, done, amount)
        except RefundExceedsPayment:
            assert done.total + amount > paid.total
            continue
        assert part.principal >= 0 and part.bonus >= 0 and part.total == amount
        done = sv.Split(done.principal + part.principal, done.bonus + part.bonus)
        assert done.principal <= paid.principal and done.bonus <= paid.bonus


def test_a_top_up_refund_is_the_unspent_principal_with_bonus_forfeited_in_proportion():
    after_spending = sv.Wallet(principal=7_000, bonus=1_000)
    refund = sv.top_up_refund(10_000, 1_000, 0, 0, after_spending)
    assert refund == sv.TopUpRefund(7_000, 700)
    # Nothing left: nothing to refund, however often asked.
    assert sv.top_up_refund(10_000, 1_000, 7_000, 700, sv.Wallet(0, 300)) == sv.TopUpRefund(0, 0)
    # Never more than the top-up paid in, even when the member holds more principal from others.
    assert sv.top_up_refund(10_000, 1_000, 4_000, 400, sv.Wallet(50_000, 5_000)) == sv.TopUpRefund(6_000, 600)
    # The bonus already spent cannot be forfeited twice.
    assert sv.top_up_refund(10_000, 1_000, 0, 0, sv.Wallet(10_000, 100)) == sv.TopUpRefund(10_000, 100)


@given(st.integers(1, 10**6), st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_top_up_refunds_never_pay_out_more_than_was_paid_in(pay_fen, bonus_fen, principals):
    refunded = forfeited = 0
    for principal in principals:
        refund = sv.top_up_refund(pay_fen, bonus_fen, refunded, forfeited, sv.Wallet(principal, bonus_fen))
        refunded += refund.refund_fen
        forfeited += refund.forfeit_bonus_fen
        assert refunded <= pay_fen and forfeited <= bonus_fen
