"""Points routes: orders and refunds from tills, adjustments and history."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, STAFF, TILL, route
from chalicelib.services import ledger
from chalicelib.services.members import resolve_member_id

bp = Blueprint(__name__)


@route(bp, "/v1/orders", ["POST"], auth=TILL, status=201)
def post_order(ctx):
    return ledger.accrue_order(ctx.settings, ctx.till, ctx.body(ledger.OrderIn))


@route(bp, "/v1/orders/{order_id}/refunds", ["POST"], auth=TILL, status=201)
def post_refund(ctx, order_id):
    return ledger.refund_order(ctx.settings, ctx.till, order_id, ctx.body(ledger.RefundIn))


@route(bp, "/v1/admin/members/{member_id}/adjustments", ["POST"], auth=STAFF, status=201)
def post_adjustment(ctx, member_id):
    return ledger.adjust(ctx.settings, ctx.staff, member_id, ctx.body(ledger.AdjustmentIn))


@route(bp, "/v1/members/me/points/history", ["GET"], auth=MEMBER)
def my_history(ctx):
    limit, cursor = ctx.page_limit()
    return ledger.history(ctx.member.program_id, resolve_member_id(ctx.member), limit, cursor)


@route(bp, "/v1/admin/members/{member_id}/points/history", ["GET"], auth=STAFF)
def member_history(ctx, member_id):
    limit, cursor = ctx.page_limit()
    return ledger.history(ctx.staff.program_id, member_id, limit, cursor)
