"""Referral (邀请有礼) rules: what inviter and invitee get, when, and the limits. Pure.

- Rewards (points and/or a coupon) for both sides, paid once per invitee, when the invitee
  enrols or when the invitee's first paid order arrives (`trigger`).
- Caps per inviter: at most `daily_cap` rewarded invitees per program day and `monthly_cap` per
  calendar month; an invitee over a cap is recorded as `capped` and pays nothing to the inviter.
- No reward at all when the invitee is the inviter under another account: the same unionid, or
  the same phone (bound by either, or tried by one while the other holds it).
- The invitee's triggering order refunded in full within `reverse_within_days` days of the
  reward: both rewards are reversed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class ReferralReward(_Strict):
    points: int = Field(default=0, ge=0, le=1_000_000)
    coupon_template: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")

    @property
    def empty(self) -> bool:
        return self.points == 0 and self.coupon_template is None


class ReferralRules(_Strict):
    inviter: ReferralReward = Field(default_factory=ReferralReward)
    invitee: ReferralReward = Field(default_factory=ReferralReward)
    trigger: Literal["enrolment", "first_paid_order"] = "first_paid_order"
    daily_cap: int | None = Field(default=None, ge=1, le=100_000)
    monthly_cap: int | None = Field(default=None, ge=1, le=1_000_000)
    reverse_within_days: int = Field(default=7, ge=0, le=366)

    @property
    def enabled(self) -> bool:
        return not (self.inviter.empty and self.invitee.empty)


@dataclass(frozen=True)
class Person:
    member_id: str
    unionid: str | None
    phone_hashes: frozenset[str]  # bound, or seen tried (risk sightings)


def refusal(inviter: Person, invitee: Person) -> str | None:
    """Why this referral pays nothing (None: it may pay)."""
    if inviter.member_id == invitee.member_id:
        return "self"
    if inviter.unionid and inviter.unionid == invitee.unionid:
        return "same_unionid"
    if inviter.phone_hashes & invitee.phone_hashes:
        return "same_phone"
    return None


def reversible(rewarded_at: dt.datetime, refunded_at: dt.datetime, days: int) -> bool:
    """A full refund this soon after the reward takes it back."""
    return refunded_at - rewarded_at <= dt.timedelta(days=days)
