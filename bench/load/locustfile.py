"""The load profile, for Locust (run by `python -m bench.load`; see bench/load/__init__.py).

LOAD_MODE=api: members and tills against the API, with the mix below. LOAD_MODE=bare: the same
operations as the same DynamoDB calls made with bare boto3 (bench/load/baseline.py). Each user
is one closed-loop client (no think time). Settings come from the environment:
LOAD_MEMBERS (the seeded population, JSON), LOAD_OUT (this run's results, JSON),
LOAD_TEMPLATES (bare: the recorded calls), LOAD_DYNAMODB (bare: the endpoint), LOAD_TABLE.

The mix (share of operations; a new person's login and enrolment are two requests, a top-up is the
member's request and WeChat Pay's confirmation through its stand-in, which notifies the API twice):
  card read 36 %, order 22 %, refund 5 %, check-in 8 %, redemption 4 %, hold 3 %, hold capture
  or release 3 %, login 5 %, new person login + enrolment 4 %, coupon claim 3 %, coupon 核销 3 %,
  top-up 2 %, stored-value till payment 2 %;
  LOAD_MIX=first-wave instead runs the issue's first-wave mix, without the second-wave operations
  (the mix the issue's "today's 21.5 requests/s" was measured with): card read 40 %, order 25 %,
  refund 5 %, check-in 10 %, redemption 4 %, hold 3 %, hold capture or release 3 %, login 5 %,
  new person login + enrolment 5 %;
  members: 10 % of picks go to 20 hot members, the rest uniformly to the population;
  5 % of operations are instead a replay of an earlier till or member request with the same
  idempotency key (a till's replay is signed anew), whose answer must equal the first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import secrets
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Any

from locust import FastHttpUser, User, constant, events, task

MODE = os.environ.get("LOAD_MODE", "api")
APPID = "wxdemo0000000000"
TILL_KEY, TILL_SECRET = "dev-pos", "dev-pos-secret"
REWARD = "demo-cup"
HOT_SHARE = 0.10
REPLAY_SHARE = 0.05

WEIGHTS = {"card": 36, "order": 22, "refund": 5, "checkin": 8, "redemption": 4, "hold": 3, "hold_settle": 3,
           "login": 5, "enrol": 4, "coupon_claim": 3, "coupon_redeem": 3, "top_up": 2, "sv_payment": 2}
# The first-wave mix (`--mix first-wave`): the 40/25/5/10/10/10 before coupons and stored value.
FIRST_WAVE_WEIGHTS = {"card": 40, "order": 25, "refund": 5, "checkin": 10, "redemption": 4, "hold": 3,
                      "hold_settle": 3, "login": 5, "enrol": 5}
MIXES = {"full": WEIGHTS, "first-wave": FIRST_WAVE_WEIGHTS}
MIX = os.environ.get("LOAD_MIX", "full")
if MIX not in MIXES:
    raise SystemExit(f"LOAD_MIX={MIX!r}: one of {', '.join(MIXES)}")
COUPON_TEMPLATE = "load-5off"  # bench/load/__main__.py writes it: 5 yuan off 10, unlimited, no per-member limit
TOP_UP_PLAN, TOP_UP_FEN = "sv-100", 11_000  # the demo plan: pay 10,000 fen, 1,000 bonus
WECHAT = os.environ.get("LOAD_WECHAT", "")


class Results:
    """Everything a run saw, dumped to LOAD_OUT when it stops (one Locust process)."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.errors: Counter[str] = Counter()  # "503 retry_later", "409 insufficient_points", ...
        self.server_errors: list[dict[str, Any]] = []
        self.replays = 0
        self.resigned = 0  # till requests signed again after the client resent a spent nonce
        self.replay_mismatches: list[dict[str, Any]] = []
        self.effects: list[dict[str, Any]] = []  # first 2xx answer of every idempotency key
        self.paid_top_ups: list[dict[str, Any]] = []  # top-ups WeChat Pay's stand-in confirmed
        self.started = time.time()

    def record(self, op: str, ms: float, status: int, body: Any) -> None:
        self.latencies[op].append(ms)
        self.statuses[op][status] += 1
        if status >= 400:
            code = body.get("error", {}).get("code") if isinstance(body, dict) else None
            self.errors[f"{status} {code or '-'}"] += 1
            if status >= 500 and len(self.server_errors) < 50:
                self.server_errors.append({"op": op, "status": status, "body": body})

    def dump(self, path: str) -> None:
        data = {"mode": MODE, "started": self.started, "ended": time.time(),
                "latencies": self.latencies, "statuses": {k: dict(v) for k, v in self.statuses.items()},
                "errors": dict(self.errors), "server_errors": self.server_errors, "replays": self.replays,
                "resigned": self.resigned,
                "replay_mismatches": self.replay_mismatches[:50], "replay_mismatch_count": len(self.replay_mismatches),
                "effects": self.effects, "paid_top_ups": self.paid_top_ups, "new_members": [m for m in POPULATION.members[POPULATION.seeded:]]}
        with open(path, "w", encoding="utf-8") as out:
            json.dump(data, out)


class Population:
    def __init__(self) -> None:
        path = os.environ.get("LOAD_MEMBERS")
        self.members: list[dict[str, Any]] = json.load(open(path, encoding="utf-8")) if path else []
        self.seeded = len(self.members)
        self.hot = [m for m in self.members if m["hot"]] or self.members[:20]
        self.rich = [m for m in self.members if m["points"] > 0]  # grows with every accrual
        self.rich_ids = {m["member_id"] for m in self.rich}
        self.orders: list[dict[str, Any]] = []  # accrued orders, refundable
        self.open_holds: list[dict[str, Any]] = []
        self.replayable: list[dict[str, Any]] = []  # idempotent requests sent, with their first answer
        self.coupons: list[dict[str, Any]] = []  # claimed and not yet used: {"code", "member"}
        self.funded: list[dict[str, Any]] = []  # members whose top-up was paid (stored value to spend)

    def pick(self, pool: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        if random.random() < HOT_SHARE and self.hot:
            return random.choice(self.hot)
        return random.choice(pool or self.members)

    def earned(self, member: dict[str, Any]) -> None:
        if member["member_id"] not in self.rich_ids:
            self.rich_ids.add(member["member_id"])
            self.rich.append(member)


RESULTS = Results()
POPULATION = Population()


@events.test_stop.add_listener
def _dump(environment: Any, **_: Any) -> None:
    out = os.environ.get("LOAD_OUT")
    if out:
        RESULTS.dump(out)


def _sign(method: str, path: str, body: bytes) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(12)
    message = "\n".join([method, path, timestamp, nonce, hashlib.sha256(body).hexdigest()])
    signature = hmac.new(TILL_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Loyalty-Key": TILL_KEY, "X-Loyalty-Timestamp": timestamp,
            "X-Loyalty-Nonce": nonce, "X-Loyalty-Signature": signature}


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


class _Weighted:
    """Picks an operation by the profile's weights (Locust's own @task weights, made explicit so
    the replay share can be taken out of every operation alike)."""

    def __init__(self, weights: dict[str, int]) -> None:
        self.names = list(weights)
        self.weights = list(weights.values())

    def choose(self) -> str:
        return random.choices(self.names, self.weights)[0]


if MODE == "api":

    class Member(FastHttpUser):
        """A mini-program or a till; one operation per iteration."""

        wait_time = constant(0)
        chooser = _Weighted(MIXES[MIX])

        def _send(self, op: str, method: str, path: str, body: Any = None, *, till: bool = False,
                  token: str | None = None, member: str = "", ids: tuple[str, ...] = ()) -> tuple[int, Any]:
            total_ms = 0.0
            for _attempt in range(3):
                status, answer = self._send_once(op, method, path, body, till=till, token=token, member=member,
                                                 ids=ids)
                total_ms += self._last_ms
                # The HTTP client resent a request whose connection dropped: the server had spent its
                # nonce. A till signs again, as the contract asks (and the answer is the same).
                if not (till and status == 401 and (answer or {}).get("error", {}).get("code") == "replayed_nonce"):
                    break
                RESULTS.resigned += 1
            RESULTS.record(op, total_ms, status, answer)
            return status, answer

        def _send_once(self, op: str, method: str, path: str, body: Any, *, till: bool, token: str | None,
                       member: str, ids: tuple[str, ...]) -> tuple[int, Any]:
            payload = json.dumps(body).encode() if body is not None else b""
            headers = _sign(method, path, payload) if till else {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            # Labels for the stack's DynamoDB recorder (devstack/dynamodb_recorder.py); ignored by the app.
            headers.update({"X-Load-Op": op, "X-Load-Member": member, "X-Load-Ids": ",".join(ids)})
            started = time.perf_counter()
            with self.client.request(method, path, data=payload or None, headers=headers, name=op,
                                     catch_response=True) as response:
                ms = (time.perf_counter() - started) * 1000
                status = response.status_code or 0
                try:
                    answer = json.loads(response.content) if response.content else None
                except ValueError:
                    answer = None
                if status >= 500 or status == 0:
                    response.failure(f"{status}")
                else:
                    response.success()
            self._last_ms = ms
            return status, answer

        def _idempotent(self, op: str, method: str, path: str, body: Any, *, till: bool, token: str | None,
                        member: dict[str, Any], key: str, ids: tuple[str, ...]) -> tuple[int, Any]:
            status, answer = self._send(op, method, path, body, till=till, token=token, member=member["member_id"],
                                        ids=ids)
            if 200 <= status < 300:
                request = {"op": op, "method": method, "path": path, "body": body, "till": till, "token": token,
                           "member": member["member_id"], "key": key, "ids": ids, "status": status,
                           "answer": answer}
                POPULATION.replayable.append(request)
                RESULTS.effects.append({k: request[k] for k in ("op", "member", "key", "ids", "status", "answer")})
            return status, answer

        @task
        def one(self) -> None:
            if random.random() < REPLAY_SHARE and POPULATION.replayable:
                self.replay()
                return
            getattr(self, self.chooser.choose())()

        # --- operations -------------------------------------------------------------------

        def card(self) -> None:
            member = POPULATION.pick()
            self._send("card", "GET", "/v1/members/me", token=member["token"], member=member["member_id"])

        def order(self) -> None:
            member = POPULATION.pick()
            order_id = _new_id("lo")
            amount = random.randint(100, 30_000)
            body = {"order_id": order_id, "member_id": member["member_id"], "amount_fen": amount,
                    "paid_at": datetime.now(timezone.utc).isoformat()}
            status, answer = self._idempotent("order", "POST", "/v1/orders", body, till=True, token=None,
                                              member=member, key=order_id, ids=(order_id,))
            if status == 201:
                POPULATION.orders.append({"order_id": order_id, "member": member, "left": amount})
                if answer.get("points_awarded", 0) > 0:
                    POPULATION.earned(member)

        def refund(self) -> None:
            if not POPULATION.orders:
                return self.order()
            order = random.choice(POPULATION.orders)
            if order["left"] <= 0:
                return self.order()
            amount = random.randint(1, order["left"])
            order["left"] -= amount
            refund_id = _new_id("lr")
            path = f"/v1/orders/{order['order_id']}/refunds"
            self._idempotent("refund", "POST", path, {"refund_id": refund_id, "amount_fen": amount}, till=True,
                             token=None, member=order["member"], key=refund_id, ids=(order["order_id"], refund_id))

        def checkin(self) -> None:
            member = POPULATION.pick()
            self._send("checkin", "POST", "/v1/members/me/checkin", token=member["token"], member=member["member_id"])

        def redemption(self) -> None:
            member = POPULATION.pick(POPULATION.rich)
            request_id = _new_id("lq")
            body = {"reward_id": REWARD, "quantity": 1, "request_id": request_id}
            self._idempotent("redemption", "POST", "/v1/members/me/redemptions", body, till=False,
                             token=member["token"], member=member, key=request_id, ids=(request_id, REWARD))

        def hold(self) -> None:
            member = POPULATION.pick(POPULATION.rich)
            hold_id, order_id = _new_id("lh"), _new_id("lo")
            body = {"hold_id": hold_id, "member_id": member["member_id"], "order_id": order_id,
                    "order_amount_fen": 100_000, "points": 100}
            status, _ = self._idempotent("hold", "POST", "/v1/points/holds", body, till=True, token=None,
                                         member=member, key=hold_id, ids=(hold_id, order_id))
            # Most holds are settled by the till; the rest are left for the frequent job to release.
            if status == 201 and random.random() < 0.8:
                POPULATION.open_holds.append({"hold_id": hold_id, "member": member})

        def hold_settle(self) -> None:
            if not POPULATION.open_holds:
                return self.hold()
            hold = POPULATION.open_holds.pop(random.randrange(len(POPULATION.open_holds)))
            outcome = "capture" if random.random() < 0.7 else "release"
            path = f"/v1/points/holds/{hold['hold_id']}/{outcome}"
            self._idempotent("hold_settle", "POST", path, None, till=True, token=None, member=hold["member"],
                             key=f"{hold['hold_id']}:{outcome}", ids=(hold["hold_id"],))

        def coupon_claim(self) -> None:
            member = POPULATION.pick()
            request_id = _new_id("lc")
            status, answer = self._idempotent("coupon_claim", "POST", "/v1/members/me/coupons",
                                              {"template_id": COUPON_TEMPLATE, "request_id": request_id}, till=False,
                                              token=member["token"], member=member, key=request_id,
                                              ids=(request_id, COUPON_TEMPLATE))
            if status == 201:
                POPULATION.coupons.append({"code": answer["code"], "member": member})

        def coupon_redeem(self) -> None:
            if not POPULATION.coupons:
                return self.coupon_claim()
            coupon = POPULATION.coupons.pop(random.randrange(len(POPULATION.coupons)))
            request_id, order_id = _new_id("lu"), _new_id("lo")
            body = {"code": coupon["code"], "order_id": order_id, "order_amount_fen": random.randint(1_000, 20_000),
                    "request_id": request_id}
            self._idempotent("coupon_redeem", "POST", "/v1/coupons/redeem", body, till=True, token=None,
                             member=coupon["member"], key=request_id, ids=(request_id, order_id, coupon["code"]))

        def top_up(self) -> None:
            """The member opens the top-up, then the payer pays: WeChat Pay's stand-in notifies the
            API (twice at once, as its retries can overlap); the stored value is credited once."""
            member = POPULATION.pick()
            request_id = _new_id("lt")
            status, answer = self._idempotent("top_up", "POST", "/v1/members/me/top-ups",
                                              {"plan_id": TOP_UP_PLAN, "request_id": request_id}, till=False,
                                              token=member["token"], member=member, key=request_id,
                                              ids=(request_id,))
            if status != 201:
                return
            started = time.perf_counter()
            payload = json.dumps({"out_trade_no": answer["top_up_id"], "times": 2}).encode()
            with self.client.request("POST", f"{WECHAT}/_pay/confirm", data=payload, name="top_up_confirm",
                                     headers={"Content-Type": "application/json"}, catch_response=True) as confirmed:
                ms = (time.perf_counter() - started) * 1000
                try:
                    statuses = json.loads(confirmed.content).get("deliveries") if confirmed.status_code == 200 else None
                except ValueError:
                    statuses = None
                # The stand-in answers with the API's status for each delivery; WeChat Pay would resend
                # one the API did not take, so that is an error here.
                ok = bool(statuses) and all(code == 200 for code in statuses)
                if ok:
                    confirmed.success()
                else:
                    confirmed.failure(f"{confirmed.status_code} {statuses}")
            RESULTS.record("top_up_confirm", ms, 200 if ok else 599,
                           None if ok else {"error": {"code": "notification_not_taken"}})
            if ok:
                RESULTS.paid_top_ups.append({"member": member["member_id"], "top_up_id": answer["top_up_id"],
                                             "fen": TOP_UP_FEN})
                POPULATION.funded.append(member)

        def sv_payment(self) -> None:
            if not POPULATION.funded:
                return self.top_up()
            member = random.choice(POPULATION.funded)
            payment_id, order_id = _new_id("lp"), _new_id("lo")
            body = {"payment_id": payment_id, "member_id": member["member_id"], "order_id": order_id,
                    "amount_fen": random.randint(100, 3_000)}
            self._idempotent("sv_payment", "POST", "/v1/stored-value/payments", body, till=True, token=None,
                             member=member, key=payment_id, ids=(payment_id, order_id))

        def login(self) -> None:
            member = POPULATION.pick()
            self._send("login", "POST", "/v1/auth/login", {"appid": APPID, "code": f"dev-{member['openid']}"},
                       member=member["member_id"], ids=(member["openid"],))

        def enrol(self) -> None:
            openid = _new_id("ln")
            status, answer = self._send("login_new", "POST", "/v1/auth/login", {"appid": APPID, "code": f"dev-{openid}"},
                                        ids=(openid,))
            if status != 200:
                return
            status, card = self._send("enrol", "POST", "/v1/members", {"nickname": "new"}, token=answer["token"],
                                      ids=(openid,))
            if status == 201:
                # Its token names no member: a fresh login would; card reads resolve it either way.
                POPULATION.members.append({"member_id": card["member_id"], "openid": openid, "token": answer["token"],
                                           "hot": False, "points": 0})

        def replay(self) -> None:
            first = random.choice(POPULATION.replayable)
            RESULTS.replays += 1
            status, answer = self._send(f"{first['op']} (replay)", first["method"], first["path"], first["body"],
                                        till=first["till"], token=first["token"], member=first["member"],
                                        ids=tuple(first["ids"]))
            if status >= 500:
                return  # counted with the 5xx; a caller retries
            if (status, answer) != (first["status"], first["answer"]):
                RESULTS.replay_mismatches.append({"op": first["op"], "key": first["key"], "first": first["status"],
                                                  "first_answer": first["answer"], "again": status,
                                                  "answer": answer})

else:
    from bench.load.baseline import BareReplayer

    class Bare(User):
        """The same operations as the DynamoDB calls they made, replayed with bare boto3."""

        wait_time = constant(0)

        shared: BareReplayer | None = None  # one per Locust process: parsing the recorded calls is not free

        def on_start(self) -> None:
            if Bare.shared is None:
                Bare.shared = BareReplayer(os.environ["LOAD_TEMPLATES"], os.environ["LOAD_DYNAMODB"])
            self.replayer = Bare.shared
            weights = {op: w for op, w in MIXES[MIX].items() if self.replayer.has(op)}
            if "enrol" in weights and self.replayer.has("login_new"):
                weights["login_new"] = weights["enrol"]
            self.chooser = _Weighted(weights)

        @task
        def one(self) -> None:
            op = self.chooser.choose()
            ms, error = self.replayer.run(op)
            RESULTS.record(op, ms, 200 if error is None else 599, {"error": {"code": error}} if error else None)
            events.request.fire(request_type="BARE", name=op, response_time=ms, response_length=0,
                                exception=RuntimeError(error) if error else None, context={})
