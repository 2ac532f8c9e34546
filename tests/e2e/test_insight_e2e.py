"""Issue 15 over real HTTP: an order reaches the daily report through the local stack's stream."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.e2e.calls import Http


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _today(http) -> dict:
    return http.staff("GET", "/v1/admin/reports/daily").json()["items"][-1]


def test_an_order_reaches_the_daily_report_once(http, stack):
    before = _today(http)
    _, member_id = http.enrolled("insight-e2e")
    answer = http.till("POST", "/v1/orders", {"order_id": "o-insight-e2e", "member_id": member_id,
                                              "amount_fen": 4_200,
                                              "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    assert answer.status_code == 201
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stack.settle()
        now = _today(http)
        if now["orders"] > before["orders"]:
            break
        time.sleep(0.3)
    assert now["orders"] == before["orders"] + 1 and now["sales_fen"] == before["sales_fen"] + 4_200
    assert now["points_outstanding"] >= before["points_outstanding"] + 42
    csv = http.staff("GET", "/v1/admin/reports/daily.csv")
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("date,new_members,active_members")
