"""Points and growth for a paid order. Pure.

Points: whole yuan x rate x tier multiplier x the best active campaign multiplier (multipliers do
not stack across campaigns), rounded down, plus every active 满额送积分 bonus the order reaches.
Growth: whole yuan x growth rate; tiers and campaigns do not touch growth.
A running paid membership adds its multiplier's extra to the tier's (domain/membership.py):
金卡 x1.5 with SVIP x2 earns x2.5, then the campaign multiplier applies as before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chalicelib.domain.membership import points_multiplier_pct
from chalicelib.domain.program import ProgramConfig, Tier


@dataclass(frozen=True)
class Award:
    points: int
    growth: int
    base_points: int
    tier_multiplier_pct: int
    campaign_multiplier_pct: int
    bonus_points: int
    campaigns: tuple[str, ...]
    # The paid membership's multiplier that applied (100: none running).
    membership_multiplier_pct: int = 100


def award_for_order(config: ProgramConfig, tier: Tier, amount_fen: int, paid_on: dt.date,
                    membership_multiplier_pct: int | None = None) -> Award:
    """`membership_multiplier_pct`: the paid membership's multiplier while one runs, else None."""
    yuan = amount_fen // 100
    active = [c for c in config.earning.campaigns if c.active_on(paid_on)]
    campaign_pct = max((c.multiplier_pct for c in active), default=100)
    base = yuan * config.earning.points_per_yuan
    member_pct = points_multiplier_pct(tier.points_multiplier_pct, membership_multiplier_pct)
    multiplied = base * member_pct * campaign_pct // 10_000
    bonuses = [c for c in active if c.bonus_threshold_fen is not None and amount_fen >= c.bonus_threshold_fen]
    bonus = sum(c.bonus_points for c in bonuses)
    return Award(
        points=multiplied + bonus,
        growth=yuan * config.earning.growth_per_yuan,
        base_points=base,
        tier_multiplier_pct=tier.points_multiplier_pct,
        campaign_multiplier_pct=campaign_pct,
        bonus_points=bonus,
        # The campaigns that changed the award: the one whose multiplier applied, and each bonus.
        campaigns=tuple(c.code for c in active
                        if (c.multiplier_pct > 100 and c.multiplier_pct == campaign_pct) or c in bonuses),
        membership_multiplier_pct=membership_multiplier_pct or 100,
    )
