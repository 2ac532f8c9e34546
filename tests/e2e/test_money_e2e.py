"""Issue 13 over real HTTP on the local stack: top-ups paid through the WeChat Pay stand-in (its
signed notifications reach the API as WeChat Pay's would), stored value at the till, refunds."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from tests.e2e.calls import Http


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _standin(stack, method, path, body=None):
    answer = requests.request(method, f"{stack.wechat}{path}", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _top_up(http, token, request_id, plan_id="sv-100"):
    answer = http.member("POST", "/v1/members/me/top-ups", token, {"plan_id": plan_id, "request_id": request_id})
    assert answer.status_code == 201, answer.text
    return answer.json()["top_up_id"]


def _stored_value(http, token):
    return http.member("GET", "/v1/members/me", token).json()["stored_value_fen"]


def test_a_top_up_credits_once_when_notified_ten_times_at_once(http, stack):
    token, _ = http.enrolled("topper-e2e")
    top_up_id = _top_up(http, token, "first")
    confirmed = _standin(stack, "POST", "/_pay/confirm", {"out_trade_no": top_up_id, "times": 10})
    assert confirmed["deliveries"] == [200] * 10 and confirmed["order"]["trade_state"] == "SUCCESS"
    assert _stored_value(http, token) == 11_000
    history = http.member("GET", "/v1/members/me/stored-value/history", token).json()["items"]
    assert [(h["type"], h["principal_fen"], h["bonus_fen"], h["balance_after_fen"]) for h in history] == [
        ("top_up", 10_000, 1_000, 11_000)]


@pytest.mark.parametrize("variant", ["bad_signature", "stale_timestamp", "wrong_amount"])
def test_forged_stale_and_wrong_amount_notifications_change_nothing(http, stack, variant):
    token, _ = http.enrolled(f"forged-{variant}-e2e")
    top_up_id = _top_up(http, token, "t")
    confirmed = _standin(stack, "POST", "/_pay/confirm", {"out_trade_no": top_up_id, "variant": variant})
    # A retry helps a signature or a timestamp (401: WeChat Pay retries, signed afresh), not an amount.
    assert confirmed["deliveries"] == [200 if variant == "wrong_amount" else 401]
    assert _stored_value(http, token) == 0
    assert http.member("GET", "/v1/members/me/stored-value/history", token).json()["items"] == []


def test_without_a_phone_a_member_at_95000_cannot_top_up_100_yuan(http, stack):
    rules = http.staff("GET", "/v1/admin/program").json()
    plans = rules["stored_value"]["plans"]
    if not any(p["plan_id"] == "sv-950" for p in plans):
        body = {k: v for k, v in rules.items() if k not in ("program_id", "appid")}
        body["stored_value"] = {**rules["stored_value"], "plans": plans + [{"plan_id": "sv-950", "pay_fen": 95_000,
                                                                              "bonus_fen": 0}]}
        assert http.staff("PUT", "/v1/admin/program", body).status_code == 200
    token, _ = http.enrolled("capped-e2e")
    _standin(stack, "POST", "/_pay/confirm", {"out_trade_no": _top_up(http, token, "big", "sv-950")})
    assert _stored_value(http, token) == 95_000
    orders_before = len(_standin(stack, "GET", "/_pay/orders"))
    refused = http.member("POST", "/v1/members/me/top-ups", token, {"plan_id": "sv-100", "request_id": "more"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "balance_cap"
    assert len(_standin(stack, "GET", "/_pay/orders")) == orders_before  # refused before any payment


def test_thirty_concurrent_till_payments_against_ten_thousand_fen(http, stack):
    token, member_id = http.enrolled("payer-e2e")
    _standin(stack, "POST", "/_pay/confirm", {"out_trade_no": _top_up(http, token, "t")})

    def pay(payment_id, amount=1_000):
        return http.till("POST", "/v1/stored-value/payments", {"payment_id": payment_id, "member_id": member_id,
                                                               "order_id": f"sale-{payment_id}", "amount_fen": amount})

    assert pay("warm-up").status_code == 201  # 11000 -> 10000
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(pay, [f"p-{n}" for n in range(30)]))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 10 and statuses.count(409) == 20, statuses
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"insufficient_balance"}
    assert _stored_value(http, token) == 0


def test_refunding_a_top_up_after_spending_part_refunds_the_unspent_principal_once(http, stack):
    token, member_id = http.enrolled("refunder-e2e")
    top_up_id = _top_up(http, token, "t")
    _standin(stack, "POST", "/_pay/confirm", {"out_trade_no": top_up_id})
    spent = http.till("POST", "/v1/stored-value/payments", {"payment_id": "spend", "member_id": member_id,
                                                            "order_id": "sale", "amount_fen": 3_000})
    assert spent.status_code == 201

    def refund(request_id):
        return http.staff("POST", f"/v1/admin/members/{member_id}/top-ups/{top_up_id}/refunds",
                          {"request_id": request_id})

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(refund, ["staff-a", "staff-b"]))
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    done = next(a.json() for a in answers if a.status_code == 201)
    assert (done["refund_fen"], done["bonus_forfeited_fen"], done["status"]) == (7_000, 700, "succeeded")
    refunds = [r for r in _standin(stack, "GET", "/_pay/refunds") if r["out_trade_no"] == top_up_id]
    assert [r["amount"]["refund"] for r in refunds] == [7_000]
    assert _stored_value(http, token) == 300


def test_points_plus_cash_paid_through_wechat_pay_captures_the_held_points(http, stack):
    assert http.staff("PUT", "/v1/admin/rewards/cash-mug-e2e", {"name": "Mug", "points_price": 100, "cash_fen": 990,
                                                                "stock": 10}).status_code == 200
    token, member_id = http.enrolled("cash-e2e")
    assert http.till("POST", "/v1/orders", {"order_id": "o-cash-e2e", "member_id": member_id, "amount_fen": 50_000,
                                            "paid_at": "2026-11-20T12:00:00+08:00"}).status_code == 201
    redeemed = http.member("POST", "/v1/members/me/redemptions", token,
                           {"reward_id": "cash-mug-e2e", "quantity": 1, "request_id": "r-1"})
    assert redeemed.status_code == 201 and redeemed.json()["status"] == "awaiting_payment", redeemed.text
    assert http.member("GET", "/v1/members/me", token).json()["points"]["held"] == 100
    confirmed = _standin(stack, "POST", "/_pay/confirm", {"out_trade_no": redeemed.json()["out_trade_no"], "times": 3})
    assert confirmed["deliveries"] == [200, 200, 200]
    points = http.member("GET", "/v1/members/me", token).json()["points"]
    assert (points["available"], points["held"]) == (400, 0)
    history = http.member("GET", "/v1/members/me/points/history", token).json()["items"]
    assert [h["type"] for h in history[:2]] == ["redeem", "hold"]
