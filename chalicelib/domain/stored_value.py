"""Stored value (储值) arithmetic: pure, integer fen, no I/O.

Buckets: `principal` is money the member paid in, `bonus` is what a plan gave on top. Spending
order: **principal first, bonus last** — so a refund of unspent principal (the only money that
goes back out) is as large as it can be, and bonus is what is left over at the end. Money set
aside (a two-step till payment, a pending refund) sits in `frozen_*`: still the member's, not
spendable. The caps count everything the member holds, frozen money included.

Refunds are computed from cumulative totals (what had been refunded before, what will have been
after), never from running increments, so rounding never drifts across many partial refunds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.errors import BalanceCap, InsufficientBalance, RefundExceedsPayment


@dataclass(frozen=True)
class Wallet:
    principal: int = 0
    bonus: int = 0
    frozen_principal: int = 0
    frozen_bonus: int = 0

    @property
    def available(self) -> int:
        """What the member can spend (what the card shows)."""
        return self.principal + self.bonus

    @property
    def held(self) -> int:
        """Everything the member holds: the caps and the liability count this."""
        return self.available + self.frozen_principal + self.frozen_bonus


@dataclass(frozen=True)
class Split:
    """An amount as it falls on the buckets."""

    principal: int
    bonus: int

    @property
    def total(self) -> int:
        return self.principal + self.bonus


def cap_for(cap_named_fen: int, cap_anonymous_fen: int, phone_bound: bool) -> int:
    return cap_named_fen if phone_bound else cap_anonymous_fen


def check_top_up(wallet: Wallet, pay_fen: int, bonus_fen: int, cap_fen: int) -> None:
    """A top-up must leave the member at or under the cap, bonus included (refused before paying)."""
    if wallet.held + pay_fen + bonus_fen > cap_fen:
        raise BalanceCap(f"this top-up would take the stored value past its cap of {cap_fen} fen")


def credit(wallet: Wallet, pay_fen: int, bonus_fen: int) -> Wallet:
    return replace(wallet, principal=wallet.principal + pay_fen, bonus=wallet.bonus + bonus_fen)


def spend_split(wallet: Wallet, amount_fen: int) -> Split:
    """How a payment falls on the buckets: principal first, bonus last."""
    if amount_fen <= 0:
        raise ValueError("amount must be positive")
    if amount_fen > wallet.available:
        raise InsufficientBalance(f"the stored value ({wallet.available} fen) does not cover {amount_fen} fen")
    from_principal = min(wallet.principal, amount_fen)
    return Split(from_principal, amount_fen - from_principal)


def spend(wallet: Wallet, split: Split) -> Wallet:
    return replace(wallet, principal=wallet.principal - split.principal, bonus=wallet.bonus - split.bonus)


def freeze(wallet: Wallet, split: Split) -> Wallet:
    return replace(wallet, principal=wallet.principal - split.principal, bonus=wallet.bonus - split.bonus,
                   frozen_principal=wallet.frozen_principal + split.principal,
                   frozen_bonus=wallet.frozen_bonus + split.bonus)


def capture(wallet: Wallet, split: Split) -> Wallet:
    """Frozen money leaves for good (a captured till payment, a refund paid out)."""
    return replace(wallet, frozen_principal=wallet.frozen_principal - split.principal,
                   frozen_bonus=wallet.frozen_bonus - split.bonus)


def release(wallet: Wallet, split: Split) -> Wallet:
    """Frozen money goes back to the buckets it came from."""
    return replace(wallet, principal=wallet.principal + split.principal, bonus=wallet.bonus + split.bonus,
                   frozen_principal=wallet.frozen_principal - split.principal,
                   frozen_bonus=wallet.frozen_bonus - split.bonus)


def give_back(wallet: Wallet, split: Split) -> Wallet:
    """A refunded till payment returns to the buckets it came from."""
    return replace(wallet, principal=wallet.principal + split.principal, bonus=wallet.bonus + split.bonus)


def payment_refund_split(paid: Split, refunded_before: Split, amount_fen: int) -> Split:
    """The part of a payment's refund going back to each bucket. Cumulatively, refunds give back
    principal first (it was spent first), then bonus; never more than the payment in total."""
    if amount_fen <= 0:
        raise ValueError("amount must be positive")
    total_after = refunded_before.total + amount_fen
    if total_after > paid.total:
        raise RefundExceedsPayment(
            f"refunds would total {total_after} fen, more than the payment's {paid.total} fen")
    principal_after = min(paid.principal, total_after)
    return Split(principal_after - refunded_before.principal, total_after - principal_after - refunded_before.bonus)


@dataclass(frozen=True)
class TopUpRefund:
    refund_fen: int  # principal paid back through WeChat Pay
    forfeit_bonus_fen: int  # bonus the member loses with it


def top_up_refund(pay_fen: int, bonus_fen: int, refunded_before: int, forfeited_before: int,
                  wallet: Wallet) -> TopUpRefund:
    """Refund what is left unspent of a top-up's principal, and forfeit its bonus in proportion.

    Unspent principal: what the member still holds as principal, at most what this top-up paid
    in minus what earlier refunds of it took. The bonus forfeited brings the top-up's forfeited
    total to bonus x (principal refunded / principal paid), rounded up (never in the member's
    favour twice), at most the bonus the member still has."""
    refund = max(0, min(pay_fen - refunded_before, wallet.principal))
    if refund == 0:
        return TopUpRefund(0, 0)
    refunded_after = refunded_before + refund
    forfeited_after = -(-bonus_fen * refunded_after // pay_fen)  # ceiling division, integers only
    forfeit = max(0, min(forfeited_after - forfeited_before, wallet.bonus))
    return TopUpRefund(refund, forfeit)
