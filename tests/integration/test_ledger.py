"""Accrual, refunds, debt, adjustments and history through the API."""

from __future__ import annotations

import datetime as dt

import pytest

PAID_AT = "2026-11-20T12:00:00+08:00"


def order(order_id, member_id, amount_fen, paid_at=PAID_AT, **extra):
    return {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen, "paid_at": paid_at, **extra}


@pytest.fixture
def alice(api):
    token = api.enrolled("alice")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    return token, member_id


def test_accrual_awards_once_and_replays_the_first_answer(api, alice):
    token, member_id = alice
    first = api.till("POST", "/v1/orders", order("o-1", member_id, 12_345))
    assert first.status_code == 201
    assert first.json == {"order_id": "o-1", "member_id": member_id, "points_awarded": 123,
                          "growth_awarded": 123, "points_balance": 123, "points_pending": 0,
                          "pending_reason": None}
    for _ in range(3):
        again = api.till("POST", "/v1/orders", order("o-1", member_id, 12_345))
        assert again.status_code == 201 and again.json == first.json
    different = api.till("POST", "/v1/orders", order("o-1", member_id, 99_900))
    assert different.status_code == 409 and different.json["error"]["code"] == "idempotency_conflict"

    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == 123 and card["growth"] == 123
    assert len(card["points"]["expiring"]) == 1 and card["points"]["expiring"][0]["points"] == 123


def test_bad_orders_are_400_and_change_nothing(api, alice):
    _, member_id = alice
    for bad in (order("o-2", member_id, -1), order("o-2", member_id, "100"), order("o-2", member_id, 1.5),
                order("o-2", member_id, 100, paid_at="2026-11-20T12:00:00"), {"order_id": "o-2"},
                order("o-2", member_id, 100, extra_field=1)):
        answer = api.till("POST", "/v1/orders", bad)
        assert answer.status_code == 400, bad
        assert answer.json["error"]["code"] == "invalid_request"
    unknown = api.till("POST", "/v1/orders", order("o-3", "nobody", 100))
    assert unknown.status_code == 404


def test_refunds_are_proportional_exact_on_full_refund_and_never_exceed(api, alice):
    token, member_id = alice
    api.till("POST", "/v1/orders", order("o-1", member_id, 10_000))  # 100 points
    first = api.till("POST", "/v1/orders/o-1/refunds", {"refund_id": "r-1", "amount_fen": 3_333})
    assert first.status_code == 201 and first.json["points_reversed"] == 33
    replay = api.till("POST", "/v1/orders/o-1/refunds", {"refund_id": "r-1", "amount_fen": 3_333})
    assert replay.json == first.json
    rest = api.till("POST", "/v1/orders/o-1/refunds", {"refund_id": "r-2", "amount_fen": 6_667})
    assert rest.json["points_reversed"] == 67 and rest.json["points_balance"] == 0
    beyond = api.till("POST", "/v1/orders/o-1/refunds", {"refund_id": "r-3", "amount_fen": 1})
    assert beyond.status_code == 409 and beyond.json["error"]["code"] == "refund_exceeds_order"
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 0
    missing = api.till("POST", "/v1/orders/nope/refunds", {"refund_id": "r-1", "amount_fen": 1})
    assert missing.status_code == 404


def test_earn_spend_full_refund_leaves_debt_that_the_next_order_repays(api, alice):
    token, member_id = alice
    api.till("POST", "/v1/orders", order("o-1", member_id, 10_000))
    spent = api.staff("POST", f"/v1/admin/members/{member_id}/adjustments",
                      {"points": -80, "reason": "redeemed at the counter", "request_id": "adj-1"})
    assert spent.status_code == 201 and spent.json["points_balance"] == 20
    refund = api.till("POST", "/v1/orders/o-1/refunds", {"refund_id": "r-1", "amount_fen": 10_000})
    assert refund.json["points_reversed"] == 100
    assert refund.json["points_balance"] == -80 and refund.json["points_debt"] == 80
    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == -80 and card["points"]["debt"] == 80

    repay = api.till("POST", "/v1/orders", order("o-2", member_id, 20_000))
    assert repay.json["points_awarded"] == 200 and repay.json["points_balance"] == 120
    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == 120 and card["points"]["debt"] == 0

    history = api.member("GET", "/v1/members/me/points/history", token).json["items"]
    assert [(h["type"], h["points"], h["balance_after"]) for h in history] == [
        ("earn", 200, 120), ("reverse", -100, -80), ("adjust", -80, 20), ("earn", 100, 100)]
    assert all(h["reason"] and h["ref"] for h in history)


def test_negative_adjustment_beyond_balance_is_409(api, alice):
    _, member_id = alice
    answer = api.staff("POST", f"/v1/admin/members/{member_id}/adjustments",
                       {"points": -1, "reason": "oops", "request_id": "adj-x"})
    assert answer.status_code == 409 and answer.json["error"]["code"] == "insufficient_points"


def test_history_pages_newest_first(api, alice):
    token, member_id = alice
    for n in range(5):
        api.till("POST", "/v1/orders", order(f"o-{n}", member_id, 100 * (n + 1)))
    page = api.member("GET", "/v1/members/me/points/history?limit=2", token).json
    assert [i["ref"] for i in page["items"]] == ["o-4", "o-3"] and page["next_cursor"]
    rest = api.member("GET", f"/v1/members/me/points/history?limit=10&cursor={page['next_cursor']}", token).json
    assert [i["ref"] for i in rest["items"]] == ["o-2", "o-1", "o-0"] and rest["next_cursor"] is None
    admin = api.staff("GET", f"/v1/admin/members/{member_id}/points/history").json
    assert len(admin["items"]) == 5
    assert api.member("GET", "/v1/members/me/points/history?limit=0", token).status_code == 400
