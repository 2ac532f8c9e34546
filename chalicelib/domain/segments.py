"""Segment rules over what is known of a member; every rule given must hold (AND), a rule left
out does not filter. Pure: the facts come from the member's items."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class SegmentRules(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    tiers: list[str] | None = Field(default=None, max_length=20, description="Any of these tier codes.")
    tags_any: list[str] | None = Field(default=None, max_length=20,
                                       description="At least one of these tags (manual or computed).")
    rfm_segments: list[str] | None = Field(default=None, max_length=20, description="Any of these RFM segments.")
    points_min: int | None = Field(default=None, ge=0)
    points_max: int | None = Field(default=None, ge=0)
    inactive_days_min: int | None = Field(default=None, ge=0, le=3650,
                                          description="No member-initiated points change for at least this many days.")
    birthday_month: int | None = Field(default=None, ge=1, le=12)
    paid_member: bool | None = Field(default=None, description="Paid membership running on the day (or not).")


@dataclass(frozen=True)
class MemberFacts:
    member_id: str
    tier: str
    points: int
    last_active_on: str | None
    birthday: str | None
    tags: frozenset[str]
    rfm_segment: str | None
    membership_until: str | None  # ISO date-time of the paid membership's end (absent: none)


def matches(rules: SegmentRules, facts: MemberFacts, today: dt.date) -> bool:
    if rules.tiers is not None and facts.tier not in rules.tiers:
        return False
    if rules.tags_any is not None and not facts.tags & set(rules.tags_any):
        return False
    if rules.rfm_segments is not None and facts.rfm_segment not in rules.rfm_segments:
        return False
    if rules.points_min is not None and facts.points < rules.points_min:
        return False
    if rules.points_max is not None and facts.points > rules.points_max:
        return False
    if rules.inactive_days_min is not None and facts.last_active_on is not None:
        if (today - dt.date.fromisoformat(facts.last_active_on[:10])).days < rules.inactive_days_min:
            return False
    if rules.birthday_month is not None and (not facts.birthday or int(facts.birthday[5:7]) != rules.birthday_month):
        return False
    if rules.paid_member is not None:
        paying = bool(facts.membership_until) and str(facts.membership_until)[:10] >= today.isoformat()
        if paying != rules.paid_member:
            return False
    return True
