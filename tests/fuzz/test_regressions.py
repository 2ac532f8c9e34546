"""Requests that once broke the running stack (5xx) or the document (accepted what it refuses),
found while fuzzing and probing the values the fuzzer reaches rarely; each pinned here."""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from typing import Any

import pytest
import requests

from tests.e2e.calls import Http
from tests.fuzz import support
from tests.support import calls


@pytest.fixture(scope="module")
def http(world: support.World) -> Http:
    return Http(world.api)


def _member_id(world: support.World) -> str:
    return world.path_values["member_id"][0]


def _signed(world: support.World, method: str, path: str, body: Any = None, **headers: Any) -> requests.Response:
    payload = calls.encode(body) if body is not None else b""
    return requests.request(method, world.api + path, data=payload, auth=support.TillSignature(), timeout=30,
                            headers={"Content-Type": "application/json", **headers})


def _error_code(answer: requests.Response) -> str:
    return answer.json()["error"]["code"]


def test_a_paid_at_near_year_one_is_a_400_not_an_overflow(world):
    # 0001-01-01T00:00:00+14:00 is before datetime.min in UTC: converting it raised OverflowError.
    answer = _signed(world, "POST", "/v1/orders", {"order_id": f"rg-{uuid.uuid4().hex[:8]}",
                                                   "member_id": _member_id(world), "amount_fen": 100,
                                                   "paid_at": "0001-01-01T00:00:00+14:00"})
    assert answer.status_code == 400 and _error_code(answer) == "invalid_request", answer.text


def test_a_body_too_large_for_an_item_is_a_413(http, world):
    # The program's rules are one item: 3000 benefits made it larger than DynamoDB's 400 KB.
    rules = {k: v for k, v in http.staff("GET", "/v1/admin/program").json().items() if k not in ("program_id", "appid")}
    rules["tiers"][0]["benefits"] = [{"code": f"b{n}", "description": "x" * 200} for n in range(3000)]
    answer = http.staff("PUT", "/v1/admin/program", rules)
    assert answer.status_code == 413 and _error_code(answer) == "body_too_large", answer.text


def test_a_timestamp_of_non_ascii_digits_is_a_401(world):
    # "²".isdigit() is true and int("²") raises: the signature check answered 500.
    answer = requests.post(f"{world.api}/v1/points/holds/h-1/capture", timeout=30, headers={
        "X-Loyalty-Key": calls.TILL_KEY_ID, "X-Loyalty-Timestamp": b"\xb2", "X-Loyalty-Nonce": secrets.token_hex(12),
        "X-Loyalty-Signature": "0" * 64})
    assert answer.status_code == 401 and _error_code(answer) == "stale_timestamp", answer.text


def test_a_till_key_id_that_cannot_be_a_table_key_is_a_401(world):
    # Looked up as is: a 3000-byte partition key is a ValidationException on DynamoDB.
    answer = requests.post(f"{world.api}/v1/points/holds/h-1/capture", timeout=30, headers={
        "X-Loyalty-Key": "k" * 3000, "X-Loyalty-Timestamp": str(int(time.time())),
        "X-Loyalty-Nonce": secrets.token_hex(12), "X-Loyalty-Signature": "0" * 64})
    assert answer.status_code == 401, answer.text


@pytest.mark.parametrize("reward_id", ["r" * 1500, "%C3%A9", "a%2Fb"])
def test_a_path_id_that_cannot_be_an_id_is_a_400(http, reward_id):
    # 1500 characters made a sort key over DynamoDB's 1 KB (500); "é" was stored as a reward.
    answer = http.staff("PUT", f"/v1/admin/rewards/{reward_id}", {"name": "x", "points_price": 1, "stock": 1})
    assert answer.status_code == 400 and _error_code(answer) == "invalid_request", answer.text


def test_a_percent_encoded_path_id_is_decoded_as_api_gateway_does(http, world):
    # `chalice local` passed "fz%3Ao" through; API Gateway hands the app "fz:o". Either spelling
    # on the wire is the same order, and the till signs the same canonical path for both.
    order_id = f"fz:o-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    placed = _signed(world, "POST", "/v1/orders", {"order_id": order_id, "member_id": _member_id(world),
                                                   "amount_fen": 10_000, "paid_at": now})
    assert placed.status_code == 201, placed.text
    literal = _signed(world, "POST", f"/v1/orders/{order_id}/refunds", {"refund_id": "rf-1", "amount_fen": 100})
    encoded = _signed(world, "POST", f"/v1/orders/{order_id.replace(':', '%3A')}/refunds",
                      {"refund_id": "rf-1", "amount_fen": 100})
    assert literal.status_code == encoded.status_code == 201, (literal.text, encoded.text)
    assert literal.json() == encoded.json() and literal.json()["order_id"] == order_id


@pytest.mark.parametrize("field,value", [
    pytest.param("expiry", {"months_after": 12, "reminder_days": [10**9]}, id="reminder-days-beyond-any-calendar"),
    pytest.param("earning", {"campaigns": [{"code": "x", "name": "x", "starts_on": "2020-01-01",
                                            "ends_on": "2099-01-01", "bonus_threshold_fen": 1,
                                            "bonus_points": 10**40}]}, id="bonus-beyond-dynamodb-numbers"),
])
def test_rules_the_jobs_or_the_table_cannot_compute_with_are_a_400(http, field, value):
    # Accepted, then the expiry reminders job overflowed its date arithmetic (500), or every order
    # wrote a 41-digit number (DynamoDB keeps 38).
    rules = {k: v for k, v in http.staff("GET", "/v1/admin/program").json().items() if k not in ("program_id", "appid")}
    answer = http.staff("PUT", "/v1/admin/program", {**rules, field: {**rules[field], **value}})
    assert answer.status_code == 400 and _error_code(answer) == "invalid_request", answer.text


@pytest.mark.parametrize("body", [
    pytest.param({"birthday": 0}, id="a-number-for-a-date"),  # lax parsing made it 1970-01-01
    pytest.param({"nickname": 5}, id="a-number-for-a-string"),
])
def test_a_wrong_type_is_a_400_even_where_a_coercion_exists(http, world, body):
    answer = http.member("PATCH", "/v1/members/me", world.member_token, body)
    assert answer.status_code == 400 and _error_code(answer) == "invalid_request", answer.text


def test_an_integer_written_with_a_fraction_is_a_400(world):
    # JSON Schema counts 100.0 as an integer; the contract does not (no floats), as documented.
    answer = _signed(world, "POST", "/v1/orders", {"order_id": f"rg-{uuid.uuid4().hex[:8]}",
                                                   "member_id": _member_id(world), "amount_fen": 100.0,
                                                   "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    assert answer.status_code == 400 and _error_code(answer) == "invalid_request", answer.text
