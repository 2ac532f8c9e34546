"""Rewards catalogue and redemptions."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, STAFF, route

bp = Blueprint(__name__)


@route(bp, "/v1/rewards", ["GET"], auth=MEMBER, page_of="chalicelib.api.schemas:Reward", summary="Rewards on offer")
def list_rewards(ctx):
    from chalicelib.services import rewards

    page = ctx.query()
    return rewards.list_rewards(ctx.member.program_id, page.limit, page.cursor)


@route(bp, "/v1/members/me/redemptions", ["POST"], auth=MEMBER, status=201, body="chalicelib.services.rewards:RedemptionIn",
       response="chalicelib.api.schemas:Redemption", errors=(404, 409), summary="Redeem a reward, once per request_id")
def redeem(ctx):
    from chalicelib.services import rewards

    return rewards.redeem(ctx.settings, ctx.member, ctx.body())


@route(bp, "/v1/members/me/redemptions/{redemption_id}/cancel", ["POST"], auth=MEMBER,
       response="chalicelib.api.schemas:RedemptionCancelled", errors=(404,), summary="Cancel one of the caller's redemptions")
def cancel_my_redemption(ctx, redemption_id):
    from chalicelib.services import rewards

    return rewards.cancel_my_redemption(ctx.settings, ctx.member, redemption_id)


@route(bp, "/v1/admin/rewards", ["GET"], auth=STAFF.require("rewards:read"), page_of="chalicelib.api.schemas:Reward", summary="Every reward, inactive ones too")
def admin_list_rewards(ctx):
    from chalicelib.services import rewards

    page = ctx.query()
    return rewards.list_rewards(ctx.staff.program_id, page.limit, page.cursor, include_inactive=True)


@route(bp, "/v1/admin/rewards/{reward_id}", ["PUT"], auth=STAFF.require("rewards:write"), body="chalicelib.services.rewards:RewardIn", response="chalicelib.api.schemas:Reward",
       summary="Create or replace a reward")
def put_reward(ctx, reward_id):
    from chalicelib.services import rewards

    return rewards.put_reward(ctx.staff.program_id, reward_id, ctx.body())


@route(bp, "/v1/admin/members/{member_id}/redemptions/{redemption_id}/cancel", ["POST"], auth=STAFF.require("redemptions:cancel"),
       response="chalicelib.api.schemas:RedemptionCancelled", errors=(404,), summary="Cancel a member's redemption")
def cancel_redemption(ctx, member_id, redemption_id):
    from chalicelib.services import rewards

    return rewards.cancel_redemption(ctx.settings, ctx.staff.program_id, member_id, redemption_id)
