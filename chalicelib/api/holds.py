"""Checkout deduction holds (tills)."""

from chalice import Blueprint

from chalicelib.api.http import TILL, route
from chalicelib.api.schemas import Hold, HoldSettled
from chalicelib.services import holds

bp = Blueprint(__name__)


@route(bp, "/v1/points/holds", ["POST"], auth=TILL, status=201, body=holds.HoldIn, response=Hold,
       errors=(404, 409), summary="Freeze points against an order at checkout")
def place_hold(ctx):
    return holds.place_hold(ctx.settings, ctx.till, ctx.body())


@route(bp, "/v1/points/holds/{hold_id}/capture", ["POST"], auth=TILL, response=HoldSettled, errors=(404, 409),
       summary="Spend a hold's points (the order was paid)")
def capture_hold(ctx, hold_id):
    return holds.settle(ctx.settings, ctx.till.program_id, hold_id, holds.CAPTURED, "checkout deduction captured",
                        ctx.till)


@route(bp, "/v1/points/holds/{hold_id}/release", ["POST"], auth=TILL, response=HoldSettled, errors=(404, 409),
       summary="Give a hold's points back (the checkout was abandoned)")
def release_hold(ctx, hold_id):
    return holds.settle(ctx.settings, ctx.till.program_id, hold_id, holds.RELEASED, "checkout deduction released",
                        ctx.till)
