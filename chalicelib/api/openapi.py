"""The OpenAPI 3.1 document, built from what the routes declare (`http.route`) and the pydantic
models they name; nothing in it is written by hand except the prose. Served at `/openapi.json`,
and as a self-contained HTML page at `/docs` (no scripts, no CDN: the local stack is offline).

Pydantic emits JSON Schema 2020-12, which is what OpenAPI 3.1 schemas are, so request models are
published as they validate (mode "validation") and answer models as they serialize.
"""

from __future__ import annotations

import functools
import html
import json
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
    400: "`invalid_request` (a body, query or path parameter that is off), or a rule the request "
         "breaks: `hold_exceeds_cap`, `unknown_tier`, `unknown_template`, `unknown_invite_code`, "
         "`invalid_phone_code`, `wechat_app_rejected`.",
    401: "`unauthorized`, or why the credentials were refused: `token_expired`, `bad_signature`, "
         "`stale_timestamp`, `replayed_nonce`, `unknown_appid`, `invalid_code`, `login_required`.",
    403: "`forbidden`: the staff credential lacks the permission the operation requires.",
    404: "What was not found: `not_found`, `not_enrolled`, `member_not_found`, `order_not_found`, "
         "`reward_not_found`, `redemption_not_found`, `hold_not_found`, `unknown_job`, `plan_not_found`, "
         "`payment_not_found`, `top_up_not_found`. Another "
         "member's or program's resources are 404 too.",
    409: "`idempotency_conflict`, or the state forbids it: `insufficient_points`, `out_of_stock`, "
         "`limit_reached`, `refund_exceeds_order`, `hold_settled`, `phone_in_use`, "
         "`birthday_already_set`, `version_conflict`, `balance_cap`, `insufficient_balance`, `redemption_awaiting_payment`, "
         "`refund_exceeds_payment`, `payment_settled`, `payment_not_paid`, `top_up_not_paid`, `nothing_to_refund`, "
         "`payment_refused`.",
    413: f"`body_too_large`: the body is larger than {MAX_BODY_BYTES // 1024} KB.",
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


# --- the HTML page ---------------------------------------------------------------------------

_STYLE = """
body{font:15px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:70em;
padding:1em 2em;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2em}h3{margin:1.5em 0 .3em;font-size:1.05em}
code,pre{font:13px/1.4 Menlo,Consolas,monospace}pre{background:#f6f8fa;padding:.6em;overflow:auto;white-space:pre-wrap}
.m{display:inline-block;min-width:4.2em;font-weight:bold}.get{color:#1a7f37}.post{color:#0969da}
.put{color:#9a6700}.patch{color:#8250df}.delete{color:#cf222e}
table{border-collapse:collapse;margin:.3em 0}
td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
.note{color:#555}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _ref_link(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        return f'<a href="#schema-{_e(name)}"><code>{_e(name)}</code></a>'
    return f"<code>{_e(json.dumps(schema, ensure_ascii=False))}</code>"


def _paragraphs(text: str) -> str:
    return "".join(f"<pre>{_e(block)}</pre>" for block in text.strip().split("\n\n"))


def _operation_html(path: str, method: str, op: dict[str, Any], doc: dict[str, Any]) -> str:
    parts = [f'<h3 id="{_e(op["operationId"])}"><span class="m {method}">{method.upper()}</span> '
             f'<code>{_e(path)}</code></h3><p>{_e(op["summary"])}</p>']
    schemes = sorted({name for requirement in op["security"] for name in requirement})
    parts.append(f'<p class="note">Credentials: {_e(", ".join(schemes) or "none")}</p>')
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
            f"<td>{'required' if p['required'] else 'optional'}</td><td>{_ref_link(p['schema'])}</td>"
            f"<td>{_e(p.get('description', ''))}</td></tr>"
            for p in op["parameters"]
        )
        parts.append(f"<table><tr><th>parameter</th><th>in</th><th></th><th>schema</th><th></th></tr>{rows}</table>")
    if "requestBody" in op:
        body = op["requestBody"]
        schema = next(iter(body["content"].values()))["schema"]
        parts.append(f"<p>Body ({'required' if body['required'] else 'optional'}): {_ref_link(schema)}</p>")
    answer_rows = []
    for status, answer in op["responses"].items():
        if "$ref" in answer:
            answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        media_type, content = next(iter(answer["content"].items()))
        answer_rows.append(f"<tr><td>{_e(status)}</td><td>{_e(media_type)}</td><td>{_ref_link(content['schema'])}</td>"
                    f"<td>{_e(answer['description'])}</td></tr>")
    parts.append(f"<table><tr><th>status</th><th>type</th><th>schema</th><th></th></tr>{''.join(answer_rows)}</table>")
    return "".join(parts)


def render_html(doc: dict[str, Any]) -> str:
    """The document as one static page: operations by caller, then every schema."""
    info = doc["info"]
    sections = [f"<h1>{_e(info['title'])} <small>v{_e(info['version'])}</small></h1>",
                _paragraphs(info["description"]),
                '<p>Machine-readable: <a href="/openapi.json"><code>/openapi.json</code></a> (OpenAPI 3.1).</p>']
    for tag in doc["tags"]:
        entries = [(path, method, op) for path, methods in doc["paths"].items() for method, op in methods.items()
                   if tag["name"] in op["tags"]]
        sections.append(f'<h2 id="tag-{_e(tag["name"])}">{_e(tag["name"])}</h2><p>{_e(tag["description"])}</p>')
        sections.extend(_operation_html(path, method, op, doc) for path, method, op in entries)
    sections.append("<h2>Credentials</h2>")
    for name, scheme in doc["components"]["securitySchemes"].items():
        sections.append(f"<h3><code>{_e(name)}</code></h3>{_paragraphs(scheme.get('description', ''))}")
    sections.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        sections.append(f'<h3 id="schema-{_e(name)}"><code>{_e(name)}</code></h3>'
                        f"<pre>{_e(json.dumps(schema, ensure_ascii=False, indent=2))}</pre>")
    body = "\n".join(sections)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(info["title"])}</title>'
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")
