"""The OpenAPI document: valid, complete (every route of the app, with its methods and
credentials), served as declared, and true: real answers validate against the schemas it gives
for their operation and status."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate

from app import app
from chalicelib.api import openapi
from chalicelib.api.http import MEMBER, PUBLIC, STAFF, TILL, WECHATPAY
from tests.support import calls

DOCUMENT = openapi.build_document(app)
SCHEMES = {PUBLIC.kind: [], MEMBER.kind: [{"memberToken": []}], STAFF.kind: [{"staffKey": []}],
           TILL.kind: [{"tillKey": [], "tillTimestamp": [], "tillNonce": [], "tillSignature": []}],
           WECHATPAY.kind: [{"wechatpaySignature": []}]}
PAID_AT = "2026-11-20T12:00:00+08:00"


def operation(method: str, template: str) -> dict[str, Any]:
    return DOCUMENT["paths"][template][method.lower()]


def response_schema(method: str, template: str, status: int) -> tuple[str, dict[str, Any]]:
    declared = operation(method, template)["responses"].get(str(status))
    assert declared is not None, f"{method} {template} answered {status}, which the document does not declare"
    if "$ref" in declared:
        declared = DOCUMENT["components"]["responses"][declared["$ref"].rsplit("/", 1)[1]]
    media_type, content = next(iter(declared["content"].items()))
    return media_type, content["schema"]


def conform(answer: Any, method: str, template: str) -> Any:
    """Assert the answer is one the document declares for this operation, body and headers."""
    media_type, schema = response_schema(method, template, answer.status_code)
    assert answer.headers["Content-Type"].split(";")[0] == media_type
    assert answer.headers.get("X-Request-Id")
    if media_type != "application/json":
        return None
    # The document's components sit next to the ref, so "#/components/..." resolves.
    validator = Draft202012Validator({**schema, "components": DOCUMENT["components"]}, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(answer.json), key=lambda e: list(e.path))
    assert not errors, f"{method} {template} {answer.status_code}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5])
    return answer.json


# --- the document itself ----------------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"] == "3.1.0"
    validate(DOCUMENT)


def test_every_route_of_the_app_is_in_the_document_with_its_methods_and_credentials():
    routes = {(path, method.lower()): entry
              for path, methods in app.routes.items() for method, entry in methods.items()}
    documented = {(path, method) for path, methods in DOCUMENT["paths"].items() for method in methods}
    assert documented == set(routes)
    for (path, method), entry in routes.items():
        op = DOCUMENT["paths"][path][method]
        assert op["security"] == SCHEMES[entry.view_function.auth.kind], f"{method} {path}"
        assert op["summary"] and op["operationId"] == entry.view_name
        assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == set(entry.view_args)
        assert any(status.startswith("2") for status in op["responses"])
        if entry.view_function.auth.kind != PUBLIC.kind:
            assert {"401", "503"} <= set(op["responses"]), f"{method} {path}"
    operation_ids = [op["operationId"] for methods in DOCUMENT["paths"].values() for op in methods.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_paged_lists_declare_limit_and_cursor_and_the_page_shape():
    for template in ("/v1/members/me/points/history", "/v1/rewards", "/v1/admin/members/{member_id}/tiers/history"):
        op = operation("GET", template)
        query = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
        assert query["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
        assert query["cursor"]["schema"]["type"] == "string" and not query["cursor"]["required"]
        page = DOCUMENT["components"]["schemas"][op["responses"]["200"]["content"]["application/json"]["schema"]
                                                 ["$ref"].rsplit("/", 1)[1]]
        assert page["required"] == ["items", "next_cursor"]
        assert {"type": "null"} in page["properties"]["next_cursor"]["anyOf"]


def test_answers_are_closed_and_integers_are_integers():
    schemas = DOCUMENT["components"]["schemas"]
    card = schemas["MemberCard"]
    assert card["additionalProperties"] is False
    assert card["properties"]["stored_value_fen"] == {"title": "Stored Value Fen", "type": "integer"}
    assert schemas["JobRun"]["additionalProperties"] is True  # a job's own counters come on top
    assert schemas["OrderIn"]["properties"]["amount_fen"]["type"] == "integer"


def test_the_served_document_is_the_generated_one(api):
    answer = api.request("GET", "/openapi.json")
    assert answer.status_code == 200 and answer.json == DOCUMENT
    conform(answer, "GET", "/openapi.json")


def test_the_docs_page_is_swagger_ui_from_this_origin_only(api):
    """What a browser shows is checked in tests/e2e/test_docs_in_browser.py; here, what is served."""
    answer = api.client.http.request("GET", "/docs")  # not JSON: past the helper that decodes it
    assert answer.status_code == 200
    conform(answer, "GET", "/docs")
    page = answer.body.decode()
    assert page.startswith("<!doctype html>") and 'id="swagger-ui"' in page
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page), "the local stack is offline: no CDN"
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp and "connect-src 'self'" in csp
    for asset, media_type in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                              ("swagger-initializer.js", "text/javascript")):
        assert f'"docs/{asset}"' in page  # relative: behind API Gateway the stage prefixes the path
        served = api.client.http.request("GET", f"/docs/{asset}")
        assert served.status_code == 200 and served.headers["Content-Type"].startswith(media_type)
        conform(served, "GET", f"/docs/{asset}")
    script = api.client.http.request("GET", "/docs/swagger-ui-bundle.js").body
    assert b"SwaggerUIBundle" in script and len(script) > 500_000
    initializer = api.client.http.request("GET", "/docs/swagger-initializer.js").body.decode()
    assert 'fetch("openapi.json")' in initializer and "validatorUrl: null" in initializer


# --- real answers against their schemas -------------------------------------------------------

@pytest.fixture
def member(api):
    login = conform(api.request("POST", "/v1/auth/login", {"appid": calls.DEMO_APPID, "code": "dev-documented"}),
                    "POST", "/v1/auth/login")
    token = login["token"]
    card = conform(api.member("POST", "/v1/members", token, {"nickname": "Doc", "birthday": "1990-05-17"}),
                   "POST", "/v1/members")
    member_id = card["member_id"]
    conform(api.till("POST", "/v1/orders", {"order_id": "o-1", "member_id": member_id, "amount_fen": 50_000,
                                            "paid_at": PAID_AT}), "POST", "/v1/orders")
    return token, member_id


def test_member_answers_match_their_schemas(api, member):
    token, _ = member
    again = conform(api.member("POST", "/v1/members", token, {}), "POST", "/v1/members")
    assert api.member("POST", "/v1/members", token, {}).status_code == 200 and again["member_id"]
    conform(api.member("POST", "/v1/members/me/phone", token, {"phone_code": "phone-13800000001"}),
            "POST", "/v1/members/me/phone")
    card = conform(api.member("PATCH", "/v1/members/me", token, {"nickname": "Doc 2"}), "PATCH", "/v1/members/me")
    assert card["points"]["expiring"] and card["phone"] == "138****0001"
    conform(api.member("POST", "/v1/members/me/checkin", token), "POST", "/v1/members/me/checkin")
    conform(api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points"]}),
            "POST", "/v1/members/me/subscriptions")
    rewards = conform(api.member("GET", "/v1/rewards", token), "GET", "/v1/rewards")
    assert rewards["items"]
    conform(api.member("POST", "/v1/members/me/redemptions", token,
                       {"reward_id": "demo-cup", "quantity": 1, "request_id": "r-1"}),
            "POST", "/v1/members/me/redemptions")
    conform(api.member("POST", "/v1/members/me/redemptions/rd-r-1/cancel", token),
            "POST", "/v1/members/me/redemptions/{redemption_id}/cancel")
    first = conform(api.member("GET", "/v1/members/me/points/history?limit=2", token),
                    "GET", "/v1/members/me/points/history")
    assert first["next_cursor"]
    rest = conform(api.member("GET", f"/v1/members/me/points/history?cursor={first['next_cursor']}", token),
                   "GET", "/v1/members/me/points/history")
    assert rest["items"] and rest["next_cursor"] is None
    conform(api.member("GET", "/v1/members/me/tiers/history", token), "GET", "/v1/members/me/tiers/history")
    conform(api.request("GET", "/health"), "GET", "/health")


def test_till_answers_match_their_schemas(api, member):
    _, member_id = member
    conform(api.till("POST", "/v1/orders/o-1/refunds", {"refund_id": "rf-1", "amount_fen": 10_000}),
            "POST", "/v1/orders/{order_id}/refunds")
    for hold_id, settle in (("h-1", "capture"), ("h-2", "release")):
        conform(api.till("POST", "/v1/points/holds", {"hold_id": hold_id, "member_id": member_id, "order_id": "sale",
                                                      "order_amount_fen": 10_000, "points": 100}),
                "POST", "/v1/points/holds")
        settled = conform(api.till("POST", f"/v1/points/holds/{hold_id}/{settle}"),
                          "POST", f"/v1/points/holds/{{hold_id}}/{settle}")
        repeated = conform(api.till("POST", f"/v1/points/holds/{hold_id}/{settle}"),
                           "POST", f"/v1/points/holds/{{hold_id}}/{settle}")
        assert "points_balance" in settled and repeated["status"] == settled["status"]
    conflict = conform(api.till("POST", "/v1/points/holds/h-1/release"), "POST", "/v1/points/holds/{hold_id}/release")
    assert conflict["error"]["code"] == "hold_settled"


def test_staff_answers_match_their_schemas(api, member):
    _, member_id = member
    conform(api.staff("GET", f"/v1/admin/members/{member_id}"), "GET", "/v1/admin/members/{member_id}")
    conform(api.staff("POST", f"/v1/admin/members/{member_id}/adjustments",
                      {"points": -5, "reason": "doc", "request_id": "adj-1"}),
            "POST", "/v1/admin/members/{member_id}/adjustments")
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    conform(api.staff("POST", f"/v1/admin/members/{member_id}/tier",
                      {"tier": "silver", "until": until, "reason": "doc", "request_id": "g-1"}),
            "POST", "/v1/admin/members/{member_id}/tier")
    moves = conform(api.staff("GET", f"/v1/admin/members/{member_id}/tiers/history"),
                    "GET", "/v1/admin/members/{member_id}/tiers/history")
    assert moves["items"][0]["direction"] == "grant"
    conform(api.staff("GET", f"/v1/admin/members/{member_id}/points/history"),
            "GET", "/v1/admin/members/{member_id}/points/history")
    conform(api.staff("PUT", "/v1/admin/rewards/doc-mug", {"name": "Mug", "points_price": 50, "stock": 3,
                                                           "per_member_limit": 1}),
            "PUT", "/v1/admin/rewards/{reward_id}")
    conform(api.staff("GET", "/v1/admin/rewards"), "GET", "/v1/admin/rewards")
    token = api.enrolled("doc-redeemer")
    redeemer = api.member("GET", "/v1/members/me", token).json["member_id"]
    api.staff("POST", f"/v1/admin/members/{redeemer}/adjustments", {"points": 100, "reason": "doc",
                                                                    "request_id": "a-2"})
    api.member("POST", "/v1/members/me/redemptions", token, {"reward_id": "doc-mug", "quantity": 1,
                                                             "request_id": "r-2"})
    conform(api.staff("POST", f"/v1/admin/members/{redeemer}/redemptions/rd-r-2/cancel"),
            "POST", "/v1/admin/members/{member_id}/redemptions/{redemption_id}/cancel")
    for job in ("reconcile", "expire-points", "tier-review"):
        summary = conform(api.staff("POST", f"/v1/admin/jobs/{job}/runs", {"as_of": dt.date.today().isoformat()}),
                          "POST", "/v1/admin/jobs/{job}/runs")
        assert summary["complete"] is True
    rules = conform(api.staff("GET", "/v1/admin/program"), "GET", "/v1/admin/program")
    body = {k: v for k, v in rules.items() if k not in ("program_id", "appid")}
    conform(api.staff("PUT", "/v1/admin/program", body), "PUT", "/v1/admin/program")
    stale = conform(api.staff("PUT", "/v1/admin/program", body), "PUT", "/v1/admin/program")
    assert stale["error"]["code"] == "version_conflict"


def test_money_answers_match_their_schemas(api, member, wechat):
    token, member_id = member
    conform(api.member("GET", "/v1/stored-value/plans", token), "GET", "/v1/stored-value/plans")
    top_up = conform(api.member("POST", "/v1/members/me/top-ups", token, {"plan_id": "sv-100", "request_id": "t-1"}),
                     "POST", "/v1/members/me/top-ups")
    headers, body, _ = wechat.pay.payment_notification(top_up["top_up_id"])
    notify = "/v1/payments/wechat/notify"
    assert conform(api.request("POST", notify, headers=headers, raw=body), "POST", notify)["code"] == "SUCCESS"
    refused = conform(api.request("POST", notify, headers={**headers, "Wechatpay-Signature": "eA=="}, raw=body),
                      "POST", notify)
    assert refused["code"] == "FAIL"
    assert conform(api.request("POST", notify, raw=b"{}"), "POST", notify)["code"] == "FAIL"
    conform(api.member("GET", "/v1/members/me/stored-value/history", token), "GET", "/v1/members/me/stored-value/history")
    payment = {"member_id": member_id, "order_id": "s-1", "amount_fen": 100}
    conform(api.till("POST", "/v1/stored-value/payments", {**payment, "payment_id": "p-1"}),
            "POST", "/v1/stored-value/payments")
    conform(api.till("POST", "/v1/stored-value/payments/p-1/refunds", {"refund_id": "r-1", "amount_fen": 50}),
            "POST", "/v1/stored-value/payments/{payment_id}/refunds")
    for payment_id, settle in (("p-2", "capture"), ("p-3", "release")):
        conform(api.till("POST", "/v1/stored-value/payments", {**payment, "payment_id": payment_id, "freeze": True}),
                "POST", "/v1/stored-value/payments")
        conform(api.till("POST", f"/v1/stored-value/payments/{payment_id}/{settle}"),
                "POST", f"/v1/stored-value/payments/{{payment_id}}/{settle}")
    short = conform(api.till("POST", "/v1/stored-value/payments", {**payment, "payment_id": "p-4", "amount_fen": 10**6}),
                    "POST", "/v1/stored-value/payments")
    assert short["error"]["code"] == "insufficient_balance"
    conform(api.staff("GET", f"/v1/admin/members/{member_id}/stored-value/history"),
            "GET", "/v1/admin/members/{member_id}/stored-value/history")
    conform(api.staff("POST", f"/v1/admin/members/{member_id}/top-ups/{top_up['top_up_id']}/refunds",
                      {"request_id": "rf-1"}), "POST", "/v1/admin/members/{member_id}/top-ups/{top_up_id}/refunds")


def test_error_answers_are_the_envelope_under_declared_statuses(api, member):
    token, member_id = member
    missing = conform(api.request("GET", "/v1/members/me"), "GET", "/v1/members/me")
    assert missing["error"]["code"] == "unauthorized"
    typed = conform(api.till("POST", "/v1/orders", {"order_id": "o-2", "member_id": member_id, "amount_fen": "100",
                                                    "paid_at": PAID_AT}), "POST", "/v1/orders")
    assert typed["error"]["code"] == "invalid_request"
    unknown = conform(api.staff("GET", "/v1/admin/members/m-nobody"), "GET", "/v1/admin/members/{member_id}")
    assert unknown["error"]["code"] == "member_not_found"
    replayed = conform(api.till("POST", "/v1/orders", {"order_id": "o-1", "member_id": member_id, "amount_fen": 1,
                                                       "paid_at": PAID_AT}), "POST", "/v1/orders")
    assert replayed["error"]["code"] == "idempotency_conflict"
    job = conform(api.staff("POST", "/v1/admin/jobs/no-such-job/runs", {}), "POST", "/v1/admin/jobs/{job}/runs")
    assert job["error"]["code"] == "unknown_job"


# --- what the document promises about inputs, enforced ---------------------------------------

@pytest.mark.parametrize("member_id", ["m" * 129, "m%C3%A9", "m%20x", "m%2Fx"])
def test_a_path_id_the_document_refuses_is_a_400_not_a_lookup(api, member_id):
    answer = api.staff("GET", f"/v1/admin/members/{member_id}")
    assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_request", answer.body
    conform(answer, "GET", "/v1/admin/members/{member_id}")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=1e1", "limit=%EF%BC%95", "cursor=e30",
                                   "cursor=eyJnc2kxcGsiOiJ4In0.0123456789abcdef0123456789abcdef"])
def test_a_page_query_the_document_refuses_is_a_400(api, member, query):
    token, _ = member
    answer = api.member("GET", f"/v1/members/me/points/history?{query}", token)
    assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_request", answer.body


def test_an_empty_cursor_asks_for_the_first_page(api, member):
    token, _ = member
    first = api.member("GET", "/v1/members/me/points/history", token)
    again = api.member("GET", "/v1/members/me/points/history?cursor=", token)
    assert again.status_code == 200 and again.json == first.json


def test_a_body_over_the_documented_size_is_a_413(api):
    answer = api.request("POST", "/v1/auth/login", raw=b'{"appid": "' + b"x" * (128 * 1024) + b'"}')
    assert answer.status_code == 413 and answer.json["error"]["code"] == "body_too_large", answer.body
    conform(answer, "POST", "/v1/auth/login")


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31", "2026-02-30", 20261123])
def test_a_job_day_outside_what_the_rules_compute_with_is_a_400(api, as_of):
    answer = api.staff("POST", "/v1/admin/jobs/expire-points/runs", {"as_of": as_of})
    assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_request", answer.body
