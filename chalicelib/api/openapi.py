"""The OpenAPI 3.1 document, built from what the routes declare (`http.route`) and the pydantic
models they name; nothing in it is written by hand except the prose. Served at `/openapi.json`,
and shown by Swagger UI at `/docs` (`docs.py`), descriptions rendered as Markdown.

Pydantic emits JSON Schema 2020-12, which is what OpenAPI 3.1 schemas are, so request models are
published as they validate (mode "validation") and answer models as they serialize.
"""

from __future__ import annotations

import functools
from typing import Any

from chalice import Chalice
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib.api.http import (
    JSON,
    MAX_BODY_BYTES,
    MEMBER,
    PATH_PARAMETERS,
    PUBLIC,
    STAFF,
    TILL,
    WECHATPAY,
    Operation,
    operations_of,
)
from chalicelib.api.schemas import ErrorEnvelope

TITLE = "Loyalty API"
VERSION = "1"
_REF = "#/components/schemas/{model}"

_DESCRIPTION = """\
The WeChat loyalty service's HTTP contract (v1): members from the mini-program, store tills and
order systems, and the merchant's staff.

* JSON in and out, UTF-8. Money is an integer number of fen; points and growth are integers.
  Times are ISO 8601 with offset; calendar days are in the program's time zone.
* Every error is `{"error": {"code", "message", "request_id"}}`; a 5xx other than 503
  `retry_later` is a bug. Unknown, missing or mistyped body fields are 400 `invalid_request`,
  and types are not coerced: an integer is written `100` (not `100.0`, `1e2` or `"100"`), a
  date `"2026-05-17"`. A body is at most MAX_BODY_KB KB (413 `body_too_large`).
* Every response carries `X-Request-Id` (a caller's own `X-Request-Id` of 8 to 64 characters of
  `A-Za-z0-9._-` is kept).
* Lists are paged: `?limit=` (default 20, max 100) and `?cursor=`; the answer is
  `{"items": [...], "next_cursor": <opaque> | null}`. Cursors are only valid as issued.
* Every call that changes a balance is idempotent on a key the caller gives (`order_id`,
  `refund_id`, `request_id`, `hold_id`): the same key again returns the first answer, status
  included; the same key with another body is 409 `idempotency_conflict`.
""".replace("MAX_BODY_KB", str(MAX_BODY_BYTES // 1024))

_TILL_SIGNING = """\
Tills sign every request with their key's secret: four headers, all required.

* `X-Loyalty-Key`: the key id.
* `X-Loyalty-Timestamp`: unix seconds; more than 300 s from the server's clock is 401.
* `X-Loyalty-Nonce`: 16 to 64 characters of `A-Za-z0-9`, never reused within 10 minutes.
* `X-Loyalty-Signature`: lowercase hex of HMAC-SHA256(secret, `METHOD` + "\\n" + `PATH_WITH_QUERY` +
  "\\n" + `TIMESTAMP` + "\\n" + `NONCE` + "\\n" + hex(SHA-256(raw body))), UTF-8.

`PATH_WITH_QUERY` is the path with each path parameter percent-encoded so that only RFC 3986
unreserved characters (`A-Za-z0-9-._~`) stay as they are (`:` is `%3A`), followed, if there is a
query, by `?` and its parameters form-encoded (`application/x-www-form-urlencoded`, spaces as
`+`), each name's values together in the order sent. An empty body hashes as the empty string.
"""

_SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "memberToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "A member token from `POST /v1/auth/login`."},
    "staffKey": {"type": "http", "scheme": "bearer", "description": "The merchant staff's admin key."},
    "tillKey": {"type": "apiKey", "in": "header", "name": "X-Loyalty-Key", "description": "The till's key id."},
    "tillTimestamp": {"type": "apiKey", "in": "header", "name": "X-Loyalty-Timestamp",
                      "description": "Unix seconds; see `tillSignature`."},
    "tillNonce": {"type": "apiKey", "in": "header", "name": "X-Loyalty-Nonce",
                  "description": "Fresh per request; see `tillSignature`."},
    "tillSignature": {"type": "apiKey", "in": "header", "name": "X-Loyalty-Signature",
                      "description": _TILL_SIGNING},
    "wechatpaySignature": {"type": "apiKey", "in": "header", "name": "Wechatpay-Signature",
                           "description": "WeChat Pay v3's signature (with `Wechatpay-Timestamp`, `Wechatpay-Nonce`, "
                                          "`Wechatpay-Serial` and `Wechatpay-Signature-Type`), verified with the "
                                          "platform public key over the raw body."},
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    PUBLIC.kind: [],
    MEMBER.kind: [{"memberToken": []}],
    STAFF.kind: [{"staffKey": []}],
    # One requirement naming all four: every header must be present (and the signature right).
    TILL.kind: [{"tillKey": [], "tillTimestamp": [], "tillNonce": [], "tillSignature": []}],
    WECHATPAY.kind: [{"wechatpaySignature": []}],
}
_TAGS = [
    {"name": "public", "description": "No credentials."},
    {"name": "member", "description": "The mini-program, with a member token."},
    {"name": "till", "description": "Store tills and order systems, HMAC-signed."},
    {"name": "staff", "description": "The merchant's console, with an admin key."},
    {"name": "wechatpay", "description": "WeChat Pay's notifications, signed by WeChat Pay; answered in its format."},
]

_ERRORS = {
    400: "`invalid_request` (a body, query or path parameter that is off; for a coupon template the "
         "message names the field, e.g. `percent: must be 1 to 99`), or a rule the request breaks: "
         "`hold_exceeds_cap`, `unknown_tier`, `unknown_template`, `unknown_invite_code`, "
         "`invalid_phone_code`, `wechat_app_rejected`.",
    401: "`unauthorized`, or why the credentials were refused: `token_expired`, `bad_signature`, "
         "`stale_timestamp`, `replayed_nonce`, `unknown_appid`, `invalid_code`, `login_required`.",
    403: "`forbidden`: the staff credential lacks the permission the operation requires.",
    404: "What was not found: `not_found`, `not_enrolled`, `member_not_found`, `order_not_found`, "
         "`reward_not_found`, `redemption_not_found`, `hold_not_found`, `unknown_job`, `template_not_found`, "
         "`coupon_not_found` (also for another program's code), `pending_not_found`, `flag_not_found`, "
         "`plan_not_found`, `payment_not_found`, `top_up_not_found`, `lottery_not_found`, "
         "`membership_not_found`. Another "
         "member's or program's resources are 404 too.",
    409: "`idempotency_conflict`, or the state forbids it: `insufficient_points`, `out_of_stock`, "
         "`limit_reached`, `refund_exceeds_order`, `hold_settled`, `phone_in_use`, "
         "`birthday_already_set`, `version_conflict`, `pending_settled`, `flag_resolved`; coupons: "
         "`not_claimable`, `coupon_used` (the message says when), `coupon_expired`, `coupon_not_yet_valid`, "
         "`threshold_not_met`, `store_not_allowed`, `coupon_not_used` (a void of a coupon not used on that "
         "order); money: `balance_cap`, `insufficient_balance`, `redemption_awaiting_payment`, "
         "`refund_exceeds_payment`, `payment_settled`, `payment_not_paid`, `top_up_not_paid`, "
         "`nothing_to_refund`, `payment_refused`; membership and lotteries: `trial_used`, "
         "`draw_limit_reached`, `lottery_closed` (and `insufficient_points`); membership refunds: "
         "`membership_not_paid`, `refund_latest_first`, `nothing_to_refund`.",
    413: f"`body_too_large`: the body is larger than {MAX_BODY_BYTES // 1024} KB.",
    429: "`rate_limited`: the till is beyond one of its rate caps (orders a minute, amount an hour); "
         "nothing was written.",
    503: "`retry_later`: throttled, contended or WeChat unavailable; nothing changed, retry shortly.",
}

_REQUEST_ID_HEADER = {"description": "The request's id, also in error bodies.", "required": True,
                      "schema": {"type": "string"}}


def _bare_media_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip()


def _models(operations: list[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Every model the document names, once, with the mode it is published in."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorEnvelope, "serialization"): None}
    for op in operations:
        if op.body is not None:
            wanted[(op.body, "validation")] = None
        if op.response is not None:
            wanted[(op.response, "serialization")] = None
    return list(wanted)


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string: drop the `null` branch pydantic adds to `X | None`."""
    branches = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(branches) != 1:
        return schema
    kept = {k: v for k, v in schema.items() if k != "anyOf"}
    if kept.get("default", ...) is None:
        del kept["default"]
    return {**branches[0], **kept}


def _parameters(op: Operation) -> list[dict[str, Any]]:
    parameters = []
    for name in op.path_parameters:
        declared = PATH_PARAMETERS[name]
        schema: dict[str, Any] = {"type": "string", "pattern": f"^{declared.pattern}$"}
        if declared.choices is not None:
            schema["enum"] = declared.choices()
        parameters.append({"name": name, "in": "path", "required": True, "description": declared.description,
                           "schema": schema})
    if op.query is not None:
        query_schema = op.query.model_json_schema()
        required = set(query_schema.get("required", []))
        for name, field_schema in query_schema["properties"].items():
            schema = _non_null(field_schema)
            description = schema.pop("description", None)
            schema.pop("title", None)
            parameter = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    return parameters


def _operation(op: Operation, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    content_type = _bare_media_type(op.media_type)
    success_schema = refs[(op.response, "serialization")] if op.response is not None else {"type": "string"}
    responses: dict[str, Any] = {}
    for status in (op.status, *op.also):
        responses[str(status)] = {
            "description": "OK" if status == op.status else "OK (see the summary)",
            "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
            "content": {content_type: {"schema": success_schema}},
        }
    own_errors = op.auth.error_body("code", "message") is not None  # the scheme answers errors in its own shape
    for status in op.error_statuses:
        if own_errors:
            responses[str(status)] = {"description": "Refused, in the caller's own reply format",
                                      "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
                                      "content": {content_type: {"schema": success_schema}}}
        else:
            responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    document: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "tags": [op.auth.kind],
        "security": _SECURITY[op.auth.kind],
        "responses": responses,
    }
    if op.description:
        document["description"] = op.description
    if op.auth.permission is not None:
        document["x-permission"] = op.auth.permission
        document["description"] = (document.get("description", "") +
                                   f"\n\nStaff permission: `{op.auth.permission}`.").strip()
    parameters = _parameters(op)
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        required_fields = op.body.model_json_schema().get("required", [])
        document["requestBody"] = {
            # An empty body reads as {}: a body is required only if the model has required fields.
            "required": bool(required_fields),
            "content": {JSON: {"schema": refs[(op.body, "validation")]}},
        }
    return document


def build_document(app: Chalice) -> dict[str, Any]:
    operations = operations_of(app)
    refs, definitions = models_json_schema(_models(operations), ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    error_envelope = refs[(ErrorEnvelope, "serialization")]
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": _DESCRIPTION},
        "tags": _TAGS,
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": _SECURITY_SCHEMES,
            "headers": {"RequestId": _REQUEST_ID_HEADER},
            "responses": {
                f"Error{status}": {
                    "description": description,
                    "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
                    "content": {JSON: {"schema": error_envelope}},
                }
                for status, description in _ERRORS.items()
            },
        },
    }


@functools.lru_cache(maxsize=2)
def document(app: Chalice) -> dict[str, Any]:
    """The document for this app, built once per process (routes do not change at run time)."""
    return build_document(app)
