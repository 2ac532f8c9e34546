"""Member routes: login, enrolment, the card, phone binding."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, PUBLIC, STAFF, route
from chalicelib.services import checkins, members, notifications, tiers

bp = Blueprint(__name__)


@route(bp, "/v1/auth/login", ["POST"], auth=PUBLIC)
def login(ctx):
    return members.login(ctx.settings, ctx.body(members.LoginIn))


@route(bp, "/v1/members", ["POST"], auth=MEMBER)
def enroll(ctx):
    return members.enroll(ctx.settings, ctx.member, ctx.body(members.EnrollIn))


@route(bp, "/v1/members/me", ["GET"], auth=MEMBER)
def my_card(ctx):
    return members.card(ctx.settings, ctx.member)


@route(bp, "/v1/members/me/phone", ["POST"], auth=MEMBER)
def bind_phone(ctx):
    return members.bind_phone(ctx.settings, ctx.member, ctx.body(members.PhoneIn))


@route(bp, "/v1/members/me", ["PATCH"], auth=MEMBER)
def update_profile(ctx):
    return members.update_profile(ctx.settings, ctx.member, ctx.body(members.ProfileIn))


@route(bp, "/v1/members/me/checkin", ["POST"], auth=MEMBER)
def check_in(ctx):
    return checkins.check_in(ctx.settings, ctx.member)


@route(bp, "/v1/members/me/tiers/history", ["GET"], auth=MEMBER)
def my_tier_history(ctx):
    limit, cursor = ctx.page_limit()
    return tiers.history(ctx.member.program_id, members.resolve_member_id(ctx.member), limit, cursor)


@route(bp, "/v1/admin/members/{member_id}", ["GET"], auth=STAFF)
def member_card(ctx, member_id):
    return members.card_of(ctx.settings, ctx.staff.program_id, member_id)


@route(bp, "/v1/admin/members/{member_id}/tier", ["POST"], auth=STAFF)
def grant_tier(ctx, member_id):
    return tiers.grant(ctx.settings, ctx.staff, member_id, ctx.body(tiers.TierGrantIn))


@route(bp, "/v1/admin/members/{member_id}/tiers/history", ["GET"], auth=STAFF)
def member_tier_history(ctx, member_id):
    limit, cursor = ctx.page_limit()
    return tiers.history(ctx.staff.program_id, member_id, limit, cursor)


@route(bp, "/v1/members/me/subscriptions", ["POST"], auth=MEMBER)
def subscribe(ctx):
    return notifications.subscribe(ctx.settings, ctx.member, ctx.body(notifications.SubscribeIn))
