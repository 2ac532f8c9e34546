"""Members' rights routes: export, erasure (the member's own, and staff's), consent withdrawal."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, STAFF, route

bp = Blueprint(__name__)


@route(bp, "/v1/members/me/export", ["GET"], auth=MEMBER, response="chalicelib.api.schemas:MemberExport", errors=(404,),
       summary="Everything held about the caller, as one JSON document (PIPL Art. 45)")
def export_mine(ctx):
    from chalicelib.services import privacy

    return privacy.export_mine(ctx.settings, ctx.member)


@route(bp, "/v1/members/me", ["DELETE"], auth=MEMBER, response="chalicelib.api.schemas:Erasure", errors=(404, 409),
       summary="Delete the caller's account (PIPL Art. 47): settle, forfeit, erase; money records kept",
       description="409 `stored_value_not_settled` while stored value (frozen money included) is left: "
                   "it must be refunded or spent first. Asking again resumes an interrupted erasure; "
                   "once done, the old tokens answer 401.")
def erase_mine(ctx):
    from chalicelib.services import privacy

    return privacy.erase_mine(ctx.settings, ctx.member)


@route(bp, "/v1/admin/members/{member_id}", ["DELETE"], auth=STAFF.require("members:erase"), response="chalicelib.api.schemas:Erasure",
       errors=(404, 409), summary="Erase a member whose request reached the merchant another way")
def erase_member(ctx, member_id):
    from chalicelib.services import privacy

    return privacy.erase_by_staff(ctx.settings, ctx.staff, member_id)


@route(bp, "/v1/members/me/subscriptions/{template_id}", ["DELETE"], auth=MEMBER, response="chalicelib.api.schemas:Subscriptions",
       errors=(404,), summary="Withdraw consent for a template's messages: its credits are dropped")
def withdraw_consent(ctx, template_id):
    from chalicelib.services import privacy

    return privacy.withdraw_consent(ctx.settings, ctx.member, template_id)


@route(bp, "/v1/admin/privacy-log", ["GET"], auth=STAFF.require("members:erase"), page_of="chalicelib.api.schemas:PrivacyLogEntry",
       summary="Every export and erasure: when, by whom, of which member id, completed or refused; newest first")
def privacy_log(ctx):
    from chalicelib.services import privacy

    page = ctx.query()
    return privacy.log_page(ctx.staff, page.limit, page.cursor)

