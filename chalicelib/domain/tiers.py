"""Tier arithmetic: growth in the window, upgrades, and the periodic review (保级). Pure.

Growth counts over the last `growth_window_months` calendar months, this month included (or
over the member's lifetime). Upgrades happen as soon as growth reaches a higher tier's threshold;
downgrades only at a review: a member keeps the tier if window growth meets its retention
growth, else (after an optional grace period) drops one tier or to what growth supports, never
below a staff grant that is still in force.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chalicelib.domain.program import ProgramConfig, Tier


@dataclass(frozen=True)
class NextTier:
    code: str
    growth_needed: int


@dataclass(frozen=True)
class ReviewOutcome:
    action: str  # keep | grace | drop
    tier: Tier
    grace_until: dt.date | None
    reason: str


def window_months(as_of: dt.date, window: int) -> list[str]:
    """The `window` calendar months ending with as_of's month, oldest first."""
    index = as_of.year * 12 + as_of.month - 1
    return [f"{(i // 12):04d}-{(i % 12) + 1:02d}" for i in range(index - window + 1, index + 1)]


def growth_in_window(config: ProgramConfig, growth_months: dict[str, int], lifetime: int, as_of: dt.date) -> int:
    window = config.tier_policy.growth_window_months
    if window is None:
        return lifetime
    return sum(int(growth_months.get(month, 0)) for month in window_months(as_of, window))


def tier_for_growth(config: ProgramConfig, growth: int) -> Tier:
    reached = config.base_tier
    for tier in config.tiers:  # ordered by level
        if growth >= tier.threshold:
            reached = tier
    return reached


def upgrade_to(config: ProgramConfig, current: Tier, growth: int) -> Tier | None:
    """The tier growth lifts the member to, if higher than the current one."""
    target = tier_for_growth(config, growth)
    return target if target.level > current.level else None


def next_tier(config: ProgramConfig, current: Tier, growth: int) -> NextTier | None:
    for tier in config.tiers:
        if tier.level > current.level:
            return NextTier(tier.code, max(0, tier.threshold - growth))
    return None


def review(config: ProgramConfig, current: Tier, growth: int, as_of: dt.date, *,
           floor: Tier | None = None, floor_until: dt.date | None = None,
           grace_until: dt.date | None = None) -> ReviewOutcome:
    policy = config.tier_policy
    if current.level == config.base_tier.level:
        return ReviewOutcome("keep", current, None, "base tier")
    if growth >= current.retention_growth:
        return ReviewOutcome("keep", current, None, f"growth {growth} meets retention {current.retention_growth}")
    floor_in_force = floor if floor is not None and floor_until is not None and floor_until >= as_of else None
    if floor_in_force is not None and floor_in_force.level >= current.level:
        return ReviewOutcome("keep", current, grace_until, f"granted until {floor_until}")
    if policy.grace_days:
        if grace_until is None:
            until = as_of + dt.timedelta(days=policy.grace_days)
            return ReviewOutcome("grace", current, until, f"growth {growth} short of {current.retention_growth}")
        if as_of < grace_until:
            return ReviewOutcome("keep", current, grace_until, "in grace")
    lower = [t for t in config.tiers if t.level < current.level]
    if policy.downgrade == "one_tier":
        target = lower[-1]
    else:
        target = tier_for_growth(config, growth)
        target = target if target.level < current.level else lower[-1]
    if floor_in_force is not None and floor_in_force.level > target.level:
        target = floor_in_force
    return ReviewOutcome("drop", target, None, f"growth {growth} short of retention {current.retention_growth}")


def is_review_day(config: ProgramConfig, day: dt.date) -> bool:
    policy = config.tier_policy
    return day.day == policy.review_day and (day.month - 1) % policy.review_every_months == 0
