"""Stored value and WeChat Pay through the app (chalice.test.Client on moto), with the WeChat Pay
stand-in on a loopback port: real wechatpayv3 requests, real signatures both ways. The stand-in
cannot reach the in-process app, so tests post its signed notifications themselves."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from devstack.wechatpay_keys import DEV_MERCHANT_PUBLIC_KEY

NOTIFY = "/v1/payments/wechat/notify"


@pytest.fixture
def pay(wechat):
    return wechat.pay


@pytest.fixture
def member(api):
    token = api.enrolled("saver")
    return token, api.member("GET", "/v1/members/me", token).json["member_id"]


def top_up(api, token, plan_id="sv-100", request_id="tu-1"):
    return api.member("POST", "/v1/members/me/top-ups", token, {"plan_id": plan_id, "request_id": request_id})


def notify(api, pay, out_trade_no, variant="ok"):
    headers, body, _url = pay.payment_notification(out_trade_no, variant)
    return api.request("POST", NOTIFY, headers=headers, raw=body)


def balance(api, token):
    return api.member("GET", "/v1/members/me", token).json["stored_value_fen"]


def paid_top_up(api, pay, token, plan_id="sv-100", request_id="tu-1"):
    answer = top_up(api, token, plan_id, request_id)
    assert answer.status_code == 201, answer.body
    assert notify(api, pay, answer.json["top_up_id"]).status_code == 200
    return answer.json["top_up_id"]


def test_plans_are_the_programs(api, member):
    token, _ = member
    plans = api.member("GET", "/v1/stored-value/plans", token).json["items"]
    assert plans == [{"plan_id": "sv-100", "pay_fen": 10_000, "bonus_fen": 1_000},
                     {"plan_id": "sv-500", "pay_fen": 50_000, "bonus_fen": 8_000}]
    first = api.member("GET", "/v1/stored-value/plans?limit=1", token).json
    assert [p["plan_id"] for p in first["items"]] == ["sv-100"] and first["next_cursor"]
    rest = api.member("GET", f"/v1/stored-value/plans?limit=1&cursor={first['next_cursor']}", token).json
    assert [p["plan_id"] for p in rest["items"]] == ["sv-500"] and rest["next_cursor"] is None
    assert api.member("GET", "/v1/stored-value/plans?limit=null", token).status_code == 400


def test_top_up_pay_params_are_signed_for_wx_request_payment(api, member, pay):
    token, _ = member
    answer = top_up(api, token)
    assert answer.status_code == 201, answer.body
    params = answer.json["pay_params"]
    assert params["appId"] == "wxdemo0000000000" and params["signType"] == "RSA"
    order = pay.orders[answer.json["top_up_id"]]
    assert params["package"] == f"prepay_id={order['prepay_id']}" and order["amount"]["total"] == 10_000
    message = "\n".join([params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]) + "\n"
    merchant = serialization.load_pem_public_key(DEV_MERCHANT_PUBLIC_KEY.encode())
    merchant.verify(base64.b64decode(params["paySign"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    # The same request_id answers the same; another plan under it is a conflict.
    assert top_up(api, token).json == answer.json
    assert top_up(api, token, plan_id="sv-500").status_code == 409
    assert balance(api, token) == 0


def test_a_payment_credits_once_however_often_it_is_notified(api, member, pay):
    token, _ = member
    top_up_id = top_up(api, token).json["top_up_id"]
    for _ in range(10):
        answer = notify(api, pay, top_up_id)
        assert answer.status_code == 200 and answer.json == {"code": "SUCCESS", "message": "OK"}
    assert balance(api, token) == 11_000
    history = api.member("GET", "/v1/members/me/stored-value/history", token).json["items"]
    assert [(h["type"], h["principal_fen"], h["bonus_fen"], h["balance_after_fen"]) for h in history] == [
        ("top_up", 10_000, 1_000, 11_000)]


@pytest.mark.parametrize(("variant", "status"), [
    ("bad_signature", 401), ("stale_timestamp", 401), ("unknown_serial", 401), ("wrong_amount", 200)])
def test_bad_notifications_credit_nothing(api, member, pay, variant, status):
    token, _ = member
    top_up_id = top_up(api, token).json["top_up_id"]
    answer = notify(api, pay, top_up_id, variant)
    assert answer.status_code == status, answer.body
    assert answer.json["code"] == ("FAIL" if status == 401 else "SUCCESS")
    assert balance(api, token) == 0
    assert api.member("GET", "/v1/members/me/stored-value/history", token).json["items"] == []
    # A tampered body under a good signature is refused too.
    headers, body, _ = pay.payment_notification(top_up_id)
    assert api.request("POST", NOTIFY, headers=headers, raw=body.replace(b"TRANSACTION", b"TRANSACTIOn")).status_code == 401
    assert balance(api, token) == 0


def test_a_top_up_past_the_cap_is_refused_before_any_payment(api, member, pay):
    token, _ = member
    # 58000 + 3 x 11000 = 91000; a fourth sv-100 would make 102000 > 100000 without a phone.
    paid_top_up(api, pay, token, "sv-500", "a")
    for request_id in ("b", "c", "d"):
        paid_top_up(api, pay, token, "sv-100", request_id)
    assert balance(api, token) == 91_000
    orders_before = len(pay.orders)
    refused = top_up(api, token, "sv-100", "e")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "balance_cap"
    assert len(pay.orders) == orders_before  # WeChat Pay never heard of it
    # With a bound phone the cap is 500000.
    api.member("POST", "/v1/members/me/phone", token, {"phone_code": "phone-13800000123"})
    assert top_up(api, token, "sv-100", "e").status_code == 201


def test_till_payments_refunds_and_two_step(api, member, pay):
    token, member_id = member
    paid_top_up(api, pay, token)  # 10000 principal + 1000 bonus

    def till_pay(payment_id, amount, **extra):
        return api.till("POST", "/v1/stored-value/payments", {"payment_id": payment_id, "member_id": member_id,
                                                             "order_id": "sale-1", "amount_fen": amount, **extra})

    first = till_pay("p-1", 10_500)
    assert first.status_code == 201
    assert (first.json["principal_fen"], first.json["bonus_fen"], first.json["stored_value_fen"]) == (10_000, 500, 500)
    assert till_pay("p-1", 10_500).json == first.json  # a replay
    short = till_pay("p-2", 501)
    assert short.status_code == 409 and short.json["error"]["code"] == "insufficient_balance"
    refund = api.till("POST", "/v1/stored-value/payments/p-1/refunds", {"refund_id": "r-1", "amount_fen": 10_200})
    assert refund.status_code == 201 and (refund.json["principal_fen"], refund.json["bonus_fen"]) == (10_000, 200)
    over = api.till("POST", "/v1/stored-value/payments/p-1/refunds", {"refund_id": "r-2", "amount_fen": 301})
    assert over.status_code == 409 and over.json["error"]["code"] == "refund_exceeds_payment"
    assert api.till("POST", "/v1/stored-value/payments/p-1/refunds",
                    {"refund_id": "r-2", "amount_fen": 300}).json["stored_value_fen"] == 11_000
    # Two steps: frozen money is not spendable, then captured or released.
    frozen = till_pay("p-3", 4_000, freeze=True)
    assert frozen.json["status"] == "frozen" and balance(api, token) == 7_000
    assert api.till("POST", "/v1/stored-value/payments/p-3/release").json["status"] == "released"
    assert balance(api, token) == 11_000
    till_pay("p-4", 1_000, freeze=True)
    captured = api.till("POST", "/v1/stored-value/payments/p-4/capture")
    assert captured.json["status"] == "paid" and captured.json["stored_value_fen"] == 10_000
    assert api.till("POST", "/v1/stored-value/payments/p-4/release").status_code == 409
    # A frozen payment nobody settles goes back after the program's hold time (30 minutes).
    till_pay("p-5", 2_000, freeze=True)
    assert balance(api, token) == 8_000
    from chalicelib import clock, jobs, wiring
    from chalicelib.settings import get_settings

    later = clock.now() + dt.timedelta(minutes=31)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: later)
        run = jobs.run_frequent(get_settings(), wiring.frequent_jobs())["runs"]
    assert {"job": "release-frozen-payments", "released": 1} in run
    assert balance(api, token) == 10_000
    types = [h["type"] for h in api.member("GET", "/v1/members/me/stored-value/history", token).json["items"]]
    assert types == ["release", "freeze", "capture", "freeze", "release", "freeze", "payment_refund", "payment_refund",
                     "payment", "top_up"]


def test_refunding_a_top_up_pays_back_the_unspent_principal_once(api, member, pay):
    token, member_id = member
    top_up_id = paid_top_up(api, pay, token)
    api.till("POST", "/v1/stored-value/payments", {"payment_id": "p-1", "member_id": member_id, "order_id": "s",
                                                   "amount_fen": 3_000})
    path = f"/v1/admin/members/{member_id}/top-ups/{top_up_id}/refunds"
    refund = api.staff("POST", path, {"request_id": "rq-1"})
    assert refund.status_code == 201, refund.body
    assert refund.json["refund_fen"] == 7_000 and refund.json["bonus_forfeited_fen"] == 700
    assert refund.json["status"] == "succeeded" and refund.json["stored_value_fen"] == 300
    assert [r["amount"]["refund"] for r in pay.refunds.values() if r["out_trade_no"] == top_up_id] == [7_000]
    api.till("POST", "/v1/stored-value/payments", {"payment_id": "p-2", "member_id": member_id, "order_id": "t",
                                                   "amount_fen": 100})
    # The same request: the same refund, and its first answer (not the wallet as it is now).
    replayed = api.staff("POST", path, {"request_id": "rq-1"})
    assert (replayed.status_code, replayed.json) == (201, refund.json)
    again = api.staff("POST", path, {"request_id": "rq-2"})
    assert again.status_code == 409 and again.json["error"]["code"] == "nothing_to_refund"
    assert len([r for r in pay.refunds.values() if r["out_trade_no"] == top_up_id]) == 1


def test_a_failed_refund_gives_the_money_back(api, member, pay):
    token, member_id = member
    top_up_id = paid_top_up(api, pay, token)
    pay.refund_mode = "PROCESSING"
    try:
        pending = api.staff("POST", f"/v1/admin/members/{member_id}/top-ups/{top_up_id}/refunds", {"request_id": "x"})
    finally:
        pay.refund_mode = "SUCCESS"
    assert pending.json["status"] == "pending" and pending.json["stored_value_fen"] == 0
    no = pending.json["refund_id"]
    pay.finish_refund(no, "ABNORMAL")
    headers, body, _ = pay.refund_notification(no)
    assert api.request("POST", NOTIFY, headers=headers, raw=body).status_code == 200
    assert balance(api, token) == 11_000
    types = [h["type"] for h in api.member("GET", "/v1/members/me/stored-value/history", token).json["items"]]
    assert types == ["refund_failed", "refund_pending", "top_up"]


def test_the_frequent_job_settles_unnotified_orders_and_closes_timed_out_ones(api, member, pay, monkeypatch):
    from chalicelib import clock, jobs, wiring
    from chalicelib.settings import get_settings

    token, _ = member
    paid = top_up(api, token, request_id="paid").json["top_up_id"]
    unpaid = top_up(api, token, request_id="unpaid").json["top_up_id"]
    pay.pay(paid)  # paid at WeChat Pay; the notification never comes
    later = clock.now() + dt.timedelta(minutes=6)
    monkeypatch.setattr(clock, "now", lambda: later)
    run = jobs.run_frequent(get_settings(), wiring.frequent_jobs())["runs"]
    assert {"job": "settle-payments", "queried": 2, "settled": 1, "closed": 0, "refunds_settled": 0} in run
    assert balance(api, token) == 11_000
    much_later = later + dt.timedelta(minutes=30)
    monkeypatch.setattr(clock, "now", lambda: much_later)
    run = jobs.run_frequent(get_settings(), wiring.frequent_jobs())["runs"]
    assert {"job": "settle-payments", "queried": 1, "settled": 0, "closed": 1, "refunds_settled": 0} in run
    assert pay.orders[unpaid]["trade_state"] == "CLOSED"
    assert balance(api, token) == 11_000


def test_daily_reconciliation_and_liability(api, member, pay):
    token, member_id = member
    paid_top_up(api, pay, token)
    api.till("POST", "/v1/stored-value/payments", {"payment_id": "p-1", "member_id": member_id, "order_id": "s",
                                                   "amount_fen": 10_500})
    unnotified = top_up(api, token, request_id="quiet").json["top_up_id"]
    pay.pay(unnotified)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    run = api.staff("POST", "/v1/admin/jobs/reconcile-payments/runs", {"as_of": today}).json
    assert run["orders_checked"] == 2
    assert [m["out_trade_no"] for m in run["mismatches"]] == [unnotified]
    liability = api.staff("POST", "/v1/admin/jobs/stored-value-liability/runs", {"as_of": today}).json
    assert (liability["principal_fen"], liability["bonus_fen"]) == (0, 500)


def test_points_plus_cash_holds_points_until_paid_and_releases_them_when_not(api, member, pay, monkeypatch):
    from chalicelib import clock, jobs, wiring
    from chalicelib.settings import get_settings

    token, member_id = member
    assert api.staff("PUT", "/v1/admin/rewards/cash-mug", {"name": "Mug", "points_price": 100, "cash_fen": 990,
                                                           "stock": 5}).status_code == 200
    api.till("POST", "/v1/orders", {"order_id": "o-1", "member_id": member_id, "amount_fen": 50_000,
                                    "paid_at": "2026-11-20T12:00:00+08:00"})

    def redeem(request_id):
        return api.member("POST", "/v1/members/me/redemptions", token,
                          {"reward_id": "cash-mug", "quantity": 1, "request_id": request_id})

    def points():
        return api.member("GET", "/v1/members/me", token).json["points"]

    first = redeem("paid")
    assert first.status_code == 201, first.body
    assert first.json["status"] == "awaiting_payment" and first.json["cash_fen"] == 990
    assert first.json["pay_params"]["package"].startswith("prepay_id=")
    assert redeem("paid").json == first.json
    assert points()["available"] == 400 and points()["held"] == 100
    assert pay.orders[first.json["out_trade_no"]]["amount"]["total"] == 990
    assert api.member("POST", f"/v1/members/me/redemptions/{first.json['redemption_id']}/cancel",
                      token).status_code == 409  # not while the cash part may still be paid
    assert notify(api, pay, first.json["out_trade_no"]).status_code == 200
    assert notify(api, pay, first.json["out_trade_no"]).status_code == 200
    assert points()["available"] == 400 and points()["held"] == 0
    history = api.member("GET", "/v1/members/me/points/history", token).json["items"]
    assert [(h["type"], h["points"]) for h in history[:2]] == [("redeem", 0), ("hold", -100)]

    unpaid = redeem("unpaid").json
    assert points()["available"] == 300 and points()["held"] == 100
    later = clock.now() + dt.timedelta(minutes=31)
    monkeypatch.setattr(clock, "now", lambda: later)
    run = jobs.run_frequent(get_settings(), wiring.frequent_jobs())["runs"]
    assert {"job": "settle-payments", "queried": 1, "settled": 0, "closed": 1, "refunds_settled": 0} in run
    assert points()["available"] == 400 and points()["held"] == 0
    assert pay.orders[unpaid["out_trade_no"]]["trade_state"] == "CLOSED"
    mug = next(r for r in api.staff("GET", "/v1/admin/rewards").json["items"] if r["reward_id"] == "cash-mug")
    assert mug["stock"] == 4  # one sold, one back on the shelf
    report = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": "2040-01-01"}).json
    assert report["clean"], report


def test_the_wechat_pay_dev_keys_are_refused_outside_local():
    """Outside local a WeChat Pay credential is absent unless the function is given one (using it
    fails), and the stand-in's dev credentials are refused when given."""
    from pydantic import ValidationError

    from chalicelib import settings as settings_module
    from chalicelib.settings import Settings
    from chalicelib.wechatpay_dev_keys import DEV_MERCHANT_PRIVATE_KEY, DEV_PLATFORM_PUBLIC_KEY

    others = {"token_secret": "x" * 40, "data_key": "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=",
              "lookup_key": "y" * 40, "wechat_api_base": "https://api.weixin.qq.com",
              "wechatpay_api_base": "https://api.mch.weixin.qq.com"}
    absent = Settings(stage="prod", **others)
    assert absent.wechatpay_apiv3_key is None
    with pytest.raises(RuntimeError):
        absent.secret("wechatpay_apiv3_key")
    dev = {"wechatpay_apiv3_key": settings_module.DEV_WECHATPAY_APIV3_KEY,
           "wechatpay_merchant_private_key": DEV_MERCHANT_PRIVATE_KEY, "wechatpay_public_key": DEV_PLATFORM_PUBLIC_KEY,
           "wechatpay_public_key_id": settings_module.DEV_WECHATPAY_PUBLIC_KEY_ID,
           "wechatpay_mchid": settings_module.DEV_WECHATPAY_MCHID}
    with pytest.raises(ValidationError) as refused:
        Settings(stage="prod", **others, **dev)
    for name in dev:
        assert name in str(refused.value)


def test_a_notification_with_odd_headers_or_body_is_a_401_never_a_500(api, member, pay):
    token, _ = member
    headers, body, _ = pay.payment_notification(top_up(api, token).json["top_up_id"])
    for changed in ({"Wechatpay-Serial": "é"}, {"Wechatpay-Timestamp": "１２"}, {"Wechatpay-Signature-Type": "HMAC"},
                    {"Wechatpay-Signature": "not base64!"}):
        answer = api.request("POST", NOTIFY, headers={**headers, **changed}, raw=body)
        assert answer.status_code == 401 and answer.json["code"] == "FAIL", (changed, answer.body)
    assert api.request("POST", NOTIFY, headers=headers, raw=b"\xff\xfe").status_code == 401
    assert balance(api, token) == 0


def test_a_refund_whose_request_was_lost_is_asked_again_until_final(api, member, pay, monkeypatch):
    from chalicelib import clock, jobs, wiring
    from chalicelib.settings import get_settings
    from chalicelib.wechat import pay as wechat_pay

    token, member_id = member
    top_up_id = paid_top_up(api, pay, token)
    real_refund = wechat_pay.refund

    def lost(*args, **kwargs):
        raise wechat_pay.WechatPayUnavailable("timed out")

    monkeypatch.setattr(wechat_pay, "refund", lost)
    pending = api.staff("POST", f"/v1/admin/members/{member_id}/top-ups/{top_up_id}/refunds", {"request_id": "lost"})
    assert pending.status_code == 201 and pending.json["status"] == "pending"
    ours = lambda: [r["amount"]["refund"] for r in pay.refunds.values() if r["out_trade_no"] == top_up_id]  # noqa: E731
    assert balance(api, token) == 0 and ours() == []  # frozen; WeChat Pay never heard of it
    monkeypatch.setattr(wechat_pay, "refund", real_refund)
    later = clock.now() + dt.timedelta(minutes=3)
    monkeypatch.setattr(clock, "now", lambda: later)
    run = jobs.run_frequent(get_settings(), wiring.frequent_jobs())["runs"]
    assert {"job": "settle-payments", "queried": 0, "settled": 0, "closed": 0, "refunds_settled": 1} in run
    assert ours() == [10_000]
    assert [h["type"] for h in api.member("GET", "/v1/members/me/stored-value/history", token).json["items"]] == [
        "refund", "refund_pending", "top_up"]


def test_settling_a_frozen_payment_again_answers_as_the_first_time(api, member, pay):
    """Regression (found by tests/integration/test_chaos_money.py): a capture or release sent again
    (a till's retry after a lost answer) answered with the member's balance of the moment, not
    the first answer's."""
    token, member_id = member
    paid_top_up(api, pay, token)  # 11000

    def till_pay(payment_id, amount, **extra):
        return api.till("POST", "/v1/stored-value/payments", {"payment_id": payment_id, "member_id": member_id,
                                                             "order_id": "sale-1", "amount_fen": amount, **extra})

    till_pay("p-1", 1_000, freeze=True)
    till_pay("p-2", 2_000, freeze=True)
    captured = api.till("POST", "/v1/stored-value/payments/p-1/capture")
    released = api.till("POST", "/v1/stored-value/payments/p-2/release")
    assert (captured.json["stored_value_fen"], released.json["stored_value_fen"]) == (8_000, 10_000)
    one_step = till_pay("p-3", 500)  # the balance moves on: 9500
    assert api.till("POST", "/v1/stored-value/payments/p-1/capture").json == captured.json
    assert api.till("POST", "/v1/stored-value/payments/p-2/release").json == released.json
    # A payment made in one step, "captured": its own answer, before and after a refund of it.
    assert api.till("POST", "/v1/stored-value/payments/p-3/capture").json == one_step.json
    assert api.till("POST", "/v1/stored-value/payments/p-3/refunds", {"refund_id": "r-1", "amount_fen": 500}).status_code == 201
    assert api.till("POST", "/v1/stored-value/payments/p-3/capture").json == one_step.json
    assert balance(api, token) == 10_000
