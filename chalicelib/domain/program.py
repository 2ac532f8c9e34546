"""A program's rules as data: earning, campaigns, tiers, expiry, holds, notification templates.

Staff change these through the admin endpoints; the pure rule modules read them. Multipliers and
shares are integer percentages (120 = x1.2) so that no float ever enters a rule.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.domain.lottery import Lottery
from chalicelib.domain.membership import MembershipPlan, MembershipPolicy
from chalicelib.domain.notifications import EVENTS, NotificationTemplate
from chalicelib.domain.text import FreeText
from chalicelib.domain.referral import ReferralReward, ReferralRules
from chalicelib.domain.rfm import RfmRules  # insight (issue 15)


class Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class Benefit(Strict):
    code: str = Field(min_length=1, max_length=64)
    description: FreeText = Field(min_length=1, max_length=200)


class Tier(Strict):
    code: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    name: FreeText = Field(min_length=1, max_length=32)
    level: int = Field(ge=0, le=99)
    # Growth that lifts a member into this tier.
    threshold: int = Field(ge=0)
    # Growth within the window that keeps (保级) the tier at review; defaults to the threshold.
    retention: int | None = Field(default=None, ge=0)
    points_multiplier_pct: int = Field(default=100, ge=100, le=1000)
    # For the till to apply: 95 means 95折 (5% off). 100 = no discount.
    discount_pct: int = Field(default=100, ge=1, le=100)
    free_shipping_threshold_fen: int | None = Field(default=None, ge=0)
    birthday_gift_points: int = Field(default=0, ge=0, le=10**6)
    benefits: list[Benefit] = Field(default_factory=list)

    @property
    def retention_growth(self) -> int:
        return self.threshold if self.retention is None else self.retention


class Campaign(Strict):
    """A time-boxed earning boost: a points multiplier and/or a bonus once an order reaches a
    threshold (满额送积分). Both days are inclusive, in the program's time zone."""

    code: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    name: FreeText = Field(min_length=1, max_length=64)
    starts_on: dt.date
    ends_on: dt.date
    multiplier_pct: int = Field(default=100, ge=100, le=1000)
    bonus_threshold_fen: int | None = Field(default=None, ge=1)
    bonus_points: int = Field(default=0, ge=0, le=10**6)

    @model_validator(mode="after")
    def _check(self) -> Campaign:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        if (self.bonus_threshold_fen is None) != (self.bonus_points == 0):
            raise ValueError("bonus_threshold_fen and bonus_points go together")
        return self

    def active_on(self, day: dt.date) -> bool:
        return self.starts_on <= day <= self.ends_on


class EarningRules(Strict):
    points_per_yuan: int = Field(default=1, ge=0, le=1000)
    growth_per_yuan: int = Field(default=1, ge=0, le=1000)
    campaigns: list[Campaign] = Field(default_factory=list)


class ExpiryPolicy(Strict):
    # Points earned in month M expire at the end of month M + months_after.
    months_after: int = Field(default=12, ge=1, le=120)
    # Days before expiry to remind on; bounded: the reminder job adds them to calendar days.
    reminder_days: list[Annotated[int, Field(ge=0, le=366)]] = Field(default_factory=lambda: [30, 15, 3], max_length=12)


class HoldPolicy(Strict):
    """Checkout deduction: how many points make one yuan, how much of an order they may pay,
    and how long a hold may stay unsettled before it releases itself."""

    points_per_yuan: int = Field(default=10, ge=1, le=10000)
    max_share_pct: int = Field(default=50, ge=1, le=100)
    ttl_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)


class TopUpPlan(Strict):
    """A stored-value top-up plan: pay `pay_fen`, get `bonus_fen` on top (充100送10)."""

    plan_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    pay_fen: int = Field(ge=1, le=5_000_000)
    bonus_fen: int = Field(default=0, ge=0, le=5_000_000)


class StoredValuePolicy(Strict):
    """Stored value (储值): the plans on sale and the caps of 单用途商业预付卡管理办法 — at most
    5000 yuan on a card whose holder is known (a bound phone: 记名), 1000 yuan otherwise."""

    plans: list[TopUpPlan] = Field(default_factory=list, max_length=50)
    cap_named_fen: int = Field(default=500_000, ge=0, le=500_000)
    cap_anonymous_fen: int = Field(default=100_000, ge=0, le=100_000)

    @field_validator("plans")
    @classmethod
    def _unique_plans(cls, plans: list[TopUpPlan]) -> list[TopUpPlan]:
        if len({p.plan_id for p in plans}) != len(plans):
            raise ValueError("plan ids must be unique")
        return plans

    def plan(self, plan_id: str) -> TopUpPlan | None:
        return next((p for p in self.plans if p.plan_id == plan_id), None)


class TierPolicy(Strict):
    """How growth counts and how the periodic review treats members who fall short."""

    # Growth counts over the last N calendar months (this one included); None: lifetime.
    growth_window_months: int | None = Field(default=12, ge=1, le=24)
    # At review, a member short of the retention growth drops one tier, or straight to the
    # tier their growth supports.
    downgrade: Literal["one_tier", "to_supported"] = "one_tier"
    # Days between the first failed review and the drop (0: drop at once).
    grace_days: int = Field(default=0, ge=0, le=366)
    # The review runs on this day of every `review_every_months`-th month.
    review_every_months: int = Field(default=1, ge=1, le=12)
    review_day: int = Field(default=1, ge=1, le=28)


class CheckinPolicy(Strict):
    points: int = Field(default=1, ge=0, le=10**6)
    growth: int = Field(default=1, ge=0, le=10**6)
    # Streak days repeat in cycles of this length; `bonuses` maps a day of the cycle to extra points.
    cycle_days: int = Field(default=7, ge=1, le=366)
    bonuses: dict[int, int] = Field(default_factory=lambda: {7: 10})

    @field_validator("bonuses")
    @classmethod
    def _days_in_cycle(cls, bonuses: dict[int, int]) -> dict[int, int]:
        if any(day < 1 or points < 0 for day, points in bonuses.items()):
            raise ValueError("bonus days start at 1 and bonus points are not negative")
        return bonuses


class TaskReward(Strict):
    points: int = Field(default=0, ge=0, le=10**6)
    growth: int = Field(default=0, ge=0, le=10**6)


class CouponGifts(Strict):
    """Coupons issued automatically, by template id; each once per member and cause (enrolment,
    reaching a tier, a birthday year, a points-mall redemption)."""

    on_enrol: list[str] = Field(default_factory=list, max_length=10)
    on_tier: dict[str, list[str]] = Field(default_factory=dict)  # tier code -> templates
    on_birthday: list[str] = Field(default_factory=list, max_length=10)
    # Points-mall rewards that are coupons (积分兑换优惠券 in the mall): reward id -> templates.
    on_redemption: dict[str, list[str]] = Field(default_factory=dict)


class TillCaps(Strict):
    """Caps on one till key (None: no cap). Beyond a cap the till gets 429 `rate_limited`."""

    orders_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    amount_fen_per_hour: int | None = Field(default=None, ge=1, le=10**13)


class RiskRules(Strict):
    """Risk controls (防刷单). Every rule is optional; the defaults change nothing for members
    except the two flags, which only put a case in the staff's queue."""

    # Points a member may earn per program day / calendar month; the excess goes pending.
    daily_points_cap: int | None = Field(default=None, ge=1, le=10**9)
    monthly_points_cap: int | None = Field(default=None, ge=1, le=10**10)
    # Till key id -> caps; "*" applies to every till key without its own entry.
    till_caps: dict[str, TillCaps] = Field(default_factory=dict, max_length=200)
    # An order of at least this amount: all its points pending until staff release them...
    review_threshold_fen: int | None = Field(default=None, ge=1, le=10**12)
    # ...or until they release themselves this many days later (None: only staff release).
    review_auto_release_days: int | None = Field(default=7, ge=1, le=366)
    # Refunded / ordered over the last 30 days above this percentage: new accruals pending.
    refund_ratio_pct: int | None = Field(default=None, ge=1, le=100)
    # ...counted only once the member has ordered at least this much in the window.
    refund_ratio_min_ordered_fen: int = Field(default=10_000, ge=0, le=10**12)
    # This many members or more behind one phone number / one device id: flagged for staff.
    shared_phone_members: int | None = Field(default=3, ge=2, le=100)
    shared_device_members: int | None = Field(default=5, ge=2, le=100)

    @field_validator("till_caps")
    @classmethod
    def _key_ids(cls, value: dict[str, TillCaps]) -> dict[str, TillCaps]:
        if any(not re.fullmatch(r"[A-Za-z0-9._:-]{1,64}|\*", key) for key in value):
            raise ValueError("till_caps keys are till key ids or \"*\"")
        return value

    def caps_for(self, key_id: str) -> TillCaps | None:
        caps = self.till_caps.get(key_id) or self.till_caps.get("*")
        if caps is None or (caps.orders_per_minute is None and caps.amount_fen_per_hour is None):
            return None
        return caps


class ProgramConfig(Strict):
    program_id: str = Field(pattern=r"^[a-z0-9-]{2,32}$")
    name: FreeText = Field(min_length=1, max_length=64)
    appid: str = Field(pattern=r"^wx[0-9a-zA-Z]{14,30}$")
    timezone: str = "Asia/Shanghai"
    earning: EarningRules = Field(default_factory=EarningRules)
    tiers: list[Tier]
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    holds: HoldPolicy = Field(default_factory=HoldPolicy)
    stored_value: StoredValuePolicy = Field(default_factory=StoredValuePolicy)
    tier_policy: TierPolicy = Field(default_factory=TierPolicy)
    checkin: CheckinPolicy = Field(default_factory=CheckinPolicy)
    # One-off tasks a member completes once ("complete_profile": nickname, birthday and phone).
    tasks: dict[str, TaskReward] = Field(default_factory=lambda: {"complete_profile": TaskReward(points=50, growth=10)})
    # Notification event type -> subscribe template (a template id alone uses default fields).
    templates: dict[str, NotificationTemplate] = Field(default_factory=dict)
    coupon_gifts: CouponGifts = Field(default_factory=CouponGifts)
    risk: RiskRules = Field(default_factory=RiskRules)
    # Paid membership (付费会员), lotteries (积分抽奖), referral rewards and caps (issue 14).
    membership: MembershipPolicy = Field(default_factory=MembershipPolicy)
    lotteries: list[Lottery] = Field(default_factory=list, max_length=20)
    referral: ReferralRules = Field(default_factory=ReferralRules)
    # insight (issue 15): the nightly RFM job's window, thresholds and named segments.
    rfm: RfmRules = Field(default_factory=RfmRules)

    @field_validator("templates", mode="before")
    @classmethod
    def _template_ids(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {event: {"template_id": spec} if isinstance(spec, str) else spec for event, spec in value.items()}
        return value

    @field_validator("templates")
    @classmethod
    def _known_events(cls, value: dict[str, NotificationTemplate]) -> dict[str, NotificationTemplate]:
        unknown = set(value) - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown notification events: {sorted(unknown)}; known: {list(EVENTS)}")
        return value

    def template_for(self, template_id: str) -> str | None:
        """The event a template id is configured for."""
        for event, template in self.templates.items():
            if template.template_id == template_id:
                return event
        return None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("tiers")
    @classmethod
    def _tiers_ladder(cls, tiers: list[Tier]) -> list[Tier]:
        if not 2 <= len(tiers) <= 10:
            raise ValueError("a program has 2 to 10 tiers")
        ordered = sorted(tiers, key=lambda t: t.level)
        if ordered[0].threshold != 0:
            raise ValueError("the lowest tier must have threshold 0")
        for lower, upper in zip(ordered, ordered[1:]):
            if upper.level == lower.level or upper.threshold <= lower.threshold:
                raise ValueError("tiers need distinct levels and rising thresholds")
        if len({t.code for t in tiers}) != len(tiers):
            raise ValueError("tier codes must be unique")
        return ordered

    @model_validator(mode="after")
    def _gift_tiers(self) -> ProgramConfig:
        unknown = set(self.coupon_gifts.on_tier) - {tier.code for tier in self.tiers}
        if unknown:
            raise ValueError(f"coupon_gifts.on_tier names unknown tiers: {sorted(unknown)}")
        return self

    @field_validator("lotteries")
    @classmethod
    def _unique_lotteries(cls, lotteries: list[Lottery]) -> list[Lottery]:
        if len({lottery.lottery_id for lottery in lotteries}) != len(lotteries):
            raise ValueError("lottery ids must be unique")
        return lotteries

    def lottery(self, lottery_id: str) -> Lottery | None:
        return next((lottery for lottery in self.lotteries if lottery.lottery_id == lottery_id), None)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(self.zone).date()

    def local_day(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()

    def tier(self, code: str) -> Tier:
        for tier in self.tiers:
            if tier.code == code:
                return tier
        return self.tiers[0]

    @property
    def base_tier(self) -> Tier:
        return self.tiers[0]


def demo_program() -> ProgramConfig:
    """The local stack's `demo` program (../shared/API.md)."""
    return ProgramConfig(
        program_id="demo",
        name="Demo Coffee",
        appid="wxdemo0000000000",
        tiers=[
            Tier(code="normal", name="普通", level=0, threshold=0,
                 benefits=[Benefit(code="earn_points", description="每消费1元得1积分")]),
            Tier(code="silver", name="银卡", level=1, threshold=1000, points_multiplier_pct=120,
                 discount_pct=98, free_shipping_threshold_fen=9900, birthday_gift_points=50,
                 benefits=[Benefit(code="points_x1.2", description="积分1.2倍"),
                           Benefit(code="discount_98", description="消费98折")]),
            Tier(code="gold", name="金卡", level=2, threshold=5000, points_multiplier_pct=150,
                 discount_pct=95, free_shipping_threshold_fen=0, birthday_gift_points=200,
                 benefits=[Benefit(code="points_x1.5", description="积分1.5倍"),
                           Benefit(code="discount_95", description="消费95折"),
                           Benefit(code="birthday_gift", description="生日礼")]),
        ],
        stored_value=StoredValuePolicy(plans=[TopUpPlan(plan_id="sv-100", pay_fen=10_000, bonus_fen=1_000),
                                              TopUpPlan(plan_id="sv-500", pay_fen=50_000, bonus_fen=8_000)]),
        templates={
            "tier_changed": NotificationTemplate(template_id="tmpl-tier"),
            "points_changed": NotificationTemplate(template_id="tmpl-points"),
            "points_expiring": NotificationTemplate(template_id="tmpl-expiring"),
            "coupon_expiring": NotificationTemplate(template_id="tmpl-coupon"),
            "membership_expiring": NotificationTemplate(template_id="tmpl-membership"),
            "campaign": NotificationTemplate(template_id="tmpl-campaign"),
        },
        risk=RiskRules(till_caps={"dev-pos": TillCaps(orders_per_minute=600)}, review_threshold_fen=5_000_000),
        membership=MembershipPolicy(
            plans=[MembershipPlan(plan_id="svip-month", name="SVIP 月卡", days=30, price_fen=1990),
                   MembershipPlan(plan_id="svip-trial", name="SVIP 7天体验", days=7, price_fen=0, trial=True)],
            points_multiplier_pct=200, discount_pct=90, monthly_coupons=["demo-10off"], reminder_days=3),
        lotteries=[demo_wheel()],
        referral=ReferralRules(inviter=ReferralReward(points=50), invitee=ReferralReward(points=20),
                               trigger="first_paid_order", daily_cap=5, monthly_cap=30, reverse_within_days=7),
    )


def demo_wheel() -> Lottery:
    """The local stack's `demo-wheel`: 10 points a draw, 5 draws per member per day."""
    from chalicelib.domain.lottery import Prize

    return Lottery(
        lottery_id="demo-wheel", name="幸运大转盘", cost_points=10, daily_limit=5,
        starts_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        ends_at=dt.datetime(2099, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        prizes=[Prize(prize_id="p100", name="100 积分", kind="points", points=100, weight=5, stock=1000, value_fen=1000),
                Prize(prize_id="p20", name="20 积分", kind="points", points=20, weight=20, stock=None, value_fen=200),
                Prize(prize_id="cup", name="Demo 杯子", kind="gift", weight=1, stock=10, value_fen=3900),
                Prize(prize_id="coupon", name="满100减10券", kind="coupon", template_id="demo-10off", weight=4,
                      stock=100, value_fen=1000),
                Prize(prize_id="none", name="谢谢参与", kind="nothing", weight=70)])
