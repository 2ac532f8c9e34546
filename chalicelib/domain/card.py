"""The member card as the contract shows it, built from plain values. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import lots as lots_rules
from chalicelib.domain import tiers as tier_rules
from chalicelib.domain.program import ProgramConfig


@dataclass(frozen=True)
class CardFacts:
    member_id: str
    nickname: str | None
    birthday: str | None
    tier_code: str
    growth: int
    held: int
    debt: int
    stored_value_fen: int
    invite_code: str
    invited_count: int
    phone_masked: str | None
    enrolled_at: str
    lots: list[lots_rules.Lot] = field(default_factory=list)


def build_card(config: ProgramConfig, facts: CardFacts, today: dt.date) -> dict[str, Any]:
    tier = config.tier(facts.tier_code)
    following = tier_rules.next_tier(config, tier, facts.growth)
    live = lots_rules.live(facts.lots, today)
    # Expired lots never count, even before the expiry job has run; debt is shown, not hidden.
    available = sum(lot.remaining for lot in live) - facts.debt
    return {
        "member_id": facts.member_id,
        "nickname": facts.nickname,
        "birthday": facts.birthday,
        "tier": {"code": tier.code, "name": tier.name, "level": tier.level},
        "growth": facts.growth,
        "next_tier": {"code": following.code, "growth_needed": following.growth_needed} if following else None,
        "points": {
            "available": available,
            "held": facts.held,
            "debt": facts.debt,
            "expiring": [{"date": lot.expires_on.isoformat(), "points": lot.remaining} for lot in live],
        },
        "stored_value_fen": facts.stored_value_fen,
        "invite_code": facts.invite_code,
        "invited_count": facts.invited_count,
        "phone": facts.phone_masked,
        "benefits": [{"code": b.code, "description": b.description} for b in tier.benefits],
        "discount_pct": tier.discount_pct,
        "enrolled_at": facts.enrolled_at,
    }
