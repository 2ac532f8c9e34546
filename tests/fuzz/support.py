"""What the fuzzer needs besides schemathesis: valid credentials for every request, a small world
of things that exist in the stack, generation hooks that use it, and the run's configuration.

Every generated request carries valid credentials of the kind its operation declares: a member
token from `/v1/auth/login`, the staff key, or a till signature computed over the request exactly
as it goes on the wire (after serialization), with a fresh timestamp and nonce each time.
Schema-valid ids are sometimes swapped for ones that exist (the member, their orders, holds and
redemptions...), so requests reach the code behind the lookups instead of only their 404s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import requests
import schemathesis
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from chalicelib.auth import till
from tests.e2e.calls import Http
from tests.support import calls

# Examples per operation in the fuzzing phase: `make test` runs the default (about 25 s in all),
# `make fuzz` many more.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# Schemathesis' coverage phase: boundary and negative values of every field, unexpected methods.
COVERAGE = os.environ.get("FUZZ_COVERAGE", "1") != "0"
# A run is replayed by its seed, which the summary line prints.
SEED = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**31))
REQUEST_TIMEOUT_SECONDS = 30
# (operation, status) -> requests answered, for the summary line.
TALLY: Counter[tuple[str, int]] = Counter()


def config() -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "request-timeout": REQUEST_TIMEOUT_SECONDS,
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES,
            # Our credentials are valid; generated security headers would only ever test 401s.
            "with-security-parameters": False,
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": False},  # the document has none
            # Unexpected methods as API Gateway forwards them; TRACE and CONNECT never reach the app
            # (`chalice local` answers them with its HTTP server's own 501 page).
            "coverage": {"enabled": COVERAGE, "unexpected-methods": ["GET", "PUT", "POST", "DELETE", "PATCH"]},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},  # no links between operations to follow
        },
        "checks": {
            # Business rules answer some schema-valid requests with 400 or 409 (a paid_at in the
            # future, a hold above the cap, a key reused with another body): not a defect.
            "positive_data_acceptance": {"enabled": False},
        },
    })


# --- credentials -------------------------------------------------------------------------------

class Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def canonical_path(url: str) -> str:
    """What a till signs (the document's `tillSignature`): each path segment percent-encoded
    leaving only unreserved characters, the query as form pairs with each name's values together
    in first-seen order."""
    parts = urlsplit(url)
    path = "/".join(quote(unquote(segment), safe="") for segment in parts.path.split("/"))
    grouped: dict[str, list[str]] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        grouped.setdefault(name, []).append(value)
    pairs = [(name, value) for name, values in grouped.items() for value in values]
    return path + ("?" + urlencode(pairs) if pairs else "")


class TillSignature(requests.auth.AuthBase):
    """Signs the prepared request, whose URL and body bytes are final."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        assert request.method and request.url
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else body
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = till.sign(calls.TILL_SECRET, request.method, canonical_path(request.url), timestamp, nonce, raw)
        request.headers.update({"X-Loyalty-Key": calls.TILL_KEY_ID, "X-Loyalty-Timestamp": timestamp,
                                "X-Loyalty-Nonce": nonce, "X-Loyalty-Signature": signature})
        return request


# --- the world ---------------------------------------------------------------------------------

@dataclass
class World:
    """What exists in the stack before fuzzing starts, and whose credentials to use."""

    api: str
    member_token: str
    # The demo program's rules as GET answers them, to put back after a fuzzed PUT changed them.
    rules: dict[str, Any]
    # Schema-valid values worth trying instead of generated ones, by path parameter name (things
    # that exist) and by body field name (what passes the business rules). Bodies keep their
    # generated order, hold and request ids: a fresh one is what makes a new order or hold.
    path_values: dict[str, list[Any]] = field(default_factory=dict)
    body_values: dict[str, list[Any]] = field(default_factory=dict)

    def auth_for(self, security: list[dict[str, list[str]]]) -> requests.auth.AuthBase | None:
        schemes = {name for requirement in security for name in requirement}
        if "memberToken" in schemes:
            return Bearer(self.member_token)
        if "staffKey" in schemes:
            return Bearer(calls.ADMIN_KEY)
        if "tillSignature" in schemes:
            return TillSignature()
        return None

    def restore_rules(self) -> None:
        """Put the demo rules back (a fuzzed PUT may drop every template or tier the rest uses)."""
        http = Http(self.api)
        version = http.staff("GET", "/v1/admin/program").json()["version"]
        body = {name: value for name, value in self.rules.items() if name not in ("program_id", "appid")}
        answer = http.staff("PUT", "/v1/admin/program", {**body, "version": version})
        assert answer.status_code == 200, answer.text


# The world of this session: hooks are registered when the test module is imported, before the
# stack exists, and read it at generation time (set by the `world` fixture).
_CURRENT: list[World] = []


def current_world() -> World:
    return _CURRENT[-1]


def set_world(world: World) -> None:
    _CURRENT.append(world)


def build_world(api: str, wechat: str | None = None) -> World:
    """A member with points, orders, open holds and redemptions; another member's invite code."""
    http = Http(api)
    suffix = uuid.uuid4().hex[:8]
    token, member_id = http.enrolled(f"fuzz-{suffix}", nickname="Fuzz")
    if wechat is not None:
        # Paid-in stored value: the member's erasure (DELETE /v1/members/me, staff's too) is refused
        # with 409 stored_value_not_settled, so the member stays for every other operation.
        top_up = http.member("POST", "/v1/members/me/top-ups", token, {"plan_id": "sv-100", "request_id": "fz-tu"})
        assert top_up.status_code == 201, top_up.text
        paid = requests.post(f"{wechat}/_pay/confirm", json={"out_trade_no": top_up.json()["top_up_id"]}, timeout=60)
        assert paid.status_code == 200, paid.text
    _, inviter_id = http.enrolled(f"fuzz-inviter-{suffix}")
    invite_code = http.staff("GET", f"/v1/admin/members/{inviter_id}").json()["invite_code"]
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    orders, holds = [f"fz-o-{n}" for n in range(3)], [f"fz-h-{n}" for n in range(3)]
    for order_id in orders:
        answer = http.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id,
                                                  "amount_fen": 500_000, "paid_at": now})
        assert answer.status_code == 201, answer.text
    for hold_id in holds:
        answer = http.till("POST", "/v1/points/holds", {"hold_id": hold_id, "member_id": member_id, "order_id": "fz",
                                                        "order_amount_fen": 10_000, "points": 100})
        assert answer.status_code == 201, answer.text
    rules = http.staff("GET", "/v1/admin/program").json()
    redemptions = []
    for n in range(3):
        answer = http.member("POST", "/v1/members/me/redemptions", token,
                             {"reward_id": "demo-cup", "quantity": 1, "request_id": f"fz-r-{n}"})
        assert answer.status_code == 201, answer.text
        redemptions.append(answer.json()["redemption_id"])
    coupon = http.member("POST", "/v1/members/me/coupons", token, {"template_id": "demo-10off", "request_id": "fz-cp"})
    assert coupon.status_code == 201, coupon.text
    return World(api=api, member_token=token, rules=rules, path_values={
        "member_id": [member_id],
        "order_id": orders,
        "hold_id": holds,
        "redemption_id": redemptions,
        "reward_id": ["demo-cup"],
        "template_id": ["demo-10off"],
    }, body_values={
        "member_id": [member_id],
        "reward_id": ["demo-cup"],
        "appid": [calls.DEMO_APPID],
        # a wx.login code (login) or a coupon's code (核销, void): each is a 4xx where it does not fit
        "code": [f"dev-fuzz-login-{suffix}", coupon.json()["code"]],
        "template_id": ["demo-10off"],
        "member_ids": [[member_id]],
        "phone_code": ["phone-13900000000", "phone-13900000001"],
        "invite_code": [invite_code],
        "tier": ["normal", "silver", "gold"],
        "until": [(dt.date.today() + dt.timedelta(days=30)).isoformat()],
        "template_ids": [["tmpl-points"], ["tmpl-tier", "tmpl-expiring"]],
        "paid_at": [now],
        "amount_fen": [100, 50_000],
        "points": [10, 100],
        "order_amount_fen": [10_000, 1_000_000],
        "quantity": [1, 2],
        # The program's rules: generated ones rarely make a valid ladder of tiers or a real zone.
        "version": list(range(1, 30)),
        "tiers": [rules["tiers"]],
        "timezone": ["Asia/Shanghai", "UTC"],
        "templates": [rules["templates"]],
    })


# --- generation --------------------------------------------------------------------------------

def _integers(value: Any) -> Any:
    """JSON Schema counts 184.0 as an integer and schemathesis sends it so; the contract does not
    (400, pinned in test_regressions.py). Valid cases get 184 instead, to get past parsing."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {name: _integers(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_integers(item) for item in value]
    return value


def _swap_in_known(values: Any, is_valid: Callable[[Any], bool], known: dict[str, list[Any]]) -> Any:
    """A strategy: `values` as generated, or with some fields replaced by known ones. Only for
    values that are valid already, so a negative case stays negative on what made it so."""
    if not isinstance(values, dict) or not is_valid(values):
        return st.just(values)

    def maybe_known(current: dict[str, Any], name: str, choices: list[Any]) -> Any:
        # Two times in three a known value, so that lookups succeed and what follows them runs.
        return st.integers(0, 2).flatmap(lambda roll: st.just(current) if roll == 0 else
                                         st.sampled_from(choices).map(lambda choice: {**current, name: choice}))

    strategy = st.just(_integers(values))
    for name, choices in known.items():
        if name in values:
            strategy = strategy.flatmap(lambda current, name=name, choices=choices: maybe_known(current, name, choices))
    return strategy.filter(is_valid)


def _checker(document: dict[str, Any], schema: dict[str, Any]) -> Callable[[Any], bool]:
    # The document's components next to the schema, so its "#/components/..." refs resolve;
    # formats checked, as schemathesis does when it decides whether a case is negative.
    validator = Draft202012Validator({**schema, "components": document["components"]}, format_checker=FormatChecker())
    return validator.is_valid


def _near_today(day: str) -> str:
    """A day within the scheduler's 31-day catch-up window, chosen by `day` (so reproducible)."""
    offset = int(hashlib.sha256(day.encode()).hexdigest(), 16) % 63 - 31
    return (dt.date.today() + dt.timedelta(days=offset)).isoformat()


def register_hooks(schema: Any, document: dict[str, Any]) -> None:
    """Generation hooks for `schema`, using the current world (see `set_world`)."""
    valid_body: dict[tuple[str, str], Callable[[Any], bool]] = {}
    valid_path: dict[tuple[str, str], Callable[[Any], bool]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            key = (method.upper(), path)
            if "requestBody" in op:
                valid_body[key] = _checker(document, next(iter(op["requestBody"]["content"].values()))["schema"])
            declared = [p for p in op.get("parameters", []) if p["in"] == "path"]
            if declared:
                valid_path[key] = _checker(document, {"type": "object", "required": [p["name"] for p in declared],
                                                      "properties": {p["name"]: p["schema"] for p in declared}})

    def never(_: Any) -> bool:
        return False

    def key_of(context: schemathesis.HookContext) -> tuple[str, str]:
        assert context.operation is not None
        return context.operation.method.upper(), context.operation.path

    @schema.hook
    def flatmap_path_parameters(context: schemathesis.HookContext, parameters: dict[str, Any]) -> Any:
        return _swap_in_known(parameters, valid_path.get(key_of(context), never), current_world().path_values)

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> Any:
        return _swap_in_known(body, valid_body.get(key_of(context), never), current_world().body_values)

    @schema.hook
    def map_case(context: schemathesis.HookContext, case: Any) -> Any:
        # An expire-points run walks every day from the program's expiry cursor to as_of, eight
        # shard queries a day: a far-future as_of takes minutes (a known cost, reported), so keep
        # it near today. A valid day stays a valid day.
        body = case.body
        if (case.path_parameters or {}).get("job") == "expire-points" and isinstance(body, dict) \
                and isinstance(body.get("as_of"), str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["as_of"]):
            case.body = {**body, "as_of": _near_today(body["as_of"])}
        return case
