"""Checkout deduction holds (tills)."""

from chalice import Blueprint

from chalicelib.api.http import TILL, route

bp = Blueprint(__name__)


@route(bp, "/v1/points/holds", ["POST"], auth=TILL, status=201, body="chalicelib.services.holds:HoldIn", response="chalicelib.api.schemas:Hold",
       errors=(404, 409), summary="Freeze points against an order at checkout")
def place_hold(ctx):
    from chalicelib.services import holds

    return holds.place_hold(ctx.settings, ctx.till, ctx.body())


@route(bp, "/v1/points/holds/{hold_id}/capture", ["POST"], auth=TILL, response="chalicelib.api.schemas:HoldSettled", errors=(404, 409),
       summary="Spend a hold's points (the order was paid)")
def capture_hold(ctx, hold_id):
    from chalicelib.services import holds

    return holds.settle(ctx.settings, ctx.till.program_id, hold_id, holds.CAPTURED, "checkout deduction captured",
                        ctx.till)


@route(bp, "/v1/points/holds/{hold_id}/release", ["POST"], auth=TILL, response="chalicelib.api.schemas:HoldSettled", errors=(404, 409),
       summary="Give a hold's points back (the checkout was abandoned)")
def release_hold(ctx, hold_id):
    from chalicelib.services import holds

    return holds.settle(ctx.settings, ctx.till.program_id, hold_id, holds.RELEASED, "checkout deduction released",
                        ctx.till)
