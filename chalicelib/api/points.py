"""Points routes: orders and refunds from tills, adjustments and history."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, STAFF, TILL, route

bp = Blueprint(__name__)


@route(bp, "/v1/orders", ["POST"], auth=TILL, status=201, body="chalicelib.services.ledger:OrderIn", response="chalicelib.api.schemas:OrderAccrued",
       errors=(404, 409, 429), summary="Report a paid order: points and growth, once per order_id (429 "
       "rate_limited beyond the till's caps; points held back by a risk rule are `points_pending`)")
def post_order(ctx):
    from chalicelib.services import ledger

    return ledger.accrue_order(ctx.settings, ctx.till, ctx.body())


@route(bp, "/v1/orders/{order_id}/refunds", ["POST"], auth=TILL, status=201, body="chalicelib.services.ledger:RefundIn",
       response="chalicelib.api.schemas:RefundApplied", errors=(404, 409),
       summary="Report a refund: points and growth reversed in proportion, once per refund_id")
def post_refund(ctx, order_id):
    from chalicelib.services import ledger

    return ledger.refund_order(ctx.settings, ctx.till, order_id, ctx.body())


@route(bp, "/v1/admin/members/{member_id}/adjustments", ["POST"], auth=STAFF.require("points:adjust"), status=201,
       body="chalicelib.services.ledger:AdjustmentIn", response="chalicelib.api.schemas:AdjustmentApplied", errors=(404, 409),
       summary="Add or remove points with a reason, once per request_id")
def post_adjustment(ctx, member_id):
    from chalicelib.services import ledger

    return ledger.adjust(ctx.settings, ctx.staff, member_id, ctx.body())


@route(bp, "/v1/members/me/points/history", ["GET"], auth=MEMBER, page_of="chalicelib.api.schemas:HistoryEntry", errors=(404,),
       summary="The caller's points changes, newest first")
def my_history(ctx):
    from chalicelib.services import ledger
    from chalicelib.services.members import resolve_member_id

    page = ctx.query()
    return ledger.history(ctx.member.program_id, resolve_member_id(ctx.member), page.limit, page.cursor)


@route(bp, "/v1/admin/members/{member_id}/points/history", ["GET"], auth=STAFF.require("members:read"), page_of="chalicelib.api.schemas:HistoryEntry",
       errors=(404,), summary="A member's points changes, newest first")
def member_history(ctx, member_id):
    from chalicelib.services import ledger

    page = ctx.query()
    return ledger.history(ctx.staff.program_id, member_id, page.limit, page.cursor)
