"""How much a refund takes back. Pure.

Reversals are proportional to the cumulative amount refunded, rounded down, and computed as
"what should be reversed in total after this refund" minus "what was reversed before". So a
series of partial refunds never drifts, and refunding the whole order reverses exactly what the
order awarded.
"""

from __future__ import annotations


class RefundExceedsOrder(Exception):
    pass


def reversal(awarded: int, amount_fen: int, refunded_before_fen: int, refund_fen: int, reversed_before: int) -> int:
    refunded_after = refunded_before_fen + refund_fen
    if refund_fen <= 0 or refunded_after > amount_fen:
        raise RefundExceedsOrder(f"{refunded_after} fen refunded of a {amount_fen} fen order")
    target = awarded if refunded_after == amount_fen else awarded * refunded_after // amount_fen
    return target - reversed_before
