"""Tier arithmetic: which tier growth reaches, what the next tier needs. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.program import ProgramConfig, Tier


@dataclass(frozen=True)
class NextTier:
    code: str
    growth_needed: int


def tier_for_growth(config: ProgramConfig, growth: int) -> Tier:
    reached = config.base_tier
    for tier in config.tiers:  # ordered by level
        if growth >= tier.threshold:
            reached = tier
    return reached


def next_tier(config: ProgramConfig, current: Tier, growth: int) -> NextTier | None:
    for tier in config.tiers:
        if tier.level > current.level:
            return NextTier(tier.code, max(0, tier.threshold - growth))
    return None
