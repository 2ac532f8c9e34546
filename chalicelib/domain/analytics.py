"""Daily figures of a program: what one table change adds to its day, and what a day's counts say.

A change counts once, on the program day (its time zone) of the moment it records. Only immutable
items count (ledger rows, orders, refunds, coupon events, stored-value entries, new profiles), so
an item's identity is the event's identity: counting it twice is what the store's marker prevents.
Corrections (refunds, voided coupons, cancelled redemptions) count on the day they happen, as in
the ledgers: a day's figures never change once the day is over.

Integers only: rates are basis points (1/100 of a percent: 10000 = 100 %), null where the
denominator is 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

# Every counter a day has; each is the sum, over the day's changes, of what `contribution` says.
COUNTERS: tuple[str, ...] = (
    "new_members",
    "active_members",  # distinct members with an order or a check-in that day
    "checkins",
    "orders",
    "gross_sales_fen",  # orders' amounts
    "refunds_fen",  # amounts refunded that day (of orders of any day)
    "refunds",
    "points_issued",  # earned (orders, check-ins, tasks, gifts, released pending) and positive adjustments
    "points_redeemed",  # spent (rewards, coupons bought with points, checkout holds) net of cancellations
    "points_expired",
    "points_reversed",  # taken back by order refunds
    "points_deducted",  # negative staff adjustments
    "points_net",  # the sum of every ledger row's points: the day's change of points outstanding
    "coupons_issued",
    "coupons_used",  # net of voids
    "coupons_expired",
    "sv_principal_fen",  # the day's change of stored value owed (paid in)
    "sv_bonus_fen",  # the day's change of stored value owed (given)
)

_SPENDING = {"redeem", "hold", "release"}


@dataclass(frozen=True)
class Contribution:
    """What one change adds to its day: counters, the moment (ISO) or day it belongs to, and the
    member it makes active (orders, check-ins)."""

    counts: dict[str, int]
    moment: str | None = None
    day: str | None = None
    active_member: str | None = None
    # Members into (+1) / out of (-1) tiers: enrolments, tier moves, removed accounts.
    tiers: dict[str, int] = field(default_factory=dict)
    # Which of the item's changes this is (its counting marker): its insertion, or its removal.
    what: str = "day"


def _detail(image: Mapping[str, Any]) -> dict[str, Any]:
    raw = image.get("detail")
    if isinstance(raw, str):  # a JSONAttribute is a string in the table (and in stream images)
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return dict(raw) if isinstance(raw, Mapping) else {}


def _points_counts(kind_type: str, points: int) -> dict[str, int]:
    counts = {"points_net": points}
    if kind_type in ("earn", "adjust"):
        counts["points_issued" if points >= 0 else "points_deducted"] = abs(points)
    elif kind_type in _SPENDING:
        counts["points_redeemed"] = -points
    elif kind_type == "expire":
        counts["points_expired"] = -points
    elif kind_type == "reverse":
        # A refund takes points back (negative); a cancelled redemption gives them back (positive).
        if points < 0:
            counts["points_reversed"] = -points
        else:
            counts["points_redeemed"] = -points
    return counts


def contribution(event_name: str, new: Mapping[str, Any],
                 old: Mapping[str, Any] | None = None) -> Contribution | None:
    """What a table change adds to the day's counters; None when it adds nothing (updates of
    mutable items, removals other than an account's, kinds that are not counted). A removed
    account (an erased member) leaves its tier on the day it is removed: no moment (now)."""
    if event_name == "REMOVE" and old is not None and old.get("kind") == "account" and old.get("tier"):
        return Contribution({}, tiers={str(old["tier"]): -1}, what="gone")
    if event_name != "INSERT":
        return None
    kind = str(new.get("kind") or "")
    if kind == "account":
        if not new.get("tier") or not new.get("updated_at"):
            return None
        return Contribution({}, moment=str(new["updated_at"]), tiers={str(new["tier"]): 1})
    if kind == "tier_change":
        moves = {str(new["from_tier"]): -1}
        moves[str(new["to_tier"])] = moves.get(str(new["to_tier"]), 0) + 1
        return Contribution({}, moment=str(new["created_at"]), tiers={t: n for t, n in moves.items() if n})
    member_id = str(new.get("member_id") or "") or None
    if kind == "profile":
        return Contribution({"new_members": 1}, moment=str(new["enrolled_at"]))
    if kind in ("ledger", "order"):
        points = int(new.get("points") or 0)
        counts = _points_counts(str(new.get("type") or ""), points)
        active = None
        sk = str(new.get("sk") or "")
        if kind == "order":
            counts["orders"] = 1
            counts["gross_sales_fen"] = int(new.get("amount_fen") or 0)
            active = member_id
        elif sk.startswith("REFUND#"):
            counts["refunds"] = 1
            counts["refunds_fen"] = int(_detail(new).get("amount_fen") or 0)
        elif sk.startswith("OP#checkin#"):
            counts["checkins"] = 1
            active = member_id
        return Contribution(counts, moment=str(new["created_at"]), active_member=active)
    if kind == "coupon_event":
        event = str(new.get("event") or "")
        field = {"issued": "coupons_issued", "used": "coupons_used", "expired": "coupons_expired"}.get(event)
        if event == "voided":
            return Contribution({"coupons_used": -1}, moment=str(new["created_at"]))
        return Contribution({field: 1}, moment=str(new["created_at"])) if field else None
    if kind == "sv_entry":
        counts = {"sv_principal_fen": int(new.get("owed_principal_fen") or 0),
                  "sv_bonus_fen": int(new.get("owed_bonus_fen") or 0)}
        if not any(counts.values()):
            return None
        return Contribution(counts, day=str(new["day"]))
    return None


def add(into: dict[str, int], counts: Mapping[str, Any]) -> dict[str, int]:
    for name in COUNTERS:
        into[name] = into.get(name, 0) + int(counts.get(name) or 0)
    return into


def rate_bp(numerator: int, denominator: int) -> int | None:
    """numerator / denominator in basis points, rounded half up; None without a denominator."""
    if denominator <= 0:
        return None
    return (numerator * 20000 + denominator) // (2 * denominator)


def liability_fen(points: int, points_per_yuan: int) -> int:
    """What outstanding points are worth in fen (points_per_yuan points make 100 fen), rounded down."""
    return max(points, 0) * 100 // points_per_yuan


TIER_PREFIX = "tier:"  # a closed day's counts also hold "tier:<code>": members into/out of the tier that day


def report_row(day: str, counts: Mapping[str, int], outstanding: int, sv_principal: int, sv_bonus: int,
               points_per_yuan: int, tiers: Mapping[str, int] | None = None,
               repurchase_rate_bp: int | None = None) -> dict[str, Any]:
    """One day of `GET /v1/admin/reports/daily`: the contract's fields first, then ours.
    `tiers`: members per tier at the day's close (the program's tiers, in ladder order)."""
    c = {name: int(counts.get(name) or 0) for name in COUNTERS}
    return {
        "date": day,
        "new_members": c["new_members"],
        "active_members": c["active_members"],
        "orders": c["orders"],
        "sales_fen": c["gross_sales_fen"] - c["refunds_fen"],
        "points_issued": c["points_issued"],
        "points_redeemed": c["points_redeemed"],
        "points_expired": c["points_expired"],
        "points_outstanding": outstanding,
        "points_liability_fen": liability_fen(outstanding, points_per_yuan),
        "stored_value_liability_fen": sv_principal + sv_bonus,
        "coupons_issued": c["coupons_issued"],
        "coupons_used": c["coupons_used"],
        # beyond the contract
        "gross_sales_fen": c["gross_sales_fen"],
        "refunds_fen": c["refunds_fen"],
        "refunds": c["refunds"],
        "checkins": c["checkins"],
        "points_reversed": c["points_reversed"],
        "points_deducted": c["points_deducted"],
        "coupons_expired": c["coupons_expired"],
        "stored_value_principal_fen": sv_principal,
        "stored_value_bonus_fen": sv_bonus,
        "redemption_rate_bp": rate_bp(c["points_redeemed"], c["points_issued"]),
        "breakage_bp": rate_bp(c["points_expired"], c["points_issued"]),
        # insight, second pass
        "tier_distribution": dict(tiers or {}),
        "repurchase_rate_bp": repurchase_rate_bp,
    }


# --- period comparisons ------------------------------------------------------------------------

def compare(current: int, previous: int) -> dict[str, Any]:
    """Current against previous without lying: from 0 to something is "new" (no percentage),
    from something to 0 is "gone" (-100 %), 0 to 0 is "none"; otherwise the change in basis
    points, truncated toward zero."""
    if previous == 0:
        trend = "none" if current == 0 else "new"
        return {"current": current, "previous": previous, "change_bp": None, "trend": trend}
    delta = current - previous
    magnitude = abs(delta) * 10000 // abs(previous)
    change = magnitude if delta >= 0 else -magnitude
    trend = "flat" if delta == 0 else ("up" if delta > 0 else "down")
    if current == 0:
        trend = "gone"
    return {"current": current, "previous": previous, "change_bp": change, "trend": trend}


# Figures a period sums (the rest are states at the period's end).
PERIOD_SUMS = ("new_members", "orders", "sales_fen", "gross_sales_fen", "refunds_fen", "points_issued",
               "points_redeemed", "points_expired", "points_reversed", "coupons_issued", "coupons_used", "checkins")
PERIOD_ENDS = ("points_outstanding", "points_liability_fen", "stored_value_liability_fen")


def period_totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    totals = {name: sum(int(row[name]) for row in rows) for name in PERIOD_SUMS}
    for name in PERIOD_ENDS:
        totals[name] = int(rows[-1][name]) if rows else 0
    return totals


def compare_periods(current: list[dict[str, Any]], previous: list[dict[str, Any]]) -> dict[str, Any]:
    now, before = period_totals(current), period_totals(previous)
    return {name: compare(now[name], before[name]) for name in (*PERIOD_SUMS, *PERIOD_ENDS)}
