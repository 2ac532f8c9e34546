"""Staff accounts (issue 16): log-in, the owner's account management, the audit log, finding a
member the way the console does, and a walk-in customer's coupon used at the counter."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import PUBLIC, STAFF, current_request_id, route

bp = Blueprint(__name__)


@route(bp, "/v1/admin/auth/login", ["POST"], auth=PUBLIC, body="chalicelib.services.staff:StaffLoginIn", response="chalicelib.api.schemas:StaffLogin", errors=(401,),
       summary="Staff log-in: a short-lived token (the same 401 for a wrong name or password; locks after "
               "repeated failures)")
def staff_login(ctx):
    from chalicelib.services import staff

    identity = (ctx.request.context or {}).get("identity") or {}
    return staff.login(ctx.settings, ctx.body(), str(identity.get("sourceIp") or "unknown"), current_request_id())


@route(bp, "/v1/admin/staff", ["GET"], auth=STAFF.require("staff:read"), response="chalicelib.api.schemas:StaffList",
       summary="The program's staff accounts (owner)")
def list_staff(ctx):
    from chalicelib.services import staff

    return staff.list_staff(ctx.staff.program_id)


@route(bp, "/v1/admin/staff/{username}", ["PUT"], auth=STAFF.require("staff:write"), body="chalicelib.services.staff:StaffUserIn",
       response="chalicelib.api.schemas:StaffUser", also=(201,), errors=(409,),
       summary="Create or change a staff account: role, password, disabled, a clerk's points limit (owner)")
def put_staff(ctx, username):
    from chalicelib.services import staff

    return staff.put_staff(ctx.settings, ctx.staff, username, ctx.body())


@route(bp, "/v1/admin/audit", ["GET"], auth=STAFF.require("audit:read"), page_of="chalicelib.api.schemas:AuditEntry",
       summary="Every staff write, newest first (owner)")
def audit_log(ctx):
    from chalicelib.services import staff

    page = ctx.query()
    return staff.audit_page(ctx.staff.program_id, page.limit, page.cursor)


@route(bp, "/v1/admin/member-lookup", ["GET"], auth=STAFF.require("members:read"), query="chalicelib.services.staff:LookupQuery",
       response="chalicelib.api.schemas:MemberCard", errors=(404,),
       summary="Find a member by bound phone (keyed lookup), invite code or member id: the card")
def member_lookup(ctx):
    from chalicelib.services import members, staff

    member_id = staff.find_member(ctx.settings, ctx.staff.program_id, ctx.query())
    return members.card_of(ctx.settings, ctx.staff.program_id, member_id)


@route(bp, "/v1/admin/coupons/redeem", ["POST"], auth=STAFF.require("coupons:redeem"), status=201,
       body="chalicelib.services.coupons:RedeemIn", response="chalicelib.api.schemas:CouponRedeemed", errors=(404, 409),
       summary="Use a walk-in customer's coupon at the counter (核销 by staff), once per request_id")
def staff_redeem_coupon(ctx):
    # The counter is a till without a store of its own; the audit log names the staff member.
    from chalicelib.auth.principals import TillPrincipal
    from chalicelib.services import coupons

    counter = TillPrincipal(ctx.staff.program_id, f"staff:{ctx.staff.actor}", None)
    return coupons.redeem(ctx.settings, counter, ctx.body())
