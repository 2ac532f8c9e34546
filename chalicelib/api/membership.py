"""Paid membership and lottery routes (issue 14): plans, buying or trying a membership, drawing,
the lottery page, and the staff's list of draws for audits."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, STAFF, route

bp = Blueprint(__name__)


@route(bp, "/v1/membership/plans", ["GET"], auth=MEMBER, page_of="chalicelib.api.schemas:MembershipPlanView",
       summary="Paid membership plans (付费会员), the free trial included")
def list_membership_plans(ctx):
    from chalicelib.services import membership

    page = ctx.query()
    return membership.plans(ctx.settings, ctx.member, page.limit, page.cursor)


@route(bp, "/v1/members/me/membership", ["POST"], auth=MEMBER, status=201, body="chalicelib.services.membership:MembershipIn",
       response="chalicelib.api.schemas:MembershipBought", errors=(404, 409),
       summary="Take the free trial (active at once; 409 trial_used the second time, per person) or buy a plan "
               "(a WeChat Pay order; the membership starts when it is paid, once)")
def buy_membership(ctx):
    from chalicelib.services import membership

    return membership.buy(ctx.settings, ctx.member, ctx.body())


@route(bp, "/v1/members/me/lottery-draws", ["POST"], auth=MEMBER, status=201, body="chalicelib.services.lottery:DrawIn",
       response="chalicelib.api.schemas:LotteryDraw", errors=(404, 409),
       summary="Draw once (points taken, prize picked, stock taken, in one transaction); 409 insufficient_points, "
               "draw_limit_reached, lottery_closed")
def draw_lottery(ctx):
    from chalicelib.services import lottery

    return lottery.draw(ctx.settings, ctx.member, ctx.body())


@route(bp, "/v1/lotteries/{lottery_id}", ["GET"], auth=MEMBER, response="chalicelib.api.schemas:LotteryPage", errors=(404,),
       summary="A lottery: its prizes with their current odds, rules, seed_sha256, and the seed once it has ended")
def lottery_page(ctx, lottery_id):
    from chalicelib.services import lottery

    return lottery.page(ctx.settings, ctx.member, lottery_id)


@route(bp, "/v1/admin/lotteries/{lottery_id}/draws", ["GET"], auth=STAFF.require("lotteries:read"),
       page_of="chalicelib.api.schemas:LotteryDrawRow", errors=(404,),
       summary="Every draw of a lottery, oldest first, with the table it drew from (for tools/verify_lottery.py)")
def lottery_draws(ctx, lottery_id):
    from chalicelib.services import lottery

    page = ctx.query()
    return lottery.draws(ctx.settings, ctx.staff.program_id, lottery_id, page.limit, page.cursor)


@route(bp, "/v1/admin/members/{member_id}/memberships/{order_id}/refunds", ["POST"],
       auth=STAFF.require("membership:refund"), status=201, body="chalicelib.services.membership_refunds:MembershipRefundIn",
       response="chalicelib.api.schemas:MembershipRefund", errors=(404, 409),
       summary="Refund a paid membership order through WeChat Pay: unused whole days pro rata less the coupon packs "
               "granted; the membership is cut at once (restored if WeChat Pay fails the refund). Only the latest "
               "entitlement (409 refund_latest_first); 409 nothing_to_refund; once per request_id")
def refund_membership(ctx, member_id, order_id):
    from chalicelib.services import membership_refunds

    return membership_refunds.refund_membership(ctx.settings, ctx.staff, member_id, order_id, ctx.body())
