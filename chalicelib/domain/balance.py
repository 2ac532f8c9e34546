"""What a points change does to a member's balances and lots. Pure.

Balances: `points` is the ledger sum and always equals (points left in lots) - debt. `held` are
points frozen for a checkout (already out of lots and out of `points`). `debt` arises only when a
reversal finds the points already spent; earnings repay it before anything reaches a lot, and no
redemption is allowed while it is owed. `pending` are points awarded but held back by a risk
rule (review, caps, refund ratio): their own bucket, in no lot and not in `points`, until staff
release them (they become earned points) or reject them (they are dropped).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from chalicelib.domain.lots import Draw, Lot, NotEnoughPoints, live, plan_draw


@dataclass(frozen=True)
class Balances:
    points: int = 0
    held: int = 0
    debt: int = 0
    growth: int = 0
    growth_months: dict[str, int] = field(default_factory=dict)
    pending: int = 0


@dataclass(frozen=True)
class Change:
    after: Balances
    # Points added to (positive) or drawn from (negative) lots, by expiry day.
    lot_changes: dict[dt.date, int]
    repaid_debt: int = 0
    new_debt: int = 0

    @property
    def draws(self) -> list[Draw]:
        return [Draw(day, -n) for day, n in sorted(self.lot_changes.items()) if n < 0]


class InDebt(Exception):
    def __init__(self, debt: int) -> None:
        super().__init__(f"the member owes {debt} points")
        self.debt = debt


# Growth buckets older than the longest window (24 months) are dropped as months are written,
# so the account item stays small.
_KEEP_MONTHS = 25


def _with_growth(before: Balances, growth: int, month: str | None) -> dict[str, int]:
    months = dict(before.growth_months)
    if growth and month:
        months[month] = max(0, months.get(month, 0) + growth)
        year, mon = (int(part) for part in month.split("-"))
        oldest = year * 12 + mon - _KEEP_MONTHS
        months = {m: n for m, n in months.items()
                  if int(m[:4]) * 12 + int(m[5:7]) > oldest}
    return months


def _positive(**amounts: int) -> None:
    for name, value in amounts.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")


def earn(before: Balances, points: int, lot_day: dt.date, growth: int = 0, month: str | None = None,
         pending: int = 0) -> Change:
    """Credit earned points: repay debt first, the rest goes into the lot expiring on `lot_day`.
    `pending` points of the same award go to the pending bucket instead."""
    _positive(points=points, growth=growth, pending=pending)
    repay = min(before.debt, points)
    credit = points - repay
    after = replace(before, points=before.points + points, debt=before.debt - repay,
                    growth=max(0, before.growth + growth), growth_months=_with_growth(before, growth, month),
                    pending=before.pending + pending)
    return Change(after, {lot_day: credit} if credit else {}, repaid_debt=repay)


def release_pending(before: Balances, points: int, lot_day: dt.date) -> Change:
    """Pending points approved: they leave the pending bucket and are earned like any others."""
    _positive(points=points)
    if points > before.pending:
        raise ValueError(f"cannot release {points} of {before.pending} pending points")
    change = earn(before, points, lot_day)
    return replace(change, after=replace(change.after, pending=before.pending - points))


def drop_pending(before: Balances, points: int) -> Change:
    """Pending points rejected (or refunded before release): they leave the pending bucket only."""
    _positive(points=points)
    if points > before.pending:
        raise ValueError(f"cannot drop {points} of {before.pending} pending points")
    return Change(replace(before, pending=before.pending - points), {})


def spend(before: Balances, lots: list[Lot], today: dt.date, points: int, *, to_held: bool = False) -> Change:
    """Draw points from the soonest-expiring live lots; refused while in debt or short."""
    _positive(points=points)
    if before.debt:
        raise InDebt(before.debt)
    draws = plan_draw(lots, today, points)
    after = replace(before, points=before.points - points, held=before.held + (points if to_held else 0))
    return Change(after, {d.expires_on: -d.points for d in draws})


def reverse(before: Balances, lots: list[Lot], today: dt.date, points: int, growth: int = 0,
            month: str | None = None) -> Change:
    """Take back awarded points: from live lots as far as they go, the rest becomes debt."""
    _positive(points=points, growth=growth)
    draws: dict[dt.date, int] = {}
    left = points
    for lot in live(lots, today):
        take = min(lot.remaining, left)
        if take:
            draws[lot.expires_on] = -take
            left -= take
        if not left:
            break
    after = replace(before, points=before.points - points, debt=before.debt + left,
                    growth=max(0, before.growth - growth), growth_months=_with_growth(before, -growth, month))
    return Change(after, draws, new_debt=left)


def restore(before: Balances, draws: list[Draw], today: dt.date, *, from_held: int = 0) -> Change:
    """Put drawn points back into the lots they came from (cancelled redemption, released hold).
    Points whose lot has expired meanwhile are forfeited rather than revived; any debt owed is
    repaid first, out of the soonest-expiring returns."""
    back = {d.expires_on: d.points for d in draws if d.expires_on >= today and d.points > 0}
    returned = sum(back.values())
    repay = min(before.debt, returned)
    owed = repay
    for day in sorted(back):
        take = min(back[day], owed)
        back[day] -= take
        owed -= take
    after = replace(before, points=before.points + returned, held=before.held - from_held,
                    debt=before.debt - repay)
    return Change(after, {day: n for day, n in back.items() if n}, repaid_debt=repay)


def capture(before: Balances, points: int) -> Change:
    """A captured hold: the frozen points are spent (they left `points` when frozen)."""
    if not 0 <= points <= before.held:
        raise ValueError(f"cannot capture {points} of {before.held} held points")
    return Change(replace(before, held=before.held - points), {})


def expire(before: Balances, lot: Lot) -> Change:
    """The job expires what remains in a lot."""
    return Change(replace(before, points=before.points - lot.remaining), {lot.expires_on: -lot.remaining})


__all__ = ["Balances", "Change", "InDebt", "NotEnoughPoints", "earn", "spend", "reverse", "restore", "capture", "expire",
           "release_pending", "drop_pending"]
