"""The staff reports' own models (routes in `reports.py`, named there lazily: see `http.py`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    from_: str | None = Field(default=None, alias="from", max_length=10,
                              description="First day YYYY-MM-DD (default: 29 days before `to`).")
    to: str | None = Field(default=None, max_length=10, description="Last day YYYY-MM-DD (default: the program's today).")


class DailyRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: str = Field(description="The program's calendar day (its time zone).")
    new_members: int
    active_members: int = Field(description="Distinct members with an order or a check-in that day.")
    orders: int
    sales_fen: int = Field(description="Orders' amounts minus the day's refunds (of orders of any day).")
    points_issued: int
    points_redeemed: int = Field(description="Points spent (rewards, coupons, checkout) net of cancellations.")
    points_expired: int
    points_outstanding: int = Field(description="Members' points at the end of the day.")
    points_liability_fen: int = Field(description="points_outstanding at the program's points_per_yuan, in fen.")
    stored_value_liability_fen: int = Field(description="Stored value owed at the end of the day (principal + bonus).")
    coupons_issued: int
    coupons_used: int = Field(description="Used that day, minus uses voided that day.")
    gross_sales_fen: int
    refunds_fen: int
    refunds: int
    checkins: int
    points_reversed: int = Field(description="Taken back by order refunds.")
    points_deducted: int = Field(description="Negative staff adjustments.")
    coupons_expired: int
    stored_value_principal_fen: int
    stored_value_bonus_fen: int
    redemption_rate_bp: int | None = Field(description="points_redeemed / points_issued in basis points (10000 = 100 %); "
                                                       "null when nothing was issued.")
    breakage_bp: int | None = Field(description="points_expired / points_issued in basis points; null when nothing "
                                                "was issued.")
    tier_distribution: dict[str, int] = Field(
        description="Members per tier (the program's tier codes) at the day's close: enrolments, tier moves and "
                    "removed accounts counted from the stream (CSV: one tier_<code>_members column per tier).")
    repurchase_rate_bp: int | None = Field(
        description="Members with 2+ orders over members with 1+ order (net of full refunds) in the RFM window "
                    "ending that day, in basis points, as the `rfm` job computed it for that day; null on days it "
                    "did not run for or without orders.")


class DailyReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[DailyRow]


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current: int
    previous: int
    change_bp: int | None = Field(description="(current - previous) / previous in basis points, truncated; null when "
                                              "previous is 0.")
    trend: str = Field(description="up | down | flat | new (from 0) | gone (to 0) | none (0 and 0).")


class PeriodComparison(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    previous_from: str
    previous_to: str
    figures: dict[str, Comparison]


class MemberTags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: str
    manual: list[str] = Field(description="Tags staff gave the member.")
    computed: list[str] = Field(description="Tags jobs computed (never changed by these routes).")


class MemberRfm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: str
    as_of: str = Field(description="The day the nightly `rfm` job scored the member.")
    r: int
    f: int
    m: int
    score: str = Field(description="r, f and m as three digits, e.g. 555.")
    segment: str | None = Field(description="The first of the program's named segments the score falls in.")
    recency_days: int
    frequency: int
    monetary_fen: int = Field(description="Paid in the window, net of refunds.")


class SegmentView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segment_id: str
    name: str
    rules: dict[str, object]


class CampaignSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign_id: str
    segment_id: str
    action: dict[str, object] = Field(description='{"type": "coupon", "template_id"}, {"type": "points", "points"} '
                                                  'or {"type": "message", "title", "text"}.')
    members: int = Field(description="Members in the segment's snapshot (taken at the campaign's first run).")
    sent: int = Field(description="Members who hold the campaign's coupon or bonus; message campaigns: messages "
                                  "queued for the sender (which spends one send credit per message).")
    skipped: dict[str, int] = Field(description="Members who could not get one, by reason.")
    snapshot_at: str
    remaining: int = Field(default=0, description="Message campaigns: snapshot members not reached yet (today's "
                                                  "daily_limit was reached; the next day's run continues).")


class SegmentListed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    segment_id: str
    name: str
    rules: dict[str, object]
    members_count: int | None = Field(description="Members matching on the `segments` job's last run (null: not run).")
    evaluated_on: str | None


class SegmentList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[SegmentListed]

