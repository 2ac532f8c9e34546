"""Refunding a paid membership order (issue 14) through the app (chalice.test.Client on moto), WeChat
Pay through its stand-in (real signed v3 refund requests; the tests post its signed notifications)."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib import clock

NOTIFY = "/v1/payments/wechat/notify"
UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def pay(wechat):
    return wechat.pay


def enrolled(api, openid):
    token = api.enrolled(openid)
    return token, api.member("GET", "/v1/members/me", token).json["member_id"]


def card(api, token):
    return api.member("GET", "/v1/members/me", token).json


def paid_month(api, pay, token, request_id):
    answer = api.member("POST", "/v1/members/me/membership", token, {"plan_id": "svip-month", "request_id": request_id})
    assert answer.status_code == 201, answer.body
    headers, body, _ = pay.payment_notification(answer.json["order_id"])
    assert api.request("POST", NOTIFY, headers=headers, raw=body).status_code == 200
    return answer.json["order_id"]


def refund(api, member_id, order_id, request_id, **extra):
    return api.staff("POST", f"/v1/admin/members/{member_id}/memberships/{order_id}/refunds",
                     {"request_id": request_id, **extra})


def refunds_at_wechat(pay, order_id):
    return [r["amount"]["refund"] for r in pay.refunds.values() if r["out_trade_no"] == order_id]


def entitlement(member_id, order_id):
    from chalicelib.store import keys
    from chalicelib.store.models import MembershipItem

    return MembershipItem.get(*keys.membership("demo", member_id, order_id))


def test_refund_after_ten_days_pays_unused_days_less_the_pack_once(api, pay, monkeypatch):
    token, member_id = enrolled(api, "refunded")
    monkeypatch.setattr(clock, "now", lambda: START)
    order_id = paid_month(api, pay, token, "m1")
    assert card(api, token)["membership"]["until"] == clock.stamp(START + 30 * DAY)
    now = START + 10 * DAY + dt.timedelta(hours=3)
    monkeypatch.setattr(clock, "now", lambda: now)
    answer = refund(api, member_id, order_id, "rq-1")
    assert answer.status_code == 201, answer.body
    # Day 11 has started (used): 19 unused whole days of 30: 1990 x 19 // 30 = 1260, less the first pack
    # (demo-10off, 1000 fen at face value) = 260.
    assert answer.json["refund_fen"] == 260 and answer.json["unused_days"] == 19
    assert answer.json["deducted_fen"] == 1000 and answer.json["status"] == "succeeded"
    assert answer.json["order_id"] == order_id and answer.json["membership_until"] == clock.stamp(now)
    assert card(api, token)["membership"] is None
    assert refunds_at_wechat(pay, order_id) == [260]
    row = entitlement(member_id, order_id)
    assert (row.status, row.ends_at, row.refund_id, row.refunded_days) == (
        "refunded", clock.stamp(now), answer.json["refund_id"], 19)
    # The same request: its first answer; another body under it: 409; another request: nothing left.
    assert (lambda r: (r.status_code, r.json))(refund(api, member_id, order_id, "rq-1")) == (201, answer.json)
    other = refund(api, member_id, order_id, "rq-1", reason="其他")
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_conflict"
    again = refund(api, member_id, order_id, "rq-2")
    assert again.status_code == 409 and again.json["error"]["code"] == "nothing_to_refund"
    assert refunds_at_wechat(pay, order_id) == [260]


def test_unknown_or_another_members_order_is_not_found(api, pay):
    token, member_id = enrolled(api, "owner")
    _, stranger = enrolled(api, "stranger")
    order_id = paid_month(api, pay, token, "m1")
    for who, order in ((stranger, order_id), (member_id, "mbnosuchorder")):
        answer = refund(api, who, order, "rq")
        assert answer.status_code == 404 and answer.json["error"]["code"] == "membership_not_found"
    assert refunds_at_wechat(pay, order_id) == []


def test_a_stacked_renewal_is_refunded_first_and_in_full_before_it_starts(api, pay, monkeypatch):
    token, member_id = enrolled(api, "stacker")
    monkeypatch.setattr(clock, "now", lambda: START)
    first = paid_month(api, pay, token, "a")
    second = paid_month(api, pay, token, "b")  # stacked: from day 30 to day 60
    assert card(api, token)["membership"]["until"] == clock.stamp(START + 60 * DAY)
    monkeypatch.setattr(clock, "now", lambda: START + 5 * DAY)
    blocked = refund(api, member_id, first, "r1")
    assert blocked.status_code == 409 and blocked.json["error"]["code"] == "refund_latest_first"
    later = refund(api, member_id, second, "r2")
    assert later.status_code == 201, later.body
    # Not started: all 30 days unused, no pack granted yet: the whole price.
    assert (later.json["refund_fen"], later.json["deducted_fen"]) == (1990, 0)
    assert card(api, token)["membership"]["until"] == clock.stamp(START + 30 * DAY)
    # Now the first one is the latest: 25 unused days of 30 less its pack.
    earlier = refund(api, member_id, first, "r1")
    assert earlier.status_code == 201 and earlier.json["refund_fen"] == 1990 * 25 // 30 - 1000
    assert card(api, token)["membership"] is None
    assert refunds_at_wechat(pay, second) == [1990] and refunds_at_wechat(pay, first) == [1990 * 25 // 30 - 1000]


def test_a_failed_refund_restores_the_membership_and_staff_can_retry(api, pay, monkeypatch):
    token, member_id = enrolled(api, "failing")
    monkeypatch.setattr(clock, "now", lambda: START)
    order_id = paid_month(api, pay, token, "m1")
    monkeypatch.setattr(clock, "now", lambda: START + 10 * DAY)
    pay.refund_mode = "PROCESSING"
    try:
        pending = refund(api, member_id, order_id, "x")
    finally:
        pay.refund_mode = "SUCCESS"
    assert pending.status_code == 201 and pending.json["status"] == "pending"
    assert card(api, token)["membership"] is None  # cut while the refund is pending
    pay.finish_refund(pending.json["refund_id"], "ABNORMAL")
    headers, body, _ = pay.refund_notification(pending.json["refund_id"])
    for _ in range(2):  # a repeated notification changes nothing more
        assert api.request("POST", NOTIFY, headers=headers, raw=body).status_code == 200
    assert card(api, token)["membership"]["until"] == clock.stamp(START + 30 * DAY)
    assert entitlement(member_id, order_id).status == "active"
    replay = refund(api, member_id, order_id, "x")
    assert replay.json["status"] == "pending"  # the first answer, as every replay
    retried = refund(api, member_id, order_id, "y")
    assert retried.status_code == 201 and (retried.json["status"], retried.json["refund_fen"]) == ("succeeded", 326)
    assert card(api, token)["membership"] is None


def test_a_lost_refund_is_settled_by_the_query_job(api, pay, monkeypatch):
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings
    from chalicelib.wechat import pay as wechat_pay

    token, member_id = enrolled(api, "lost")
    order_id = paid_month(api, pay, token, "m1")
    real_refund = wechat_pay.refund

    def lost(*args, **kwargs):
        raise wechat_pay.WechatPayUnavailable("timed out")

    monkeypatch.setattr(wechat_pay, "refund", lost)
    pending = refund(api, member_id, order_id, "q")
    assert pending.json["status"] == "pending" and refunds_at_wechat(pay, order_id) == []
    monkeypatch.setattr(wechat_pay, "refund", real_refund)
    later = clock.now() + dt.timedelta(minutes=3)
    monkeypatch.setattr(clock, "now", lambda: later)
    run = jobs.run_frequent(get_settings(), wiring.frequent_jobs())["runs"]
    assert {"job": "settle-payments", "queried": 0, "settled": 0, "closed": 0, "refunds_settled": 1} in run
    assert refunds_at_wechat(pay, order_id) == [pending.json["refund_fen"]]
    from chalicelib.store import keys
    from chalicelib.store.models import PayRefundItem

    assert PayRefundItem.get(*keys.pay_refund(pending.json["refund_id"])).status == "succeeded"
    assert card(api, token)["membership"] is None


def test_an_unpaid_order_is_not_refunded(api, pay):
    token, member_id = enrolled(api, "unpaid")
    answer = api.member("POST", "/v1/members/me/membership", token, {"plan_id": "svip-month", "request_id": "u"})
    refused = refund(api, member_id, answer.json["order_id"], "rq")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "membership_not_paid"
    assert refunds_at_wechat(pay, answer.json["order_id"]) == []


def test_a_failed_refund_after_a_new_purchase_gives_the_cut_days_back_after_it(api, pay, monkeypatch):
    token, member_id = enrolled(api, "rebuyer")
    monkeypatch.setattr(clock, "now", lambda: START)
    first = paid_month(api, pay, token, "a")
    now = START + 10 * DAY
    monkeypatch.setattr(clock, "now", lambda: now)
    pay.refund_mode = "PROCESSING"
    try:
        pending = refund(api, member_id, first, "x")
    finally:
        pay.refund_mode = "SUCCESS"
    assert pending.json["membership_until"] == clock.stamp(now)
    paid_month(api, pay, token, "b")  # bought while the refund is pending: from now, 30 days
    assert card(api, token)["membership"]["until"] == clock.stamp(now + 30 * DAY)
    pay.finish_refund(pending.json["refund_id"], "CLOSED")
    headers, body, _ = pay.refund_notification(pending.json["refund_id"])
    assert api.request("POST", NOTIFY, headers=headers, raw=body).status_code == 200
    # The 20 days cut come back after the new purchase's end.
    assert card(api, token)["membership"]["until"] == clock.stamp(now + 50 * DAY)
