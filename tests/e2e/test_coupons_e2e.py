"""Coupons over real HTTP, really in parallel, against the local stack (issue 12's "Done when")."""

from __future__ import annotations

import concurrent.futures
import uuid

import pytest

from tests.e2e.calls import Http


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _template(http, template_id, **fields):
    body = {"name": "e2e 5 off", "kind": "amount_off", "off_fen": 500, "valid_days": 30, "claimable": True, **fields}
    answer = http.staff("PUT", f"/v1/admin/coupon-templates/{template_id}", body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _claim(http, token, template_id, request_id):
    return http.member("POST", "/v1/members/me/coupons", token, {"template_id": template_id, "request_id": request_id})


def test_a_hundred_concurrent_claims_for_ten_left_issue_exactly_ten(http):
    _template(http, "e2e-ten", total=10)
    members = [http.enrolled(f"cp-stock-{n}") for n in range(20)]
    calls = [(members[n % 20][0], f"stock-{n}") for n in range(100)]
    with concurrent.futures.ThreadPoolExecutor(25) as pool:
        answers = list(pool.map(lambda c: _claim(http, c[0], "e2e-ten", c[1]), calls))
    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == 10 and statuses.count(409) == 90, sorted(statuses)
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"out_of_stock"}
    assert len({a.json()["code"] for a in answers if a.status_code == 201}) == 10
    template = http.staff("GET", "/v1/admin/coupon-templates/e2e-ten").json()
    assert (template["issued"], template["remaining"]) == (10, 0)
    held = sum(http.member("GET", "/v1/members/me", token).json()["coupons_unused"] for token, _ in members)
    assert held == 10


def test_twenty_concurrent_claims_by_one_member_with_limit_one_issue_one(http):
    _template(http, "e2e-limit", per_member_limit=1)
    token, _ = http.enrolled("cp-limit")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda n: _claim(http, token, "e2e-limit", f"limit-{n}"), range(20)))
    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == 1 and statuses.count(409) == 19, sorted(statuses)
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"limit_reached"}
    assert http.member("GET", "/v1/members/me", token).json()["coupons_unused"] == 1


def _redeem(http, code, request_id, order_id):
    return http.till("POST", "/v1/coupons/redeem", {"code": code, "order_id": order_id, "order_amount_fen": 10_000,
                                                    "request_id": request_id})


def test_two_tills_racing_for_one_code_one_wins(http):
    token, member_id = http.enrolled("cp-race")
    code = _claim(http, token, "demo-10off", "race").json()["code"]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda n: _redeem(http, code, f"race-{n}-{uuid.uuid4().hex[:6]}", f"order-{n}"),
                                range(20)))
    statuses = [a.status_code for a in answers]
    assert statuses.count(201) == 1 and statuses.count(409) == 19, sorted(statuses)
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 409} == {"coupon_used"}
    events = http.staff("GET", f"/v1/admin/members/{member_id}/coupons").json()["items"]
    assert sorted(e["event"] for e in events) == ["issued", "used"]


def test_the_same_redeem_replayed_twenty_times_has_one_effect(http):
    token, member_id = http.enrolled("cp-replay")
    code = _claim(http, token, "demo-10off", "replay").json()["code"]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: _redeem(http, code, "same-request", "order-same"), range(20)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers if a.status_code != 201]
    assert len({a.text for a in answers}) == 1  # the first answer, each time
    assert answers[0].json()["discount_fen"] == 1_000
    events = http.staff("GET", f"/v1/admin/members/{member_id}/coupons").json()["items"]
    assert sorted(e["event"] for e in events) == ["issued", "used"]
    assert http.member("GET", "/v1/members/me", token).json()["coupons_unused"] == 0
