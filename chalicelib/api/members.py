"""Member routes: login, enrolment, the card, phone binding."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, PUBLIC, STAFF, route

bp = Blueprint(__name__)


@route(bp, "/v1/auth/login", ["POST"], auth=PUBLIC, body="chalicelib.services.members:LoginIn", response="chalicelib.api.schemas:Login", errors=(401, 404),
       summary="Exchange a wx.login code for a member token")
def login(ctx):
    from chalicelib.services import members

    return members.login(ctx.settings, ctx.body())


@route(bp, "/v1/members", ["POST"], auth=MEMBER, status=201, also=(200,), body="chalicelib.services.members:EnrollIn",
       response="chalicelib.api.schemas:MemberCard", errors=(404,), summary="Enrol (201), or the existing card (200) if already a member")
def enroll(ctx):
    from chalicelib.services import members

    return members.enroll(ctx.settings, ctx.member, ctx.body())


@route(bp, "/v1/members/me", ["GET"], auth=MEMBER, response="chalicelib.api.schemas:MemberCard", errors=(404,),
       summary="The caller's member card")
def my_card(ctx):
    from chalicelib.services import members

    return members.card(ctx.settings, ctx.member)


@route(bp, "/v1/members/me/phone", ["POST"], auth=MEMBER, body="chalicelib.services.members:PhoneIn", response="chalicelib.api.schemas:MemberCard",
       errors=(404, 409), summary="Bind the phone number from getPhoneNumber (shown masked)")
def bind_phone(ctx):
    from chalicelib.services import members

    return members.bind_phone(ctx.settings, ctx.member, ctx.body())


@route(bp, "/v1/members/me", ["PATCH"], auth=MEMBER, body="chalicelib.services.members:ProfileIn", response="chalicelib.api.schemas:MemberCard",
       errors=(404, 409), summary="Change the nickname; set the birthday once")
def update_profile(ctx):
    from chalicelib.services import members

    return members.update_profile(ctx.settings, ctx.member, ctx.body())


@route(bp, "/v1/members/me/checkin", ["POST"], auth=MEMBER, response="chalicelib.api.schemas:CheckIn", errors=(404,),
       summary="Check in for today (once a day)")
def check_in(ctx):
    from chalicelib.services import checkins

    return checkins.check_in(ctx.settings, ctx.member)


@route(bp, "/v1/members/me/tiers/history", ["GET"], auth=MEMBER, page_of="chalicelib.api.schemas:TierChange", errors=(404,),
       summary="The caller's tier moves, newest first")
def my_tier_history(ctx):
    from chalicelib.services import members, tiers

    page = ctx.query()
    return tiers.history(ctx.member.program_id, members.resolve_member_id(ctx.member), page.limit, page.cursor)


@route(bp, "/v1/admin/members/{member_id}", ["GET"], auth=STAFF.require("members:read"), response="chalicelib.api.schemas:MemberCard", errors=(404,),
       summary="A member's card")
def member_card(ctx, member_id):
    from chalicelib.services import members

    return members.card_of(ctx.settings, ctx.staff.program_id, member_id)


@route(bp, "/v1/admin/members/{member_id}/tier", ["POST"], auth=STAFF.require("tiers:grant"), body="chalicelib.services.tiers:TierGrantIn",
       response="chalicelib.api.schemas:TierGrant", errors=(404,), summary="Grant a tier floor until a day")
def grant_tier(ctx, member_id):
    from chalicelib.services import tiers

    return tiers.grant(ctx.settings, ctx.staff, member_id, ctx.body())


@route(bp, "/v1/admin/members/{member_id}/tiers/history", ["GET"], auth=STAFF.require("members:read"), page_of="chalicelib.api.schemas:TierChange",
       errors=(404,), summary="A member's tier moves, newest first")
def member_tier_history(ctx, member_id):
    from chalicelib.services import tiers

    page = ctx.query()
    return tiers.history(ctx.staff.program_id, member_id, page.limit, page.cursor)


@route(bp, "/v1/members/me/subscriptions", ["POST"], auth=MEMBER, body="chalicelib.services.notifications:SubscribeIn",
       response="chalicelib.api.schemas:Subscriptions", errors=(404,), summary="Record the templates wx.requestSubscribeMessage accepted")
def subscribe(ctx):
    from chalicelib.services import notifications

    return notifications.subscribe(ctx.settings, ctx.member, ctx.body())
