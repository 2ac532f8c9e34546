"""Risk controls (防刷单) as rules over plain values. Pure.

Per-member counters live on the member's account item (one small JSON attribute), so enforcing
the member rules costs the accrual no extra request and no extra item:

- points earned (spendable) this program day and this calendar month, for the caps;
- order and refund amounts in 5-day buckets, the last 6 kept, for the refund ratio "over 30
  days" (the window is the current bucket and the 5 before it: 26 to 30 days).

A till's caps are counted per (till key, UTC hour) on one item: an attribute per minute (orders)
and the hour's total amount, each raised under a condition in the accrual's own transaction, so
a cap of 60 is exact under any concurrency and a refused order writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.domain.program import RiskRules

BUCKET_DAYS = 5
WINDOW_BUCKETS = 6  # 6 x 5 days: the refund ratio's 30-day window

REVIEW, REFUND_RATIO, DAILY_CAP, MONTHLY_CAP = "review", "refund_ratio", "daily_cap", "monthly_cap"
REASONS = {
    REVIEW: "order at or above the review threshold",
    REFUND_RATIO: "refund ratio over 30 days above the limit",
    DAILY_CAP: "over the daily points cap",
    MONTHLY_CAP: "over the monthly points cap",
}


@dataclass(frozen=True)
class Counters:
    day: str | None = None  # the program day `day_points` counts
    day_points: int = 0
    month: str | None = None  # "YYYY-MM"
    month_points: int = 0
    # bucket number (day ordinal // BUCKET_DAYS) -> (ordered fen, refunded fen)
    window: dict[int, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> Counters:
        raw = raw or {}
        return cls(day=raw.get("d"), day_points=int(raw.get("dp", 0)), month=raw.get("m"),
                   month_points=int(raw.get("mp", 0)),
                   window={int(k): (int(v[0]), int(v[1])) for k, v in (raw.get("w") or {}).items()})

    def to_json(self) -> dict[str, Any]:
        """Short names: this rides on the account item, which every balance change rewrites."""
        return {"d": self.day, "dp": self.day_points, "m": self.month, "mp": self.month_points,
                "w": {str(k): [o, r] for k, (o, r) in sorted(self.window.items())}}


def bucket_of(day: dt.date) -> int:
    return day.toordinal() // BUCKET_DAYS


def _rolled(counters: Counters, today: dt.date) -> Counters:
    """Counters as of `today`: a new day or month starts at 0; buckets out of the window go."""
    day, month = today.isoformat(), today.strftime("%Y-%m")
    oldest = bucket_of(today) - WINDOW_BUCKETS + 1
    return Counters(
        day=day, day_points=counters.day_points if counters.day == day else 0,
        month=month, month_points=counters.month_points if counters.month == month else 0,
        window={b: v for b, v in counters.window.items() if b >= oldest},
    )


def window_totals(counters: Counters, today: dt.date) -> tuple[int, int]:
    """(ordered fen, refunded fen) over the refund-ratio window ending today."""
    rolled = _rolled(counters, today)
    return sum(o for o, _ in rolled.window.values()), sum(r for _, r in rolled.window.values())


def refund_ratio_exceeded(rules: RiskRules, counters: Counters, today: dt.date) -> bool:
    if rules.refund_ratio_pct is None:
        return False
    ordered, refunded = window_totals(counters, today)
    if ordered < rules.refund_ratio_min_ordered_fen or refunded == 0:
        return False
    return refunded * 100 > rules.refund_ratio_pct * ordered


@dataclass(frozen=True)
class Assessment:
    """How an order's points split: spendable now, or pending (and why)."""

    available: int
    pending: int
    reason: str | None  # one of REASONS when pending > 0
    counters: Counters  # the account's counters after this order
    auto_release_on: dt.date | None = None


def assess_order(rules: RiskRules, counters: Counters, points: int, amount_fen: int, today: dt.date) -> Assessment:
    """Split an order's points. A review-sized order or a member over the refund ratio pends all
    of it; otherwise the caps let through what fits today and this month and pend the rest."""
    if points < 0 or amount_fen < 0:
        raise ValueError("points and amount are not negative")
    rolled = _rolled(counters, today)
    bucket = bucket_of(today)
    ordered, refunded = rolled.window.get(bucket, (0, 0))
    window = {**rolled.window, bucket: (ordered + amount_fen, refunded)}
    reason: str | None = None
    auto_release_on = None
    if rules.review_threshold_fen is not None and amount_fen >= rules.review_threshold_fen:
        available, reason = 0, REVIEW
        if rules.review_auto_release_days is not None:
            auto_release_on = today + dt.timedelta(days=rules.review_auto_release_days)
    elif refund_ratio_exceeded(rules, rolled, today):
        available, reason = 0, REFUND_RATIO
    else:
        room_day = points if rules.daily_points_cap is None else max(0, rules.daily_points_cap - rolled.day_points)
        room_month = points if rules.monthly_points_cap is None else max(
            0, rules.monthly_points_cap - rolled.month_points)
        available = min(points, room_day, room_month)
        if available < points:
            reason = DAILY_CAP if room_day <= room_month else MONTHLY_CAP
    pending = points - available if points else 0
    after = replace(rolled, day_points=rolled.day_points + available, month_points=rolled.month_points + available,
                    window=window)
    return Assessment(available, pending, reason if pending else None, after,
                      auto_release_on if pending else None)


def record_refund(counters: Counters, refund_fen: int, today: dt.date) -> Counters:
    """A refund counts on the day it is made (the ratio looks at refunding behaviour)."""
    if refund_fen < 0:
        raise ValueError("a refund is not negative")
    rolled = _rolled(counters, today)
    bucket = bucket_of(today)
    ordered, refunded = rolled.window.get(bucket, (0, 0))
    return replace(rolled, window={**rolled.window, bucket: (ordered, refunded + refund_fen)})


@dataclass(frozen=True)
class TillWindow:
    """Where a till's order counts for `moment`: the hour's item and the minute's attribute."""

    hour: str  # "YYYY-MM-DDTHH" (UTC)
    minute: str  # "m00".."m59"
    expires_at: int  # unix seconds after which the item is of no use (TTL)


def till_window(moment: dt.datetime) -> TillWindow:
    utc = moment.astimezone(dt.timezone.utc)
    hour_start = utc.replace(minute=0, second=0, microsecond=0)
    return TillWindow(hour=hour_start.strftime("%Y-%m-%dT%H"), minute=f"m{utc.minute:02d}",
                      expires_at=int(hour_start.timestamp()) + 2 * 3600)


def shared_flag_due(threshold: int | None, members_seen: int) -> bool:
    """Many members behind one phone or device: flag from the threshold on."""
    return threshold is not None and members_seen >= threshold
