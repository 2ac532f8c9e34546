"""The ledger invariant, checked for one member. Pure.

    account.points == sum(ledger points) == sum(points left in lots) - debt
    account.held   == sum(points in holds still unsettled)
    account.growth == sum(ledger growth)
    account.pending == sum(ledger pending) == sum(what remains of open pending entries)
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
    pending: int = 0
    ledger_pending: int = 0
    open_pending: int = 0


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
    if t.pending != t.ledger_pending:
        found.append(f"pending {t.pending} != ledger pending {t.ledger_pending}")
    if t.pending != t.open_pending:
        found.append(f"pending {t.pending} != open pending entries {t.open_pending}")
    if t.debt < 0 or t.held < 0:
        found.append("negative debt or held")
    if t.pending < 0:
        found.append("negative pending")
    return found
