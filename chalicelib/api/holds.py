"""Checkout deduction holds (tills)."""

from chalice import Blueprint

from chalicelib.api.http import TILL, route
from chalicelib.services import holds

bp = Blueprint(__name__)


@route(bp, "/v1/points/holds", ["POST"], auth=TILL, status=201)
def place_hold(ctx):
    return holds.place_hold(ctx.settings, ctx.till, ctx.body(holds.HoldIn))


@route(bp, "/v1/points/holds/{hold_id}/capture", ["POST"], auth=TILL)
def capture_hold(ctx, hold_id):
    return holds.settle(ctx.settings, ctx.till.program_id, hold_id, holds.CAPTURED, "checkout deduction captured")


@route(bp, "/v1/points/holds/{hold_id}/release", ["POST"], auth=TILL)
def release_hold(ctx, hold_id):
    return holds.settle(ctx.settings, ctx.till.program_id, hold_id, holds.RELEASED, "checkout deduction released")
