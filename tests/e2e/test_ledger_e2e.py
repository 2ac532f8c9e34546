"""Issue 3 over real HTTP, really in parallel against the local stack."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import uuid

import pytest

from tests.e2e.calls import Http


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _order(order_id, member_id, amount_fen):
    return {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
            "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()}


def _reconcile(http):
    as_of = (dt.date(2040, 1, 1) + dt.timedelta(days=uuid.uuid4().int % 3000)).isoformat()
    report = http.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": as_of}).json()
    assert report["complete"], report
    return report


def test_fifty_concurrent_redemptions_where_ten_fit(http):
    token, member_id = http.enrolled("redeemer-e2e")
    assert http.till("POST", "/v1/orders", _order("o-redeem", member_id, 100_000)).status_code == 201  # 1000 pts

    def redeem(n):
        return http.member("POST", "/v1/members/me/redemptions", token,
                           {"reward_id": "demo-cup", "quantity": 1, "request_id": f"req-{n}"})

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(redeem, range(50)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 10 and statuses.count(409) == 40, statuses
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"insufficient_points"}
    card = http.member("GET", "/v1/members/me", token).json()
    assert card["points"]["available"] == 0
    assert _reconcile(http)["clean"]


def test_one_order_posted_a_hundred_times_awards_once(http):
    token, member_id = http.enrolled("replayer-e2e")
    body = _order("o-hundred", member_id, 12_300)
    with concurrent.futures.ThreadPoolExecutor(25) as pool:
        answers = list(pool.map(lambda _: http.till("POST", "/v1/orders", body), range(100)))
    assert {a.status_code for a in answers} == {201}
    assert {a.json()["points_balance"] for a in answers} == {123}

    refund = {"refund_id": "r-1", "amount_fen": 12_300}
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        refunds = list(pool.map(lambda _: http.till("POST", "/v1/orders/o-hundred/refunds", refund), range(10)))
    assert {r.status_code for r in refunds} == {201} and {r.json()["points_reversed"] for r in refunds} == {123}
    beyond = http.till("POST", "/v1/orders/o-hundred/refunds", {"refund_id": "r-2", "amount_fen": 1})
    assert beyond.status_code == 409
    history = http.member("GET", "/v1/members/me/points/history", token).json()["items"]
    assert [(h["type"], h["points"]) for h in history] == [("reverse", -123), ("earn", 123)]
    assert http.member("GET", "/v1/members/me", token).json()["points"]["available"] == 0
    assert _reconcile(http)["clean"]
