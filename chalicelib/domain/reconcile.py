"""The ledger invariant, checked for one member. Pure.

    account.points == sum(ledger points) == sum(points left in lots) - debt
    account.held   == sum(points in holds still unsettled)
    account.growth == sum(ledger growth)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemberTotals:
    member_id: str
    points: int
    held: int
    debt: int
    growth: int
    ledger_points: int
    ledger_growth: int
    lots_remaining: int
    open_holds: int


def differences(t: MemberTotals) -> list[str]:
    found = []
    if t.points != t.ledger_points:
        found.append(f"balance {t.points} != ledger sum {t.ledger_points}")
    if t.points != t.lots_remaining - t.debt:
        found.append(f"balance {t.points} != lots {t.lots_remaining} - debt {t.debt}")
    if t.held != t.open_holds:
        found.append(f"held {t.held} != open holds {t.open_holds}")
    if t.growth != t.ledger_growth:
        found.append(f"growth {t.growth} != ledger growth {t.ledger_growth}")
    if t.debt < 0 or t.held < 0:
        found.append("negative debt or held")
    return found
