"""Rewards catalogue and redemptions."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, STAFF, route
from chalicelib.services import rewards
from chalicelib.services.members import resolve_member_id

bp = Blueprint(__name__)


@route(bp, "/v1/rewards", ["GET"], auth=MEMBER)
def list_rewards(ctx):
    limit, cursor = ctx.page_limit()
    return rewards.list_rewards(ctx.member.program_id, limit, cursor)


@route(bp, "/v1/members/me/redemptions", ["POST"], auth=MEMBER, status=201)
def redeem(ctx):
    return rewards.redeem(ctx.settings, ctx.member, ctx.body(rewards.RedemptionIn))


@route(bp, "/v1/members/me/redemptions/{redemption_id}/cancel", ["POST"], auth=MEMBER)
def cancel_my_redemption(ctx, redemption_id):
    return rewards.cancel_my_redemption(ctx.settings, ctx.member, redemption_id)


@route(bp, "/v1/admin/rewards", ["GET"], auth=STAFF)
def admin_list_rewards(ctx):
    limit, cursor = ctx.page_limit()
    return rewards.list_rewards(ctx.staff.program_id, limit, cursor, include_inactive=True)


@route(bp, "/v1/admin/rewards/{reward_id}", ["PUT"], auth=STAFF)
def put_reward(ctx, reward_id):
    return rewards.put_reward(ctx.staff.program_id, reward_id, ctx.body(rewards.RewardIn))


@route(bp, "/v1/admin/members/{member_id}/redemptions/{redemption_id}/cancel", ["POST"], auth=STAFF)
def cancel_redemption(ctx, member_id, redemption_id):
    return rewards.cancel_redemption(ctx.settings, ctx.staff.program_id, member_id, redemption_id)
