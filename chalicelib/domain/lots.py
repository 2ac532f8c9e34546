"""Points lots: when earned points expire, which lots a spend draws from. Pure.

A lot is all of a member's points that expire on one day. With the demo policy (end of the 12th
month after the month earned) a member has at most 13 live lots from earning, so any spend fits in
one DynamoDB transaction. A lot counts from its first day to its expiry day inclusive.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from chalicelib.domain.program import ExpiryPolicy


@dataclass(frozen=True)
class Lot:
    expires_on: dt.date
    remaining: int


@dataclass(frozen=True)
class Draw:
    expires_on: dt.date
    points: int


class NotEnoughPoints(Exception):
    def __init__(self, wanted: int, available: int) -> None:
        super().__init__(f"wanted {wanted}, {available} available")
        self.wanted = wanted
        self.available = available


def expiry_day(policy: ExpiryPolicy, earned_on: dt.date) -> dt.date:
    months = earned_on.year * 12 + (earned_on.month - 1) + policy.months_after
    year, month = divmod(months, 12)
    return dt.date(year, month + 1, calendar.monthrange(year, month + 1)[1])


def live(lots: list[Lot], today: dt.date) -> list[Lot]:
    """Lots that still hold points and have not expired, soonest expiry first."""
    return sorted((lot for lot in lots if lot.remaining > 0 and lot.expires_on >= today),
                  key=lambda lot: lot.expires_on)


def spendable(lots: list[Lot], today: dt.date) -> int:
    return sum(lot.remaining for lot in live(lots, today))


def plan_draw(lots: list[Lot], today: dt.date, points: int) -> list[Draw]:
    """Take `points` from the soonest-expiring live lots first."""
    if points <= 0:
        return []
    draws: list[Draw] = []
    left = points
    for lot in live(lots, today):
        take = min(lot.remaining, left)
        draws.append(Draw(lot.expires_on, take))
        left -= take
        if left == 0:
            return draws
    raise NotEnoughPoints(points, points - left)
