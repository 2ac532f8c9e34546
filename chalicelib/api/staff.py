"""Staff accounts (issue 16): log-in, the owner's account management, the audit log, finding a
member the way the console does, and a walk-in customer's coupon used at the counter."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import PUBLIC, STAFF, current_request_id, route
from chalicelib.api.schemas import AuditEntry, CouponRedeemed, MemberCard, StaffList, StaffLogin, StaffUser
from chalicelib.auth.principals import TillPrincipal
from chalicelib.services import coupons, members, staff

bp = Blueprint(__name__)


@route(bp, "/v1/admin/auth/login", ["POST"], auth=PUBLIC, body=staff.StaffLoginIn, response=StaffLogin, errors=(401,),
       summary="Staff log-in: a short-lived token (the same 401 for a wrong name or password; locks after "
               "repeated failures)")
def staff_login(ctx):
    identity = (ctx.request.context or {}).get("identity") or {}
    return staff.login(ctx.settings, ctx.body(), str(identity.get("sourceIp") or "unknown"), current_request_id())


@route(bp, "/v1/admin/staff", ["GET"], auth=STAFF.require("staff:read"), response=StaffList,
       summary="The program's staff accounts (owner)")
def list_staff(ctx):
    return staff.list_staff(ctx.staff.program_id)


@route(bp, "/v1/admin/staff/{username}", ["PUT"], auth=STAFF.require("staff:write"), body=staff.StaffUserIn,
       response=StaffUser, also=(201,), errors=(409,),
       summary="Create or change a staff account: role, password, disabled, a clerk's points limit (owner)")
def put_staff(ctx, username):
    return staff.put_staff(ctx.settings, ctx.staff, username, ctx.body())


@route(bp, "/v1/admin/audit", ["GET"], auth=STAFF.require("audit:read"), page_of=AuditEntry,
       summary="Every staff write, newest first (owner)")
def audit_log(ctx):
    page = ctx.query()
    return staff.audit_page(ctx.staff.program_id, page.limit, page.cursor)


@route(bp, "/v1/admin/member-lookup", ["GET"], auth=STAFF.require("members:read"), query=staff.LookupQuery,
       response=MemberCard, errors=(404,),
       summary="Find a member by bound phone (keyed lookup), invite code or member id: the card")
def member_lookup(ctx):
    member_id = staff.find_member(ctx.settings, ctx.staff.program_id, ctx.query())
    return members.card_of(ctx.settings, ctx.staff.program_id, member_id)


@route(bp, "/v1/admin/coupons/redeem", ["POST"], auth=STAFF.require("coupons:redeem"), status=201,
       body=coupons.RedeemIn, response=CouponRedeemed, errors=(404, 409),
       summary="Use a walk-in customer's coupon at the counter (核销 by staff), once per request_id")
def staff_redeem_coupon(ctx):
    # The counter is a till without a store of its own; the audit log names the staff member.
    counter = TillPrincipal(ctx.staff.program_id, f"staff:{ctx.staff.actor}", None)
    return coupons.redeem(ctx.settings, counter, ctx.body())
