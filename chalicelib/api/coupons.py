"""Coupon routes: templates and grants (staff), claims and the wallet (members), 核销 and voids
(tills), a member's coupon history (staff)."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, STAFF, TILL, route

bp = Blueprint(__name__)


@route(bp, "/v1/admin/coupon-templates/{template_id}", ["PUT"], auth=STAFF.require("coupons:write"),
       body="chalicelib.services.coupons:TemplateIn", response="chalicelib.api.schemas:CouponTemplate", errors=(409,),
       summary="Create or change a coupon template (a new version; issued coupons keep their rules)")
def put_coupon_template(ctx, template_id):
    from chalicelib.services import coupons

    return coupons.put_template(ctx.settings, ctx.staff, template_id, ctx.body())


@route(bp, "/v1/admin/coupon-templates/{template_id}", ["GET"], auth=STAFF.require("coupons:read"),
       response="chalicelib.api.schemas:CouponTemplate", errors=(404,), summary="A coupon template, with its stock")
def get_coupon_template(ctx, template_id):
    from chalicelib.services import coupons

    return coupons.get_template(ctx.staff.program_id, template_id)


@route(bp, "/v1/admin/coupon-templates", ["GET"], auth=STAFF.require("coupons:read"), page_of="chalicelib.api.schemas:CouponTemplate",
       summary="Every coupon template")
def list_coupon_templates(ctx):
    from chalicelib.services import coupons

    page = ctx.query()
    return coupons.list_templates(ctx.staff.program_id, page.limit, page.cursor, claimable_only=False)


@route(bp, "/v1/coupon-templates", ["GET"], auth=MEMBER, page_of="chalicelib.api.schemas:CouponTemplate",
       summary="Coupons members can claim (领券中心)")
def claimable_coupon_templates(ctx):
    from chalicelib.services import coupons

    page = ctx.query()
    return coupons.list_templates(ctx.member.program_id, page.limit, page.cursor, claimable_only=True)


@route(bp, "/v1/admin/coupon-templates/{template_id}/grants", ["POST"], auth=STAFF.require("coupons:grant"),
       body="chalicelib.services.coupons:GrantIn", response="chalicelib.api.schemas:CouponGrant", errors=(404, 409),
       summary="Give members a coupon each, once per request_id; refusals listed")
def grant_coupons(ctx, template_id):
    from chalicelib.services import coupons

    return coupons.grant(ctx.settings, ctx.staff, template_id, ctx.body())


@route(bp, "/v1/members/me/coupons", ["POST"], auth=MEMBER, status=201, body="chalicelib.services.coupons:ClaimIn", response="chalicelib.api.schemas:Coupon",
       errors=(404, 409), summary="Claim a coupon, once per request_id (stock, limit and points price enforced)")
def claim_coupon(ctx):
    from chalicelib.services import coupons

    return coupons.claim(ctx.settings, ctx.member, ctx.body())


@route(bp, "/v1/members/me/coupons", ["GET"], auth=MEMBER, query="chalicelib.api.inputs:WalletQuery",
       page_of="chalicelib.api.schemas:Coupon",
       errors=(404,), summary="The caller's coupons in one status, soonest-expiring first")
def my_coupons(ctx):
    from chalicelib.services import coupons

    query = ctx.query()
    return coupons.wallet(ctx.settings, ctx.member, query.status, query.limit, query.cursor)


@route(bp, "/v1/coupons/redeem", ["POST"], auth=TILL, status=201, body="chalicelib.services.coupons:RedeemIn", response="chalicelib.api.schemas:CouponRedeemed",
       errors=(404, 409), summary="Use a coupon on an order (核销), once per request_id")
def redeem_coupon(ctx):
    from chalicelib.services import coupons

    return coupons.redeem(ctx.settings, ctx.till, ctx.body())


@route(bp, "/v1/coupons/void", ["POST"], auth=TILL, body="chalicelib.services.coupons:VoidIn", response="chalicelib.api.schemas:Coupon", errors=(404, 409),
       summary="The whole order was cancelled: its coupon is unused again (or expired if its time passed)")
def void_coupon(ctx):
    from chalicelib.services import coupons

    return coupons.void(ctx.settings, ctx.till, ctx.body())


@route(bp, "/v1/admin/members/{member_id}/coupons", ["GET"], auth=STAFF.require("coupons:read"),
       page_of="chalicelib.api.schemas:CouponEvent", errors=(404,), summary="Every change of a member's coupons, newest first")
def member_coupon_history(ctx, member_id):
    from chalicelib.services import coupons

    page = ctx.query()
    return coupons.history(ctx.staff.program_id, member_id, page.limit, page.cursor)
