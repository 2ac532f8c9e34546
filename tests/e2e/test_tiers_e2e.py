"""Issue 4 over real HTTP: the stream lifts a member to 银卡 unasked; concurrent check-ins."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import time

import pytest

from tests.e2e.calls import Http


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _order(http, member_id, order_id, amount_fen):
    answer = http.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
                                              "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_orders_past_1000_growth_show_silver_within_5_seconds_and_earn_x1_2(http):
    token, member_id = http.enrolled("climber-e2e")
    _order(http, member_id, "climb-1", 50_000)
    _order(http, member_id, "climb-2", 50_000)  # growth 1000: only the stream handler acts now
    started = time.monotonic()
    while True:
        card = http.member("GET", "/v1/members/me", token).json()
        if card["tier"]["name"] == "银卡":
            break
        assert time.monotonic() - started < 5, f"still {card['tier']} after 5 s"
        time.sleep(0.1)
    assert _order(http, member_id, "climb-3", 10_000)["points_awarded"] == 120


def test_twenty_concurrent_check_ins_award_once(http):
    token, _ = http.enrolled("checker-e2e")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = [a.json() for a in pool.map(lambda _: http.member("POST", "/v1/members/me/checkin", token),
                                               range(20))]
    assert sum(a["new"] for a in answers) == 1 and sum(a["points_awarded"] for a in answers) == 1
    assert http.member("GET", "/v1/members/me", token).json()["points"]["available"] == 1
