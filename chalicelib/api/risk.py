"""Risk control routes for staff: pending points (release, reject, the review queue) and flags."""

from chalice import Blueprint

from chalicelib.api.http import STAFF, route

bp = Blueprint(__name__)


@route(bp, "/v1/admin/members/{member_id}/pending/{entry_id}/release", ["POST"],
       auth=STAFF.require("risk:review"), body="chalicelib.services.pending:SettleIn", response="chalicelib.api.schemas:PendingSettled", errors=(404, 409),
       summary="Release pending points into the balance, once per request_id")
def release_pending(ctx, member_id, entry_id):
    from chalicelib.services import pending

    return pending.settle(ctx.settings, ctx.staff, member_id, entry_id, pending.RELEASED, ctx.body())


@route(bp, "/v1/admin/members/{member_id}/pending/{entry_id}/reject", ["POST"],
       auth=STAFF.require("risk:review"), body="chalicelib.services.pending:SettleIn", response="chalicelib.api.schemas:PendingSettled", errors=(404, 409),
       summary="Reject pending points (dropped; the history keeps them), once per request_id")
def reject_pending(ctx, member_id, entry_id):
    from chalicelib.services import pending

    return pending.settle(ctx.settings, ctx.staff, member_id, entry_id, pending.REJECTED, ctx.body())


@route(bp, "/v1/admin/members/{member_id}/pending", ["GET"], auth=STAFF.require("risk:read"),
       page_of="chalicelib.api.schemas:PendingEntry", errors=(404,), summary="A member's newest pending entries (every status), one page")
def member_pending(ctx, member_id):
    from chalicelib.services import pending

    return pending.of_member(ctx.staff.program_id, member_id, ctx.query().limit)


@route(bp, "/v1/admin/pending", ["GET"], auth=STAFF.require("risk:read"), page_of="chalicelib.api.schemas:PendingEntry",
       summary="The review queue: every open pending entry of the program, oldest first")
def pending_queue(ctx):
    from chalicelib.services import pending

    page = ctx.query()
    return pending.open_queue(ctx.staff.program_id, page.limit, page.cursor)


@route(bp, "/v1/admin/flags", ["GET"], auth=STAFF.require("risk:read"), page_of="chalicelib.api.schemas:Flag",
       summary="Open flags, oldest first")
def open_flags(ctx):
    from chalicelib.services import flags

    page = ctx.query()
    return flags.queue(ctx.staff.program_id, "open", page.limit, page.cursor)


@route(bp, "/v1/admin/resolved-flags", ["GET"], auth=STAFF.require("risk:read"), page_of="chalicelib.api.schemas:Flag",
       summary="Resolved flags, oldest first")
def resolved_flags(ctx):
    from chalicelib.services import flags

    page = ctx.query()
    return flags.queue(ctx.staff.program_id, "resolved", page.limit, page.cursor)


@route(bp, "/v1/admin/flags/{flag_id}", ["GET"], auth=STAFF.require("risk:read"), response="chalicelib.api.schemas:FlagDetail",
       errors=(404,), summary="A flag with its evidence: the members involved, their orders and refunds")
def read_flag(ctx, flag_id):
    from chalicelib.services import flags

    return flags.read(ctx.staff.program_id, flag_id)


@route(bp, "/v1/admin/flags/{flag_id}/resolve", ["POST"], auth=STAFF.require("risk:review"), body="chalicelib.services.flags:ResolveIn",
       response="chalicelib.api.schemas:Flag", errors=(404, 409), summary="Resolve a flag (confirmed or dismissed) with a reason, once per "
       "request_id")
def resolve_flag(ctx, flag_id):
    from chalicelib.services import flags

    return flags.resolve(ctx.settings, ctx.staff, flag_id, ctx.body())
