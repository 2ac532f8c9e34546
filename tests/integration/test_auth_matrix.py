"""Who may call what: every endpoint of the app x every kind of caller (../shared/API.md).

The endpoints come from the Chalice app itself (`app.routes`, and the `auth` that
`api/http.py::route` sets on each view), so a new route gets its cells without anyone
remembering to add them. Each cell is one request by one caller, and its expectation follows from
the route's auth kind and from whether the request addresses member A's resources:

  open    the caller got past authentication: not 401/403, and no 5xx.
  denied  401 in the contract's error envelope, and the table is exactly as it was.
  hidden  the right kind of caller, but not entitled to A (member B; staff or a till of another
          program) addressing A's resources: 404, nothing of A's in the answer, table unchanged.
  forbidden  a staff account whose role lacks the route's permission (auth/roles.py): 403, table
          unchanged.

Staff come as every kind of credential: the admin key, the owner, manager and clerk accounts'
tokens, a disabled account's token (denied), and another program's owner (hidden where about A).

A route that takes a body or path parameters needs a row in ROWS (a minimal plausible request,
and whether it addresses A's resources); `test_every_route_has_a_row_and_every_row_a_route` fails
for one that has none.
The world (members A and B, A's order, redemptions and holds, a second program) is built once for
the module; the denied and hidden cells prove they changed nothing by comparing the whole table.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from app import app
from chalicelib.auth import roles, schemes

PUBLIC, MEMBER, TILL, STAFF, WECHATPAY = (scheme.kind for scheme in (schemes.PUBLIC, schemes.MEMBER, schemes.TILL,
                                                                      schemes.STAFF, schemes.WECHATPAY))
from tests.support import calls, seeded

OPEN, DENIED, HIDDEN, FORBIDDEN = "open", "denied", "hidden", "forbidden"
A_NICKNAME = "Alice Matrix"
# Spending a nonce needs a correctly signed request; this one changes nothing (no such hold).
NONCE_SPENDER = "/v1/points/holds/h-nonce-spender/capture"


# --- the world -------------------------------------------------------------------------------

@dataclass
class World:
    client: Any
    a_token: str = ""
    b_token: str = ""
    a_member: str = ""
    b_member: str = ""
    pay: Any = None  # the WeChat Pay stand-in's state: it signs the notifications WeChat Pay would send
    a_top_up: str = ""  # A's paid top-up (refunds address it)
    a_pending_top_up: str = ""  # A's unpaid top-up (the notification reports its payment)
    pending_entries: list[str] = field(default_factory=list)
    leaver_token: str = ""  # a member who deletes their own account (DELETE /v1/members/me)
    erased_member: str = ""  # a member staff erase (DELETE /v1/admin/members/{member_id})
    a_membership: str = ""  # A's paid membership order (its staff refund addresses it)
    staff_tokens: dict[str, str] = field(default_factory=dict)  # caller name -> staff token (issue 16)
    _seq: Any = field(default_factory=itertools.count)

    def fresh(self, prefix: str) -> str:
        """A new idempotency key, so an open cell really does the work instead of replaying."""
        return f"{prefix}-{next(self._seq)}"

    def send(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Any:
        response = self.client.http.request(method, path, headers=headers, body=raw)
        is_json = "json" in response.headers.get("Content-Type", "") and response.body
        response.json = json.loads(response.body) if is_json else None  # (/docs answers HTML)
        return response

    def as_member(self, method: str, path: str, token: str, body: Any = None) -> Any:
        return self.send(method, path, calls.bearer(token), calls.encode(body) if body is not None else b"")

    def as_till(self, method: str, path: str, body: Any) -> Any:
        raw = calls.encode(body)
        return self.send(method, path, calls.till_headers(method, path, raw), raw)

    def as_staff(self, method: str, path: str, body: Any = None) -> Any:
        return self.send(method, path, calls.bearer(calls.ADMIN_KEY), calls.encode(body) if body is not None else b"")


def _enrol(world: World, openid: str, nickname: str) -> tuple[str, str]:
    raw = calls.encode({"appid": calls.DEMO_APPID, "code": f"dev-{openid}"})
    token = world.send("POST", "/v1/auth/login", {"Content-Type": "application/json"}, raw).json["token"]
    assert world.as_member("POST", "/v1/members", token, {"nickname": nickname}).status_code == 201
    return token, world.as_member("GET", "/v1/members/me", token).json["member_id"]


def _must(answer: Any, status: int) -> Any:
    assert answer.status_code == status, answer.body
    return answer.json


@pytest.fixture(scope="module")
def world(wechat):
    with seeded.seeded_client() as client:
        seeded.add_other_program()
        w = World(client, pay=wechat.pay)
        w.a_token, w.a_member = _enrol(w, "matrix-a", A_NICKNAME)
        w.b_token, w.b_member = _enrol(w, "matrix-b", "Bob Matrix")
        paid_at = dt.datetime.now(dt.timezone.utc).isoformat()
        for member_id, order_id in ((w.a_member, "o-a"), (w.b_member, "o-b")):
            _must(w.as_till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id,
                                                   "amount_fen": 100_000, "paid_at": paid_at}), 201)
        # A's resources that the path-parameter routes address (see PARAMS and ROWS).
        for request_id in ("a-member-cancels", "a-staff-cancels"):
            _must(w.as_member("POST", "/v1/members/me/redemptions", w.a_token,
                              {"reward_id": "demo-cup", "quantity": 1, "request_id": request_id}), 201)
        _must(w.as_staff("PUT", "/v1/admin/coupon-templates/matrix-coupon", MATRIX_TEMPLATE), 200)
        # insight (issue 15): a segment the campaign row targets (nobody matches it: points_min far away).
        _must(w.as_staff("PUT", "/v1/admin/segments/matrix-seg", {"name": "matrix", "rules": {"points_min": 10**9}}),
              200)
        _must(w.as_staff("POST", "/v1/admin/jobs/rfm/runs", {}), 200)  # scores A (its order o-a)
        # A's money: a paid top-up, an unpaid one, a paid and two frozen stored-value payments.
        for request_id, plan_id in (("a-paid", "sv-500"), ("a-pending", "sv-100")):
            answer = _must(w.as_member("POST", "/v1/members/me/top-ups", w.a_token,
                                       {"plan_id": plan_id, "request_id": request_id}), 201)
            if request_id == "a-paid":
                w.a_top_up = answer["top_up_id"]
                headers, raw, _ = w.pay.payment_notification(w.a_top_up)
                assert w.send("POST", "/v1/payments/wechat/notify", headers, raw).status_code == 200
            else:
                w.a_pending_top_up = answer["top_up_id"]
        # A's paid membership (issue 14: the staff refund addresses it).
        w.a_membership = _must(w.as_member("POST", "/v1/members/me/membership", w.a_token,
                                           {"plan_id": "svip-month", "request_id": "a-month"}), 201)["order_id"]
        headers, raw, _ = w.pay.payment_notification(w.a_membership)
        assert w.send("POST", "/v1/payments/wechat/notify", headers, raw).status_code == 200
        w.leaver_token, _ = _enrol(w, "matrix-leaver", "Leaver Matrix")
        _, w.erased_member = _enrol(w, "matrix-erased", "Erased Matrix")
        # B holds stored value too: a member's own erasure (DELETE /v1/members/me) is refused for both.
        b_paid = _must(w.as_member("POST", "/v1/members/me/top-ups", w.b_token,
                                   {"plan_id": "sv-100", "request_id": "b-paid"}), 201)["top_up_id"]
        headers, raw, _ = w.pay.payment_notification(b_paid)
        assert w.send("POST", "/v1/payments/wechat/notify", headers, raw).status_code == 200
        for payment_id, freeze in (("p-a", False), ("p-a-capture", True), ("p-a-release", True)):
            _must(w.as_till("POST", "/v1/stored-value/payments", {"payment_id": payment_id, "member_id": w.a_member,
                                                                 "order_id": "o-a", "amount_fen": 1_000,
                                                                 "freeze": freeze}), 201)
        for hold_id in ("h-a-capture", "h-a-release"):
            _must(w.as_till("POST", "/v1/points/holds", {"hold_id": hold_id, "member_id": w.a_member,
                                                         "order_id": "o-a", "order_amount_fen": 10_000,
                                                         "points": 100}), 201)
        # Two of A's orders held for review (demo: 50 000 yuan or more), to release and to reject;
        # and a flag about A, to read and resolve.
        for order_id in ("o-a-big-1", "o-a-big-2"):
            _must(w.as_till("POST", "/v1/orders", {"order_id": order_id, "member_id": w.a_member,
                                                   "amount_fen": 5_000_000, "paid_at": paid_at}), 201)
        queue = _must(w.as_staff("GET", "/v1/admin/pending"), 200)["items"]
        w.pending_entries = [entry["entry_id"] for entry in queue]
        from chalicelib.store import risk as risk_store

        risk_store.raise_flag("demo", "matrix-flag", "shared_device", [w.a_member], {"members_seen": 1},
                              dt.datetime.now(dt.timezone.utc).isoformat())
        for webhook_id in ("matrix-hook", "matrix-hook-deleted"):
            _must(w.as_staff("PUT", f"/v1/admin/webhooks/{webhook_id}", {"url": "http://127.0.0.1:9/matrix",
                                                                          "events": ["points.changed"]}), 200)
        _parked_delivery("matrix-hook", MATRIX_EVENT)
        _staff_accounts(w)
        yield w


MATRIX_EVENT = "evt_" + "0" * 32
MATRIX_STAFF_PASSWORD = "matrix-staff-password"


def _staff_login(w: World, username: str, program_id: str = "demo") -> str:
    body = {"program_id": program_id, "username": username, "password": MATRIX_STAFF_PASSWORD}
    return _must(w.send("POST", "/v1/admin/auth/login", {"Content-Type": "application/json"}, calls.encode(body)),
                 200)["token"]


def _staff_accounts(w: World) -> None:
    """The owner, a manager, a clerk (may adjust 10 points at a time), a disabled account whose
    token was issued before it was disabled, and the other program's owner: each logged in."""
    from chalicelib.services import staff as staff_service
    from chalicelib.store import credentials

    for username, role in (("m-owner", "owner"), ("m-manager", "manager"), ("m-clerk", "clerk"), ("m-gone", "clerk")):
        _must(w.as_staff("PUT", f"/v1/admin/staff/{username}", {"role": role, "password": MATRIX_STAFF_PASSWORD,
                                                                 "points_limit": 10}), 201)
    staff_service.seed_owner("other", "other-owner", credentials.hash_password(MATRIX_STAFF_PASSWORD))
    w.staff_tokens = {"owner": _staff_login(w, "m-owner"), "manager": _staff_login(w, "m-manager"),
                      "clerk": _staff_login(w, "m-clerk"), "staff_disabled": _staff_login(w, "m-gone"),
                      "staff_user_other_program": _staff_login(w, "other-owner", "other")}
    _must(w.as_staff("PUT", "/v1/admin/staff/m-gone", {"role": "clerk", "disabled": True}), 200)


def _parked_delivery(webhook_id: str, event_id: str) -> None:
    """A delivery that ran out of retries (what the delivery routes address)."""
    from chalicelib.store import keys
    from chalicelib.store.models import WebhookDeliveryItem

    item = WebhookDeliveryItem(*keys.webhook_delivery("demo", event_id, webhook_id), program_id="demo",
                               event_id=event_id, webhook_id=webhook_id, type="points.changed", body="{}",
                               status="parked", park_reason="retries_exhausted", attempts=13, log=[],
                               created_at="2026-01-01T00:00:00.000+00:00", parked_at="2026-01-02T00:00:00.000+00:00")
    item.gsi1pk, item.gsi1sk = keys.webhook_parked("demo", webhook_id, item.parked_at, event_id)
    item.save()


# --- the routes ------------------------------------------------------------------------------

Body = Callable[[World], Any]


@dataclass(frozen=True)
class Row:
    """How to call one route plausibly. `body` builds the JSON body (None: no body); `params`
    overrides PARAMS for this route's path parameters; `about_a`: the request addresses member
    A's resources, so a caller of the right kind but not entitled to A must get 404; False: it
    is about the caller's own membership or program. Every route with credentials must say which:
    there is no default that would silently skip the cross-member check."""

    about_a: bool | None = None
    body: Body | None = None
    params: dict[str, Callable[[World], str]] = field(default_factory=dict)
    # The token member A's cell presents instead of A's (a route that ends the membership: erasure).
    member_token: Callable[[World], str] | None = None
    query: Callable[[World], str] | None = None  # the query string, without "?"


def _today_plus(days: int) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def _program_rules(w: World) -> dict[str, Any]:
    current = _must(w.as_staff("GET", "/v1/admin/program"), 200)
    return {k: v for k, v in current.items() if k not in ("program_id", "appid")}


MATRIX_TEMPLATE = {"name": "Matrix 5 off", "kind": "amount_off", "off_fen": 500, "valid_days": 30, "claimable": True}


def _a_coupon_code(w: World) -> str:
    """A fresh unused coupon of A's (claimed by A)."""
    return _must(w.as_member("POST", "/v1/members/me/coupons", w.a_token,
                             {"template_id": "matrix-coupon", "request_id": w.fresh("cl")}), 201)["code"]


def _a_used_coupon(w: World) -> dict[str, Any]:
    """A void's body: one of A's coupons, used on an order just now."""
    code, order_id = _a_coupon_code(w), w.fresh("o-cp")
    _must(w.as_till("POST", "/v1/coupons/redeem", {"code": code, "order_id": order_id, "order_amount_fen": 2_000,
                                                   "request_id": w.fresh("rdm")}), 201)
    return {"code": code, "order_id": order_id, "request_id": w.fresh("void")}


# Path parameters, unless a row says otherwise: A's resources, or harmless fixed names.
PARAMS: dict[str, Callable[[World], str]] = {
    "member_id": lambda w: w.a_member,
    "order_id": lambda w: "o-a",
    "redemption_id": lambda w: "rd-a-member-cancels",
    "hold_id": lambda w: "h-a-capture",
    "reward_id": lambda w: "matrix-prize",
    "job": lambda w: "reconcile",
    "template_id": lambda w: "matrix-coupon",
    "payment_id": lambda w: "p-a",
    "top_up_id": lambda w: w.a_top_up,
    "entry_id": lambda w: w.pending_entries[0],
    "flag_id": lambda w: "matrix-flag",
    "webhook_id": lambda w: "matrix-hook",
    "event_id": lambda w: MATRIX_EVENT,
    "lottery_id": lambda w: "demo-wheel",
}


def _payment_notification(w: World) -> Any:
    """What WeChat Pay sends when A pays the pending top-up (the caller's headers sign it)."""
    _headers, raw, _url = w.pay.payment_notification(w.a_pending_top_up)
    return json.loads(raw)

ROWS: dict[str, Row] = {
    # public
    "POST /v1/auth/login": Row(body=lambda w: {"appid": calls.DEMO_APPID, "code": "dev-matrix-newcomer"}),
    # member: each acts on the caller's own membership, except a redemption named in the path
    "POST /v1/members": Row(about_a=False, body=lambda w: {}),
    "PATCH /v1/members/me": Row(about_a=False, body=lambda w: {}),
    "POST /v1/members/me/phone": Row(about_a=False, body=lambda w: {"phone_code": f"phone-139{next(w._seq):08d}"}),
    "POST /v1/members/me/checkin": Row(about_a=False),
    "POST /v1/members/me/subscriptions": Row(about_a=False, body=lambda w: {"template_ids": ["tmpl-points"]}),
    "POST /v1/members/me/redemptions": Row(about_a=False,
        body=lambda w: {"reward_id": "demo-cup", "quantity": 1, "request_id": w.fresh("rq")}),
    "POST /v1/members/me/redemptions/{redemption_id}/cancel": Row(about_a=True),
    "POST /v1/members/me/coupons": Row(about_a=False,
        body=lambda w: {"template_id": "matrix-coupon", "request_id": w.fresh("cl")}),
    # till: every request names A's member, order or hold
    "POST /v1/orders": Row(about_a=True, body=lambda w: {
        "order_id": w.fresh("o"), "member_id": w.a_member, "amount_fen": 1_000,
        "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()}),
    "POST /v1/orders/{order_id}/refunds": Row(about_a=True, body=lambda w: {
        "refund_id": w.fresh("rf"), "amount_fen": 1}),
    "POST /v1/points/holds": Row(about_a=True, body=lambda w: {
        "hold_id": w.fresh("h"), "member_id": w.a_member, "order_id": "o-a", "order_amount_fen": 10_000,
        "points": 10}),
    "POST /v1/points/holds/{hold_id}/capture": Row(about_a=True, params={"hold_id": lambda w: "h-a-capture"}),
    "POST /v1/points/holds/{hold_id}/release": Row(about_a=True, params={"hold_id": lambda w: "h-a-release"}),
    "POST /v1/coupons/redeem": Row(about_a=True, body=lambda w: {
        "code": _a_coupon_code(w), "order_id": w.fresh("o-cp"), "order_amount_fen": 2_000,
        "request_id": w.fresh("rdm")}),
    "POST /v1/coupons/void": Row(about_a=True, body=_a_used_coupon),
    # money: the member's own top-ups and history; tills name A's member or payment
    "GET /v1/stored-value/plans": Row(about_a=False),
    "POST /v1/members/me/top-ups": Row(about_a=False, body=lambda w: {"plan_id": "sv-100",
                                                                      "request_id": w.fresh("tu")}),
    "GET /v1/members/me/stored-value/history": Row(about_a=False),
    "POST /v1/stored-value/payments": Row(about_a=True, body=lambda w: {
        "payment_id": w.fresh("p"), "member_id": w.a_member, "order_id": "o-a", "amount_fen": 1}),
    "POST /v1/stored-value/payments/{payment_id}/capture": Row(about_a=True,
                                                               params={"payment_id": lambda w: "p-a-capture"}),
    "POST /v1/stored-value/payments/{payment_id}/release": Row(about_a=True,
                                                               params={"payment_id": lambda w: "p-a-release"}),
    "POST /v1/stored-value/payments/{payment_id}/refunds": Row(about_a=True, body=lambda w: {
        "refund_id": w.fresh("svr"), "amount_fen": 1}),
    "GET /v1/admin/members/{member_id}/stored-value/history": Row(about_a=True),
    "POST /v1/admin/members/{member_id}/top-ups/{top_up_id}/refunds": Row(about_a=True, body=lambda w: {
        "request_id": w.fresh("tur")}),
    # WeChat Pay's own scheme: its notification is about its payment, not a member's resource
    "POST /v1/payments/wechat/notify": Row(about_a=False, body=_payment_notification),
    # staff: member routes address A; the others are the caller's own program
    "GET /v1/admin/members/{member_id}": Row(about_a=True),
    "GET /v1/admin/members/{member_id}/points/history": Row(about_a=True),
    "GET /v1/admin/members/{member_id}/tiers/history": Row(about_a=True),
    "POST /v1/admin/members/{member_id}/tier": Row(about_a=True, body=lambda w: {
        "tier": "silver", "until": _today_plus(30), "reason": "matrix", "request_id": w.fresh("tg")}),
    "POST /v1/admin/members/{member_id}/adjustments": Row(about_a=True, body=lambda w: {
        "points": 1, "reason": "matrix", "request_id": w.fresh("adj")}),
    "POST /v1/admin/members/{member_id}/redemptions/{redemption_id}/cancel": Row(
        about_a=True, params={"redemption_id": lambda w: "rd-a-staff-cancels"}),
    "PUT /v1/admin/rewards/{reward_id}": Row(about_a=False, body=lambda w: {"name": "Matrix prize", "points_price": 5,
                                                             "stock": 10}),
    "POST /v1/admin/jobs/{job}/runs": Row(about_a=False, body=lambda w: {}),
    "PUT /v1/admin/program": Row(about_a=False, body=_program_rules),
    "PUT /v1/admin/coupon-templates/{template_id}": Row(about_a=False, body=lambda w: MATRIX_TEMPLATE,
                                                        params={"template_id": lambda w: "matrix-put"}),
    "POST /v1/admin/coupon-templates/{template_id}/grants": Row(about_a=True, body=lambda w: {
        "member_ids": [w.a_member], "request_id": w.fresh("gr")}),
    "GET /v1/admin/members/{member_id}/coupons": Row(about_a=True),
    "POST /v1/admin/members/{member_id}/pending/{entry_id}/release": Row(
        about_a=True, body=lambda w: {"request_id": w.fresh("pr")}, params={"entry_id": lambda w: w.pending_entries[0]}),
    "POST /v1/admin/members/{member_id}/pending/{entry_id}/reject": Row(
        about_a=True, body=lambda w: {"request_id": w.fresh("pj"), "reason": "matrix"},
        params={"entry_id": lambda w: w.pending_entries[1]}),
    "GET /v1/admin/members/{member_id}/pending": Row(about_a=True),
    "GET /v1/admin/flags/{flag_id}": Row(about_a=True),
    "POST /v1/admin/flags/{flag_id}/resolve": Row(about_a=True, body=lambda w: {
        "request_id": w.fresh("fl"), "resolution": "dismissed", "reason": "matrix"}),
    "GET /v1/admin/pending": Row(about_a=False),
    "GET /v1/admin/flags": Row(about_a=False),
    "GET /v1/admin/resolved-flags": Row(about_a=False),
    # reads about the caller's own membership or program
    "GET /v1/members/me": Row(about_a=False),
    "GET /v1/members/me/points/history": Row(about_a=False),
    "GET /v1/members/me/tiers/history": Row(about_a=False),
    "GET /v1/rewards": Row(about_a=False),
    "GET /v1/admin/rewards": Row(about_a=False),
    "GET /v1/admin/program": Row(about_a=False),
    "GET /v1/members/me/coupons": Row(about_a=False),
    "GET /v1/coupon-templates": Row(about_a=False),
    "GET /v1/admin/coupon-templates": Row(about_a=False),
    "GET /v1/admin/coupon-templates/{template_id}": Row(about_a=False),
    "PUT /v1/admin/webhooks/{webhook_id}": Row(about_a=False, params={"webhook_id": lambda w: w.fresh("matrix-new")},
                                               body=lambda w: {"url": "http://127.0.0.1:9/m", "events": ["tier.changed"]}),
    "GET /v1/admin/webhooks": Row(about_a=False),
    "GET /v1/admin/webhooks/{webhook_id}": Row(about_a=True),
    "DELETE /v1/admin/webhooks/{webhook_id}": Row(about_a=True, params={"webhook_id": lambda w: "matrix-hook-deleted"}),
    "POST /v1/admin/webhooks/{webhook_id}/resume": Row(about_a=True),
    "GET /v1/admin/webhooks/{webhook_id}/parked-deliveries": Row(about_a=True),
    "GET /v1/admin/webhooks/{webhook_id}/deliveries/{event_id}": Row(about_a=True),
    "POST /v1/admin/webhooks/{webhook_id}/deliveries/{event_id}/replay": Row(about_a=True),
    "POST /v1/admin/webhooks/{webhook_id}/replays": Row(about_a=True, body=lambda w: {
        "from": "2026-01-01T00:00:00+00:00", "to": "2026-01-02T00:00:00+00:00"}),
    # members' rights: erasure addresses members of its own (A and B stay); B's own is refused (stored value)
    "GET /v1/members/me/export": Row(about_a=False),
    "DELETE /v1/members/me": Row(about_a=False, member_token=lambda w: w.leaver_token),
    "DELETE /v1/admin/members/{member_id}": Row(about_a=True, params={"member_id": lambda w: w.erased_member}),
    "GET /v1/admin/privacy-log": Row(about_a=False),
    "DELETE /v1/members/me/subscriptions/{template_id}": Row(about_a=False,
                                                             params={"template_id": lambda w: "tmpl-points"}),
    # paid membership and lotteries (issue 14): the caller's own membership; the program's lotteries
    "GET /v1/membership/plans": Row(about_a=False),
    "POST /v1/members/me/membership": Row(about_a=False, body=lambda w: {"plan_id": "svip-month",
                                                                         "request_id": w.fresh("mb")}),
    "POST /v1/members/me/lottery-draws": Row(about_a=False, body=lambda w: {"lottery_id": "demo-wheel",
                                                                            "request_id": w.fresh("dr")}),
    "GET /v1/lotteries/{lottery_id}": Row(about_a=False),
    "GET /v1/admin/lotteries/{lottery_id}/draws": Row(about_a=False),
    # staff accounts, the audit log, the console (issue 16)
    "POST /v1/admin/auth/login": Row(body=lambda w: {"program_id": "demo", "username": "m-owner",
                                                     "password": MATRIX_STAFF_PASSWORD}),
    "GET /v1/admin/staff": Row(about_a=False),
    "PUT /v1/admin/staff/{username}": Row(about_a=False, params={"username": lambda w: w.fresh("m-new")},
                                          body=lambda w: {"role": "clerk", "password": MATRIX_STAFF_PASSWORD,
                                                          "points_limit": 5}),
    "GET /v1/admin/audit": Row(about_a=False),
    "GET /v1/admin/member-lookup": Row(about_a=True, query=lambda w: f"member_id={w.a_member}"),
    "POST /v1/admin/coupons/redeem": Row(about_a=True, body=lambda w: {
        "code": _a_coupon_code(w), "order_id": w.fresh("o-sc"), "order_amount_fen": 2_000,
        "request_id": w.fresh("srdm")}),
    # insight (issue 15): the caller's own program
    "GET /v1/admin/reports/daily": Row(about_a=False),
    "GET /v1/admin/reports/daily.csv": Row(about_a=False),
    "GET /v1/admin/reports/compare": Row(about_a=False),
    "GET /v1/admin/members/{member_id}/tags": Row(about_a=True),
    "GET /v1/admin/members/{member_id}/rfm": Row(about_a=True),
    "GET /v1/admin/segments": Row(about_a=False),
    "PUT /v1/admin/segments/{segment_id}": Row(about_a=False, params={"segment_id": lambda w: "matrix-seg"},
                                               body=lambda w: {"name": "matrix", "rules": {"points_min": 10**9}}),
    "POST /v1/admin/campaigns/{campaign_id}/runs": Row(about_a=False, params={"campaign_id": lambda w: w.fresh("cmp")},
                                                       body=lambda w: {"segment_id": "matrix-seg",
                                                                       "template_id": "matrix-coupon"}),
    "PUT /v1/admin/members/{member_id}/tags/{tag}": Row(about_a=True, params={"tag": lambda w: "vip"}),
    # issue 16, second pass: a job run's progress (the caller's own program)
    "GET /v1/admin/jobs/{job}/runs/{as_of}": Row(about_a=False, params={"as_of": lambda w: _today_plus(0)}),
    "DELETE /v1/admin/members/{member_id}/tags/{tag}": Row(about_a=True, params={"tag": lambda w: "vip"}),
    "POST /v1/admin/members/{member_id}/memberships/{order_id}/refunds": Row(
        about_a=True, params={"order_id": lambda w: w.a_membership}, body=lambda w: {"request_id": w.fresh("mbr")}),
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    auth: str
    params: tuple[str, ...]
    permission: str | None = None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def needs_row(self) -> bool:
        return self.auth != PUBLIC or bool(self.params) or self.method in ("POST", "PUT", "PATCH", "DELETE")

    def row(self) -> Row:
        if self.name not in ROWS:
            assert not self.needs_row(), f"{self.name}: add it to ROWS (and say whether it is about a member)"
            return Row()
        row = ROWS[self.name]
        assert self.auth == PUBLIC or row.about_a is not None, f"{self.name}: say whether it is about a member"
        return row


def app_routes() -> list[Route]:
    """Every (method, path) the app answers, with the auth kind its view was declared with."""
    found = []
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            authenticator = getattr(entry.view_function, "auth", None)
            assert authenticator is not None, f"{method} {path} was not declared with route()"
            found.append(Route(method, path, authenticator.kind, tuple(entry.view_args), authenticator.permission))
    return sorted(found, key=lambda r: (r.path, r.method))


# --- the callers -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Caller:
    """`scheme`: the credentials it presents (None: none). `entitled`: it may reach A's
    resources when the scheme fits. `forged`: its till signature must not be accepted."""

    name: str
    scheme: str | None
    entitled: bool = True
    forged: bool = False
    role: str | None = None  # a staff account's role (None: the admin key, every permission)

    def headers(self, w: World, method: str, path: str, raw: bytes, row: Row | None = None) -> dict[str, str]:
        if self.name == "anonymous":
            return {"Content-Type": "application/json"}
        if self.scheme == WECHATPAY:
            # Signed as WeChat Pay signs, over the raw body; the forged one with another timestamp
            # than it signed (what a replay of an old notification looks like).
            headers = {**w.pay.signed_headers(raw.decode()), "Content-Type": "application/json"}
            if self.forged:
                headers["Wechatpay-Timestamp"] = str(int(headers["Wechatpay-Timestamp"]) + 1)
            return headers
        if self.scheme == MEMBER:
            if self.entitled and row is not None and row.member_token is not None:
                return calls.bearer(row.member_token(w))
            return calls.bearer(w.a_token if self.entitled else w.b_token)
        if self.scheme == STAFF and self.name in w.staff_tokens:
            return calls.bearer(w.staff_tokens[self.name])
        if self.scheme == STAFF:
            return calls.bearer(calls.ADMIN_KEY if self.entitled else seeded.OTHER_ADMIN_KEY)
        if self.name == "till_other_program":
            return calls.till_headers(method, path, raw, key_id=seeded.OTHER_TILL_KEY_ID,
                                      secret=seeded.OTHER_TILL_SECRET)
        if self.name == "till_bad_signature":
            return calls.till_headers(method, path, raw, secret="not-the-till-secret")
        if self.name == "till_stale_timestamp":
            return calls.till_headers(method, path, raw, timestamp=int(time.time()) - 600)
        if self.name == "till_replayed_nonce":
            # The nonce was spent by another correctly signed request; this one is signed
            # correctly too, with a fresh timestamp: only the nonce is replayed.
            spent = calls.till_headers("POST", NONCE_SPENDER, b"")
            assert w.send("POST", NONCE_SPENDER, spent, b"").status_code == 404
            return calls.till_headers(method, path, raw, nonce=spent["X-Loyalty-Nonce"])
        assert self.name == "till"
        return calls.till_headers(method, path, raw)


CALLERS = [
    Caller("anonymous", None),
    Caller("member_a", MEMBER),
    Caller("member_b", MEMBER, entitled=False),
    Caller("till", TILL),
    Caller("till_other_program", TILL, entitled=False),
    Caller("till_bad_signature", TILL, forged=True),
    Caller("till_stale_timestamp", TILL, forged=True),
    Caller("till_replayed_nonce", TILL, forged=True),
    Caller("staff", STAFF),
    Caller("staff_other_program", STAFF, entitled=False),
    Caller("owner", STAFF, role="owner"),
    Caller("manager", STAFF, role="manager"),
    Caller("clerk", STAFF, role="clerk"),
    Caller("staff_disabled", STAFF, forged=True),
    Caller("staff_user_other_program", STAFF, entitled=False, role="owner"),
    Caller("wechatpay", WECHATPAY),
    Caller("wechatpay_forged", WECHATPAY, forged=True),
]


def expected(route: Route, caller: Caller) -> str:
    if route.auth == PUBLIC:
        return OPEN
    if caller.scheme != route.auth or caller.forged:
        return DENIED  # no credentials, the wrong scheme, a till request that fails its checks, a disabled account
    if caller.role is not None and route.permission is not None and route.permission not in roles.permissions_of(
            caller.role):
        return FORBIDDEN
    if not caller.entitled and route.row().about_a:
        return HIDDEN
    return OPEN


# Till nonces, and the audit log: a staff write refused as hidden is still an action of the
# caller's, written to the caller's program's log (never to A's).
UNCOMPARED = ("NONCE#", "P#other#AUDIT#")
ROUTES = app_routes()
CELLS = [pytest.param(route, caller, id=f"{route.name} | {caller.name}") for route in ROUTES for caller in CALLERS]


# --- the tests -------------------------------------------------------------------------------

def test_every_route_has_a_row_and_every_row_a_route():
    names = {route.name for route in ROUTES}
    missing = sorted(route.name for route in ROUTES if route.needs_row() and route.name not in ROWS)
    stale = sorted(set(ROWS) - names)
    assert not missing, f"routes with credentials, a body or path parameters but no row in ROWS: {missing}"
    undeclared = sorted(r.name for r in ROUTES if r.auth != PUBLIC and ROWS[r.name].about_a is None)
    assert not undeclared, f"rows that do not say whether they are about a member: {undeclared}"
    assert not stale, f"rows for routes the app no longer has: {stale}"
    assert len(CELLS) == len(ROUTES) * len(CALLERS)


def test_the_contract_public_routes_are_the_only_public_ones():
    public = {route.name for route in ROUTES if route.auth == PUBLIC}
    logins = {"POST /v1/auth/login", "POST /v1/admin/auth/login"}
    assert {"GET /health"} | logins <= public
    # Anything else public must be documentation (the OpenAPI document and its viewer) or the
    # console's page and files (its calls need a staff token).
    documentation = {name for name in public if name in ("GET /openapi.json", "GET /docs", "GET /console")
                     or name.startswith(("GET /docs/", "GET /console/"))}  # the pages' own scripts and styles
    assert public - {"GET /health"} - logins <= documentation, public


@pytest.mark.parametrize(("route", "caller"), CELLS)
def test_cell(world, route, caller):
    row = route.row()
    params = {name: (row.params.get(name) or PARAMS[name])(world) for name in route.params}
    path = route.path.format(**params) + (f"?{row.query(world)}" if row.query else "")
    body = row.body(world) if row.body else None
    raw = calls.encode(body) if body is not None else b""
    headers = caller.headers(world, route.method, path, raw, row)
    want = expected(route, caller)
    before = seeded.table_items(skip_prefixes=UNCOMPARED) if want != OPEN else None

    answer = world.send(route.method, path, headers, raw)

    assert answer.headers.get("X-Request-Id"), "every answer carries X-Request-Id"
    if want == OPEN:
        assert answer.status_code not in (401, 403) and answer.status_code < 500, answer.body
        if caller.entitled and caller.role is None:
            # The rightful caller's plausible request does the work: the row really exercises the route.
            assert 200 <= answer.status_code < 300, answer.body
        elif caller.entitled:
            # A staff account after the admin key: a one-off resource of the row (a flag to resolve,
            # a webhook to delete) may already be used up; the role got past auth either way.
            assert 200 <= answer.status_code < 300 or answer.status_code in (404, 409), answer.body
        return
    if want == DENIED and route.auth == WECHATPAY:
        assert answer.status_code == 401, answer.body
        assert answer.json["code"] == "FAIL" and set(answer.json) == {"code", "message"}  # WeChat Pay's reply shape
    elif want == FORBIDDEN:
        assert answer.status_code == 403 and answer.json["error"]["code"] == "forbidden", answer.body
    elif want == DENIED:
        assert answer.status_code == 401, answer.body
        error = answer.json["error"]
        assert set(error) == {"code", "message", "request_id"} and error["request_id"] == answer.headers["X-Request-Id"]
    else:
        assert answer.status_code == 404, answer.body
    # Nothing of A's in the answer (A's member id only if the caller sent it), and nothing changed.
    if world.a_member not in path + raw.decode():
        assert world.a_member not in answer.body.decode()
    assert A_NICKNAME not in answer.body.decode()
    assert seeded.table_items(skip_prefixes=UNCOMPARED) == before


@pytest.mark.parametrize(("path", "caller"), [
    pytest.param("/v1/members/me/points/history", "member_b", id="member history | member_b"),
    pytest.param("/v1/admin/members/{a}/points/history", "staff_other_program", id="admin history | staff_other"),
])
def test_a_cursor_into_a_history_never_opens_it_for_another_caller(world, path, caller):
    first = _must(world.as_member("GET", "/v1/members/me/points/history?limit=1", world.a_token), 200)
    assert first["next_cursor"], "A has more than one history row"
    credentials = calls.bearer(world.b_token if caller == "member_b" else seeded.OTHER_ADMIN_KEY)
    answer = world.send("GET", f"{path.format(a=world.a_member)}?limit=5&cursor={first['next_cursor']}",
                        credentials, b"")
    assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_request", answer.body
