"""Staff reports: the daily figures (JSON and CSV) and period comparisons (services/analytics.py)."""

from __future__ import annotations

from chalice import Blueprint
from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.http import STAFF, route
from chalicelib.services import analytics

bp = Blueprint(__name__)


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


@route(bp, "/v1/admin/reports/daily", ["GET"], auth=STAFF.require("reports:read"), query=ReportQuery,
       response=DailyReport, summary="Daily figures of the program, one row per day (at most 366)")
def daily_report(ctx):
    return analytics.daily(ctx.settings, ctx.staff.program_id, ctx.query())


@route(bp, "/v1/admin/reports/daily.csv", ["GET"], auth=STAFF.require("reports:read"), query=ReportQuery,
       media_type="text/csv; charset=utf-8", summary="The daily figures as CSV (same columns as the JSON rows)")
def daily_report_csv(ctx):
    return analytics.daily_csv(ctx.settings, ctx.staff.program_id, ctx.query())


@route(bp, "/v1/admin/reports/compare", ["GET"], auth=STAFF.require("reports:read"), query=ReportQuery,
       response=PeriodComparison, summary="The period from..to against the same number of days before it")
def compare_periods(ctx):
    return analytics.compare(ctx.settings, ctx.staff.program_id, ctx.query())
