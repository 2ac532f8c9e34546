"""Member routes: login, enrolment, the card, phone binding."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, PUBLIC, route
from chalicelib.services import members

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
