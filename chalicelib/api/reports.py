"""Staff reports: the daily figures (JSON and CSV) and period comparisons (services/analytics.py)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import STAFF, route
from chalicelib.errors import NotFound

bp = Blueprint(__name__)


@route(bp, "/v1/admin/reports/daily", ["GET"], auth=STAFF.require("reports:read"), query="chalicelib.api.report_schemas:ReportQuery",
       response="chalicelib.api.report_schemas:DailyReport", summary="Daily figures of the program, one row per day (at most 366)")
def daily_report(ctx):
    from chalicelib.services import analytics

    return analytics.daily(ctx.settings, ctx.staff.program_id, ctx.query())


@route(bp, "/v1/admin/reports/daily.csv", ["GET"], auth=STAFF.require("reports:read"), query="chalicelib.api.report_schemas:ReportQuery",
       media_type="text/csv; charset=utf-8", summary="The daily figures as CSV (same columns as the JSON rows)")
def daily_report_csv(ctx):
    from chalicelib.services import analytics

    return analytics.daily_csv(ctx.settings, ctx.staff.program_id, ctx.query())


@route(bp, "/v1/admin/reports/compare", ["GET"], auth=STAFF.require("reports:read"), query="chalicelib.api.report_schemas:ReportQuery",
       response="chalicelib.api.report_schemas:PeriodComparison", summary="The period from..to against the same number of days before it")
def compare_periods(ctx):
    from chalicelib.services import analytics

    return analytics.compare(ctx.settings, ctx.staff.program_id, ctx.query())


@route(bp, "/v1/admin/members/{member_id}/tags", ["GET"], auth=STAFF.require("members:read"), response="chalicelib.api.report_schemas:MemberTags",
       errors=(404,), summary="The member's tags, manual apart from computed")
def get_member_tags(ctx, member_id):
    from chalicelib.services import tags

    return tags.view(ctx.staff.program_id, member_id)


@route(bp, "/v1/admin/members/{member_id}/tags/{tag}", ["PUT"], auth=STAFF.require("tags:write"), response="chalicelib.api.report_schemas:MemberTags",
       errors=(404,), summary="Tag the member (idempotent: tagging twice is tagging once)")
def put_member_tag(ctx, member_id, tag):
    from chalicelib.services import tags

    return tags.add(ctx.staff.program_id, member_id, tag)


@route(bp, "/v1/admin/members/{member_id}/tags/{tag}", ["DELETE"], auth=STAFF.require("tags:write"),
       response="chalicelib.api.report_schemas:MemberTags", errors=(404,), summary="Untag the member (idempotent; computed tags are not touched)")
def delete_member_tag(ctx, member_id, tag):
    from chalicelib.services import tags

    return tags.remove(ctx.staff.program_id, member_id, tag)


@route(bp, "/v1/admin/members/{member_id}/rfm", ["GET"], auth=STAFF.require("segments:read"), response="chalicelib.api.report_schemas:MemberRfm",
       errors=(404,), summary="The member's latest RFM scores (404 rfm_not_scored before the job scored them)")
def get_member_rfm(ctx, member_id):
    from chalicelib.services import rfm

    found = rfm.view(ctx.staff.program_id, member_id)
    if found is None:
        raise NotFound("the member has no RFM scores (no order in the window, or the job has not run)",
                       code="rfm_not_scored")
    return found


@route(bp, "/v1/admin/segments/{segment_id}", ["PUT"], auth=STAFF.require("segments:write"),
       body="chalicelib.services.campaigns:SegmentIn", response="chalicelib.api.report_schemas:SegmentView", summary="Create or replace a segment's rules")
def put_segment(ctx, segment_id):
    from chalicelib.services import campaigns

    return campaigns.put_segment(ctx.staff.program_id, segment_id, ctx.body())


@route(bp, "/v1/admin/campaigns/{campaign_id}/runs", ["POST"], auth=STAFF.require("campaigns:run"),
       body="chalicelib.services.campaigns:CampaignIn", response="chalicelib.api.report_schemas:CampaignSummary", errors=(404, 409),
       summary="Grant a coupon template or a points bonus, or send a subscribe message, to a segment "
               "(snapshotted at the first run; reruns grant nothing more)")
def run_campaign(ctx, campaign_id):
    from chalicelib.services import campaigns

    return campaigns.run_campaign(ctx.settings, ctx.staff, campaign_id, ctx.body())


@route(bp, "/v1/admin/segments", ["GET"], auth=STAFF.require("segments:read"), response="chalicelib.api.report_schemas:SegmentList",
       summary="The program's segments with their size on the last `segments` job run")
def list_segments(ctx):
    from chalicelib.services import campaigns

    return campaigns.list_segments(ctx.staff.program_id)
