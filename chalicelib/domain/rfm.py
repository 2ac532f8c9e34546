"""RFM: recency, frequency and monetary scores 1-5 of a program's members, and named segments.

Each member with an order in the window has raw figures: days since the last order that was not
refunded in full, the number of such orders, and what they paid net of refunds (fen). A dimension
is scored by quintiles when the data allows (at least 5 members and no single value held by more
than half of them); otherwise, typically frequency when most members ordered once, by the
program's fixed thresholds. Ties always share a score. Integers only.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field


class RfmRules(BaseModel):
    """A program's RFM settings (`insight.rfm` in its rules)."""

    model_config = ConfigDict(extra="forbid")
    window_months: int = Field(default=12, ge=1, le=36)
    # Fixed thresholds (4, ascending) for a dimension whose values quintiles cannot split:
    # recency: at most 30 days = 5, 90 = 4, 180 = 3, 365 = 2, more = 1;
    # frequency / monetary: at least t1 = 2, t2 = 3, t3 = 4, t4 = 5, below t1 = 1.
    recency_days: list[int] = Field(default_factory=lambda: [30, 90, 180, 365], min_length=4, max_length=4)
    frequency: list[int] = Field(default_factory=lambda: [2, 3, 5, 8], min_length=4, max_length=4)
    monetary_fen: list[int] = Field(default_factory=lambda: [10_000, 30_000, 100_000, 300_000], min_length=4,
                                    max_length=4)
    # Named segments, first match wins: per dimension the scores allowed ("45" = 4 or 5).
    segments: dict[str, list[str]] = Field(default_factory=lambda: {
        "重要价值": ["5", "5", "5"],
        "重要保持": ["12", "45", "45"],
        "流失预警": ["1", "12345", "45"],
        "沉睡": ["1", "1", "1"],
    })


@dataclass(frozen=True)
class Raw:
    member_id: str
    recency_days: int
    frequency: int
    monetary_fen: int


@dataclass(frozen=True)
class Score:
    member_id: str
    r: int
    f: int
    m: int
    segment: str | None
    raw: Raw

    @property
    def code(self) -> str:
        return f"{self.r}{self.f}{self.m}"


def quintiles_apply(values: list[int]) -> bool:
    if len(values) < 5:
        return False
    most = Counter(values).most_common(1)[0][1]
    return most * 2 <= len(values)


def quintile(value: int, ordered: list[int], higher_is_better: bool) -> int:
    """1 + 5 x (share of members strictly worse), so ties share a score."""
    n = len(ordered)
    worse = bisect.bisect_left(ordered, value) if higher_is_better else n - bisect.bisect_right(ordered, value)
    return 1 + worse * 5 // n


def by_threshold(value: int, thresholds: list[int], higher_is_better: bool) -> int:
    if higher_is_better:
        return 1 + sum(1 for t in thresholds if value >= t)
    return 5 - sum(1 for t in thresholds if value > t)


def _scorer(values: list[int], thresholds: list[int], higher_is_better: bool) -> tuple[str, list[int]]:
    if quintiles_apply(values):
        ordered = sorted(values)
        return "quintiles", [quintile(v, ordered, higher_is_better) for v in values]
    return "thresholds", [by_threshold(v, thresholds, higher_is_better) for v in values]


def segment_of(r: int, f: int, m: int, segments: dict[str, list[str]]) -> str | None:
    for name, allowed in segments.items():
        if str(r) in allowed[0] and str(f) in allowed[1] and str(m) in allowed[2]:
            return name
    return None


def score(raws: Iterable[Raw], rules: RfmRules) -> tuple[list[Score], dict[str, str]]:
    """Scores of every member, and how each dimension was scored (quintiles | thresholds)."""
    members = list(raws)
    how_r, rs = _scorer([x.recency_days for x in members], rules.recency_days, higher_is_better=False)
    how_f, fs = _scorer([x.frequency for x in members], rules.frequency, higher_is_better=True)
    how_m, ms = _scorer([x.monetary_fen for x in members], rules.monetary_fen, higher_is_better=True)
    scores = [Score(x.member_id, r, f, m, segment_of(r, f, m, rules.segments), x)
              for x, r, f, m in zip(members, rs, fs, ms)]
    return scores, {"r": how_r, "f": how_f, "m": how_m}


@dataclass(frozen=True)
class OrderFact:
    """One order in the window: its day (program calendar), amount and what was refunded of it."""

    order_id: str
    day_ordinal: int
    amount_fen: int
    refunded_fen: int


def raw_of(member_id: str, orders: Iterable[OrderFact], as_of_ordinal: int) -> Raw | None:
    """A member's raw figures net of refunds; None without an order that still counts."""
    kept = [o for o in orders if o.amount_fen - o.refunded_fen > 0]
    if not kept:
        return None
    last = max(o.day_ordinal for o in kept)
    return Raw(member_id, as_of_ordinal - last, len(kept), sum(o.amount_fen - o.refunded_fen for o in kept))
