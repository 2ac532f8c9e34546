"""Rewards catalogue, redemptions and cancellation through the API."""

from __future__ import annotations

import pytest

PAID_AT = "2026-11-20T12:00:00+08:00"


@pytest.fixture
def rich(api):
    """A member with 1000 points."""
    token = api.enrolled("rich")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    answer = api.till("POST", "/v1/orders", {"order_id": "o-rich", "member_id": member_id,
                                              "amount_fen": 100_000, "paid_at": PAID_AT})
    assert answer.json["points_balance"] == 1000
    return token, member_id


def redeem(api, token, request_id, reward_id="demo-cup", quantity=1):
    return api.member("POST", "/v1/members/me/redemptions", token,
                      {"reward_id": reward_id, "quantity": quantity, "request_id": request_id})


def test_catalogue_lists_the_demo_cup(api, rich):
    token, _ = rich
    page = api.member("GET", "/v1/rewards", token).json
    assert {"reward_id": "demo-cup", "name": "Demo cup", "points_price": 100, "cash_fen": 0,
            "stock": 1000}.items() <= page["items"][0].items()
    assert page["next_cursor"] is None


def test_redeem_spends_points_and_stock_once(api, rich):
    token, _ = rich
    first = redeem(api, token, "req-1", quantity=3)
    assert first.status_code == 201
    assert first.json["points_spent"] == 300 and first.json["points_balance"] == 700
    assert first.json["redemption_id"] == "rd-req-1"
    assert redeem(api, token, "req-1", quantity=3).json == first.json
    assert redeem(api, token, "req-1", quantity=2).status_code == 409
    stock = api.member("GET", "/v1/rewards", token).json["items"][0]["stock"]
    assert stock == 997
    history = api.member("GET", "/v1/members/me/points/history", token).json["items"]
    assert (history[0]["type"], history[0]["points"], history[0]["balance_after"]) == ("redeem", -300, 700)


def test_insufficient_points_out_of_stock_and_limits(api, rich):
    token, _ = rich
    too_many = redeem(api, token, "req-big", quantity=11)
    assert too_many.status_code == 409 and too_many.json["error"]["code"] == "insufficient_points"
    api.staff("PUT", "/v1/admin/rewards/rare", {"name": "Rare", "points_price": 10, "stock": 1,
                                                "per_member_limit": 1})
    assert redeem(api, token, "req-r1", "rare").status_code == 201
    out = redeem(api, token, "req-r2", "rare")
    assert out.status_code == 409 and out.json["error"]["code"] == "out_of_stock"
    api.staff("PUT", "/v1/admin/rewards/rare", {"name": "Rare", "points_price": 10, "stock": 5,
                                                "per_member_limit": 1})
    limited = redeem(api, token, "req-r3", "rare")
    assert limited.status_code == 409 and limited.json["error"]["code"] == "limit_reached"
    assert redeem(api, token, "req-x", "no-such").status_code == 404
    balance = api.member("GET", "/v1/members/me", token).json["points"]["available"]
    assert balance == 990


def test_cancel_returns_points_to_their_lots_and_stock_once(api, rich):
    token, member_id = rich
    redeem(api, token, "req-1", quantity=2)
    cancelled = api.member("POST", "/v1/members/me/redemptions/rd-req-1/cancel", token)
    assert cancelled.status_code == 200
    assert cancelled.json["points_returned"] == 200 and cancelled.json["points_balance"] == 1000
    again = api.member("POST", "/v1/members/me/redemptions/rd-req-1/cancel", token)
    assert again.json["points_balance"] == 1000
    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == 1000 and card["points"]["expiring"][0]["points"] == 1000
    assert api.member("GET", "/v1/rewards", token).json["items"][0]["stock"] == 1000
    other = api.enrolled("other")
    assert api.member("POST", "/v1/members/me/redemptions/rd-req-1/cancel", other).status_code == 404
    history = api.member("GET", "/v1/members/me/points/history", token).json["items"]
    assert [(h["type"], h["points"]) for h in history[:2]] == [("reverse", 200), ("redeem", -200)]


def test_redemption_refused_while_in_debt(api, rich):
    token, member_id = rich
    redeem(api, token, "req-1", quantity=10)
    api.till("POST", "/v1/orders/o-rich/refunds", {"refund_id": "r-1", "amount_fen": 100_000})
    api.till("POST", "/v1/orders", {"order_id": "o-2", "member_id": member_id, "amount_fen": 50_000,
                                    "paid_at": PAID_AT})
    assert api.member("GET", "/v1/members/me", token).json["points"]["debt"] == 500
    refused = redeem(api, token, "req-2")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "insufficient_points"
