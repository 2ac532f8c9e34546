"""Daily check-in: streaks and the cycle reward table. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chalicelib.domain.program import CheckinPolicy


@dataclass(frozen=True)
class CheckinReward:
    streak: int
    day_of_cycle: int
    points: int
    growth: int
    bonus_points: int


def next_streak(last_day: dt.date | None, last_streak: int, today: dt.date) -> int:
    """Consecutive days, today included; a missed day starts again at 1."""
    if last_day is not None and last_day == today - dt.timedelta(days=1):
        return last_streak + 1
    return 1


def reward(policy: CheckinPolicy, streak: int) -> CheckinReward:
    day = (streak - 1) % policy.cycle_days + 1
    bonus = policy.bonuses.get(day, 0)
    return CheckinReward(streak, day, policy.points + bonus, policy.growth, bonus)
