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
    growth: int  # in the program's window (or lifetime)
    growth_lifetime: int
    held: int
    debt: int
    stored_value_fen: int
    invite_code: str
    invited_count: int
    phone_masked: str | None
    enrolled_at: str
    lots: list[lots_rules.Lot] = field(default_factory=list)
    tier_since: str | None = None
    checkin_last: dt.date | None = None
    checkin_streak: int = 0
    coupons_unused: int = 0
    pending: int = 0
    # A running paid membership (issue 14): {"plan_id", "until", "points_multiplier_pct", "discount_pct"}.
    membership: dict[str, Any] | None = None


def build_card(config: ProgramConfig, facts: CardFacts, today: dt.date) -> dict[str, Any]:
    tier = config.tier(facts.tier_code)
    following = tier_rules.next_tier(config, tier, facts.growth)
    live = lots_rules.live(facts.lots, today)
    # Expired lots never count, even before the expiry job has run; debt is shown, not hidden.
    available = sum(lot.remaining for lot in live) - facts.debt
    checked_today = facts.checkin_last == today
    # A streak survives until the end of the day after the last check-in.
    streak = facts.checkin_streak if facts.checkin_last and facts.checkin_last >= today - dt.timedelta(days=1) else 0
    retention = None
    if tier.level > config.base_tier.level:
        retention = {"growth_needed": max(0, tier.retention_growth - facts.growth)}
    return {
        "member_id": facts.member_id,
        "nickname": facts.nickname,
        "birthday": facts.birthday,
        "tier": {"code": tier.code, "name": tier.name, "level": tier.level, "since": facts.tier_since},
        "growth": facts.growth,
        "growth_lifetime": facts.growth_lifetime,
        "retention": retention,
        "next_tier": {"code": following.code, "growth_needed": following.growth_needed} if following else None,
        "points": {
            "available": available,
            "held": facts.held,
            "debt": facts.debt,
            "pending": facts.pending,
            "expiring": [{"date": lot.expires_on.isoformat(), "points": lot.remaining} for lot in live],
        },
        "stored_value_fen": facts.stored_value_fen,
        "invite_code": facts.invite_code,
        "invited_count": facts.invited_count,
        "phone": facts.phone_masked,
        "benefits": [{"code": b.code, "description": b.description} for b in tier.benefits],
        # The member price: the better of the tier's and a running membership's, never both.
        "discount_pct": min(tier.discount_pct, facts.membership["discount_pct"]) if facts.membership
        else tier.discount_pct,
        "free_shipping_threshold_fen": tier.free_shipping_threshold_fen,
        "checkin": {"last_date": facts.checkin_last.isoformat() if facts.checkin_last else None,
                    "streak": streak, "checked_in_today": checked_today},
        "enrolled_at": facts.enrolled_at,
        "coupons_unused": facts.coupons_unused,
        "membership": facts.membership,
    }
