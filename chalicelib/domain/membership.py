"""Paid membership (付费会员): plans, how entitlements stack, benefits, refunds. Pure.

A membership is a list of entitlement rows (start, end, source). A new entitlement starts at
max(now, the current end): a renewal bought before the end stacks after it (no day lost), one
bought after a lapse starts now. The member's current end is kept on the account next to it.

Benefits while a membership runs:
- points: the membership's multiplier ADDS its extra to the tier's (金卡 x1.5 and SVIP x2 make
  x2.5, not x3); the campaign multiplier then applies on top as before (domain/earning.py);
- the member price: the better (lower) of the tier's and the membership's discount, never both;
- a coupon pack each 30 days of membership (the first when it starts).
Refunds: the unused whole days are paid back pro rata (rounded down to the fen), less the benefits
already granted: each coupon pack issued so far at its face value, used or not (the coupons are not
revoked; services/membership_refunds.py computes the deduction).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PACK_EVERY_DAYS = 30
_ID = r"^[A-Za-z0-9._-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class MembershipPlan(_Strict):
    plan_id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=64)
    days: int = Field(ge=1, le=3660)
    price_fen: int = Field(ge=0, le=10_000_000)
    # A free trial: once per person (unionid/openid and phone), never paid for.
    trial: bool = False

    @model_validator(mode="after")
    def _price(self) -> MembershipPlan:
        if self.trial != (self.price_fen == 0):
            raise ValueError("a trial is free and only a trial is free")
        return self


class MembershipPolicy(_Strict):
    plans: list[MembershipPlan] = Field(default_factory=list, max_length=20)
    # Integer percent like a tier's (200 = x2); its extra adds to the tier's multiplier.
    points_multiplier_pct: int = Field(default=100, ge=100, le=1000)
    # The member price: 90 = 九折 while the membership runs; the card shows the better of this and the tier's.
    discount_pct: int = Field(default=100, ge=1, le=100)
    # Coupon templates issued every 30 days of membership (the first when it starts).
    monthly_coupons: list[str] = Field(default_factory=list, max_length=10)
    # Subscribe-message reminder this many days before the membership ends.
    reminder_days: int = Field(default=3, ge=1, le=30)

    @field_validator("plans")
    @classmethod
    def _unique(cls, plans: list[MembershipPlan]) -> list[MembershipPlan]:
        if len({p.plan_id for p in plans}) != len(plans):
            raise ValueError("membership plan ids must be unique")
        return plans

    def plan(self, plan_id: str) -> MembershipPlan | None:
        return next((p for p in self.plans if p.plan_id == plan_id), None)


@dataclass(frozen=True)
class Entitlement:
    starts_at: dt.datetime
    ends_at: dt.datetime


def next_entitlement(current_end: dt.datetime | None, now: dt.datetime, days: int) -> Entitlement:
    """A new entitlement of `days`: from the current end if it is still ahead, else from now."""
    start = current_end if current_end is not None and current_end > now else now
    return Entitlement(start, start + dt.timedelta(days=days))


def is_active(until: dt.datetime | None, now: dt.datetime) -> bool:
    return until is not None and until > now


def card_view(policy: MembershipPolicy, plan_id: str | None, until: str | None,
              now: dt.datetime) -> dict[str, Any] | None:
    """The card's `membership`: null unless one runs now."""
    if not until or not is_active(dt.datetime.fromisoformat(until), now):
        return None
    return {"plan_id": plan_id, "until": until, "points_multiplier_pct": policy.points_multiplier_pct,
            "discount_pct": policy.discount_pct}


def multiplier_while(policy: MembershipPolicy, until: dt.datetime | None, at: dt.datetime) -> int | None:
    """The membership's points multiplier for an order paid `at` (None: no membership then)."""
    return policy.points_multiplier_pct if is_active(until, at) else None


def points_multiplier_pct(tier_pct: int, membership_pct: int | None) -> int:
    """The tier's multiplier plus the membership's extra (None: no membership running)."""
    return tier_pct + max(0, (membership_pct or 100) - 100)


def member_discount_pct(tier_pct: int, membership_pct: int | None) -> int:
    """The better of the two discounts (lower percent), never both stacked."""
    return min(tier_pct, membership_pct) if membership_pct is not None else tier_pct


def packs_due(starts_at: dt.datetime, ends_at: dt.datetime) -> list[int]:
    """Day offsets of the coupon packs of one entitlement: 0, 30, 60... while it runs."""
    days = (ends_at - starts_at).days
    return list(range(0, max(days, 1), PACK_EVERY_DAYS))


def packs_granted(starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime) -> int:
    """Packs of an entitlement issued by `now` (what a refund deducts): one at its start, one each 30 days."""
    return sum(1 for offset in packs_due(starts_at, ends_at) if starts_at + dt.timedelta(days=offset) <= now)


@dataclass(frozen=True)
class RefundPlan:
    unused_days: int
    refund_fen: int


def refund_for(price_fen: int, starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime,
               deducted_fen: int = 0) -> RefundPlan:
    """Pro rata for the unused WHOLE days (a started day is used), less what used benefits were
    worth; never negative, never more than paid."""
    total_days = max(1, (ends_at - starts_at).days)
    from_ = max(now, starts_at)
    unused = max(0, (ends_at - from_) // dt.timedelta(days=1))
    refund = price_fen * min(unused, total_days) // total_days
    return RefundPlan(unused, max(0, min(price_fen, refund - max(0, deducted_fen))))
