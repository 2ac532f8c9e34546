"""Issue 21 over real HTTP: a till's per-minute cap holds exactly under concurrent orders."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import time

import pytest

from tests.e2e.calls import Http


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _put_risk(http, risk):
    view = http.staff("GET", "/v1/admin/program").json()
    version = view.pop("version")
    for fixed in ("program_id", "appid"):
        view.pop(fixed)
    previous = view["risk"]
    answer = http.staff("PUT", "/v1/admin/program", {"version": version, **view, "risk": risk})
    assert answer.status_code == 200, answer.text
    return previous


def test_concurrent_orders_beyond_a_till_cap_are_429_and_write_nothing(http):
    token, member_id = http.enrolled("till-cap-e2e")
    # Start at the beginning of a fresh minute: every order of this test lands in it, and no order of
    # an earlier test (same till key, same stack) is counted against this cap.
    started = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    while dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) == started:
        time.sleep(0.2)
    previous = _put_risk(http, {"till_caps": {"dev-pos": {"orders_per_minute": 15}}})
    try:

        def post(n):
            return http.till("POST", "/v1/orders", {
                "order_id": f"cap-{n}", "member_id": member_id, "amount_fen": 1_000,
                "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(40)))
    finally:
        _put_risk(http, previous)
    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == 15 and statuses.count(429) == 25, statuses
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {"rate_limited"}
    card = http.member("GET", "/v1/members/me", token).json()
    assert card["points"]["available"] == 15 * 10 and card["points"]["pending"] == 0
    history = http.member("GET", "/v1/members/me/points/history?limit=100", token).json()["items"]
    assert len(history) == 15
