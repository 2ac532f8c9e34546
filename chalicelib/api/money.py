"""Money routes: stored-value plans, top-ups and history (member), paying with stored value
(till), refunding a top-up (staff), and WeChat Pay's notifications."""

from chalice import Blueprint

from chalicelib.api.http import MEMBER, STAFF, TILL, WECHATPAY, route

bp = Blueprint(__name__)


@route(bp, "/v1/stored-value/plans", ["GET"], auth=MEMBER, page_of="chalicelib.api.schemas:TopUpPlanView", summary="Top-up plans on sale")
def list_plans(ctx):
    from chalicelib.services import stored_value

    page = ctx.query()
    return stored_value.plans(ctx.settings, ctx.member, page.limit, page.cursor)


@route(bp, "/v1/members/me/top-ups", ["POST"], auth=MEMBER, status=201, body="chalicelib.services.stored_value:TopUpIn", response="chalicelib.api.schemas:TopUp",
       errors=(404, 409), summary="Buy a top-up plan: the WeChat Pay order and wx.requestPayment's pay_params; "
                                  "409 balance_cap before any payment")
def top_up(ctx):
    from chalicelib.services import stored_value

    return stored_value.top_up(ctx.settings, ctx.member, ctx.body())


@route(bp, "/v1/members/me/stored-value/history", ["GET"], auth=MEMBER, page_of="chalicelib.api.schemas:StoredValueEntry", errors=(404,),
       summary="The caller's stored-value changes with the balance after each, newest first")
def my_stored_value_history(ctx):
    from chalicelib.services import stored_value

    page = ctx.query()
    return stored_value.my_history(ctx.member, page.limit, page.cursor)


@route(bp, "/v1/payments/wechat/notify", ["POST"], auth=WECHATPAY, response="chalicelib.api.schemas:WechatPayReply",
       summary="WeChat Pay's payment and refund notifications (signed, encrypted); answered in WeChat Pay's format",
       description="Verified with the platform public key over the raw body, inside a timestamp window, then "
                   "decrypted with the APIv3 key. A payment credits once however often it is notified. Refusals "
                   "are 401 `{\"code\": \"FAIL\", ...}` (WeChat Pay retries); facts a retry cannot change are "
                   "acknowledged and logged.")
def wechat_pay_notify(ctx):
    from chalicelib.services import payments

    return payments.on_notification(ctx.settings, ctx.principal)


@route(bp, "/v1/stored-value/payments", ["POST"], auth=TILL, status=201, body="chalicelib.services.stored_value:PaymentIn",
       response="chalicelib.api.schemas:StoredValuePayment", errors=(404, 409),
       summary="Pay with stored value (or freeze it: `freeze: true`), once per payment_id; 409 insufficient_balance")
def pay_with_stored_value(ctx):
    from chalicelib.services import stored_value

    return stored_value.pay(ctx.settings, ctx.till, ctx.body())


@route(bp, "/v1/stored-value/payments/{payment_id}/capture", ["POST"], auth=TILL, response="chalicelib.api.schemas:StoredValuePayment",
       errors=(404, 409), summary="Take a frozen stored-value payment")
def capture_stored_value_payment(ctx, payment_id):
    from chalicelib.services import stored_value

    return stored_value.settle_payment(ctx.settings, ctx.till, payment_id, stored_value.PAID)


@route(bp, "/v1/stored-value/payments/{payment_id}/release", ["POST"], auth=TILL, response="chalicelib.api.schemas:StoredValuePayment",
       errors=(404, 409), summary="Give a frozen stored-value payment back")
def release_stored_value_payment(ctx, payment_id):
    from chalicelib.services import stored_value

    return stored_value.settle_payment(ctx.settings, ctx.till, payment_id, stored_value.RELEASED)


@route(bp, "/v1/stored-value/payments/{payment_id}/refunds", ["POST"], auth=TILL, status=201,
       body="chalicelib.services.stored_value:PaymentRefundIn", response="chalicelib.api.schemas:StoredValuePaymentRefund", errors=(404, 409),
       summary="Refund a stored-value payment back to stored value, once per refund_id; never beyond the payment")
def refund_stored_value_payment(ctx, payment_id):
    from chalicelib.services import stored_value

    return stored_value.refund_payment(ctx.settings, ctx.till, payment_id, ctx.body())


@route(bp, "/v1/admin/members/{member_id}/stored-value/history", ["GET"], auth=STAFF.require("members:read"),
       page_of="chalicelib.api.schemas:StoredValueEntry", errors=(404,), summary="A member's stored-value changes, newest first")
def member_stored_value_history(ctx, member_id):
    from chalicelib.services import stored_value

    page = ctx.query()
    return stored_value.history(ctx.staff.program_id, member_id, page.limit, page.cursor)


@route(bp, "/v1/admin/members/{member_id}/top-ups/{top_up_id}/refunds", ["POST"],
       auth=STAFF.require("stored_value:refund"), status=201, body="chalicelib.services.payments:TopUpRefundIn", response="chalicelib.api.schemas:TopUpRefund",
       errors=(404, 409), summary="Refund a top-up's unspent principal through WeChat Pay (its bonus forfeited in "
                                  "proportion), once per request_id")
def refund_top_up(ctx, member_id, top_up_id):
    from chalicelib.services import payments

    return payments.refund_top_up(ctx.settings, ctx.staff, member_id, top_up_id, ctx.body())
