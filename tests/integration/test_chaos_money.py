"""Chaos for money and coupons: DynamoDB faults and racing callers during stored-value top-ups
(opened by the member, completed by WeChat Pay's signed notification), till payments (one-step and
frozen, then captured or released), their refunds, coupon claims (free, and paid with points in
the same transaction), staff grants, 核销 at the till and voids; and the jobs that touch them (release of frozen payments, settling unnotified WeChat Pay
orders, coupon expiry).

The same machinery as the points suite (tests/integration/test_chaos.py): `tests/support/faults.py`
throttles DynamoDB calls, cancels transactions with `TransactionConflict` and kills the request
right after its transaction committed; the same request is delivered again just after this one
read its idempotency key (a retry while the first is in flight); and another caller acts between
this request's reads and its write (a racing top-up credited to the same wallet, another till
using the same coupon, a competing claim of the same template...). Callers retry every 5xx with
the same key; WeChat Pay retries its notification until it gets a 2xx. A job that fails is run
again, as the schedule would.

Afterwards: every answer equals what an independent model of the same sequence without faults
predicts; every wallet equals the model's and Σ its history rows (principal and bonus each); one
history row per top-up, payment, settlement and refund; every payment's refunded totals and
status, every top-up order's status, every coupon's status, every template's stock counter and
every member's limit counter and unused count are the model's; each coupon has one history row
per event; points paid for coupons reconcile with one ledger row each; every request sent again
(the notification included) answers as it did the first time. A run must also have met every
fault in every kind of request (`WANTED`) and shown every refusal and repeat in `STORIES`.

`test_the_money_chaos_checks_catch_a_missing_guard` runs a shorter sequence (every racer forced
once) with one guard removed and asserts that these checks find the damage.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib import clock
from chalicelib.store import keys
from tests.support.faults import DynamoFaults, Rates, send_until_answered

# CHAOS_MONEY_SEED=<n> runs another sequence (to explore; CI runs this one).
SEED = int(os.environ.get("CHAOS_MONEY_SEED", "20261130"))
STEPS = 80  # random requests before the worst cases and the jobs
TEETH_STEPS = 30  # the broken variants are caught sooner: a shorter run keeps the file fast
MEMBERS = 4
RATES = Rates(throttle=0.05, conflict=0.2, crash=0.15)
P_DUPLICATE = 0.15  # the same request arrives again while this one is in flight
P_RACING = 0.15  # another caller changes what this request read before it writes
MAX_ATTEMPTS = 25
PROGRAM = "demo"
NOTIFY = "/v1/payments/wechat/notify"
PLANS = {"sv-100": (10_000, 1_000), "sv-500": (50_000, 8_000)}
CAP = 500_000  # every member binds a phone
FREEZE_MINUTES = 30  # the demo program's hold time: frozen payments go back after it
FEW, SHORT, LAST, POINTS, DEMO = "chaos-few", "chaos-short", "chaos-last", "chaos-points", "demo-10off"
POINTS_PRICE = 100
KINDS = ("top_up", "notify", "pay", "capture", "release", "refund", "claim", "grant", "redeem", "void")
JOBS = ("release_job", "settle_job", "expire_coupons")
FAULTS = ("throttle", "conflict", "crash")
# Every kind meets every fault at least once in a run (see `top_up_faults`). A top-up's opening
# writes one transaction (the pending order), so it meets every fault too.
WANTED = [(kind, fault) for kind in (*KINDS, *JOBS) for fault in FAULTS]
WANTED += [(kind, racer) for kind in KINDS for racer in ("duplicate", "racing")]
Expected = tuple[int, dict[str, Any]]
# What a run must have shown at least once (the model counts them): the refusals and the repeats.
STORIES = ("a notification repeated", "insufficient_balance", "refund_exceeds_payment", "out_of_stock",
           "limit_reached", "insufficient_points", "a coupon paid with points", "coupon_used", "coupon_expired",
           "a voided coupon used again", "a void giving the coupon back unused",
           "a void giving the coupon back expired")


# --- the model: the same sequence without faults, in plain arithmetic -------------------------

@dataclass
class Wallet:
    principal: int = 0
    bonus: int = 0
    frozen_principal: int = 0
    frozen_bonus: int = 0

    @property
    def available(self) -> int:
        return self.principal + self.bonus


@dataclass
class TopUp:
    member: str
    plan: str
    status: str = "pending"  # -> paid (credited) or closed (timed out unpaid)


@dataclass
class Payment:
    member: str
    amount: int
    principal: int
    bonus: int
    status: str  # paid, frozen, released
    answer: dict[str, Any] = field(default_factory=dict)
    refunded_principal: int = 0
    refunded_bonus: int = 0
    settled: dict[str, Any] | None = None  # the settlement's answer

    @property
    def refunded(self) -> int:
        return self.refunded_principal + self.refunded_bonus


@dataclass
class Template:
    name: str
    total: int | None
    limit: int | None
    valid_from: dt.date
    valid_until: dt.date
    threshold: int
    off: Callable[[int], int]  # order amount -> discount
    issued: int = 0
    points_price: int = 0


@dataclass
class Coupon:
    member: str
    template: str
    code: str = ""  # known once the answer (or the table, for a grant) tells it
    coupon_id: str = ""
    status: str = "unused"
    order_id: str | None = None
    events: Counter = field(default_factory=Counter)


class Model:
    def __init__(self, members: list[str], today: dt.date) -> None:
        self.today = today
        self.wallets = {member: Wallet() for member in members}
        self.top_ups: dict[str, TopUp] = {}
        self.payments: dict[str, Payment] = {}
        self.templates = {
            DEMO: Template("满100减10", 100, 1, today, today + dt.timedelta(days=29), 10_000, lambda a: min(1_000, a)),
            FEW: Template("满50减5", 8, 3, today, today + dt.timedelta(days=29), 5_000, lambda a: min(500, a)),
            SHORT: Template("今日八折", None, None, today, today, 0, lambda a: min(a * 20 // 100, 2_000)),
            LAST: Template("最后两张", 2, 1, today, today + dt.timedelta(days=6), 0, lambda a: min(300, a)),
            POINTS: Template("积分换券", None, None, today, today + dt.timedelta(days=29), 0, lambda a: min(200, a),
                             points_price=POINTS_PRICE),
        }
        self.coupons: list[Coupon] = []
        self.claims: dict[str, Coupon] = {}  # request_id -> its coupon
        self.grants: dict[str, list[Coupon]] = {}  # request_id -> its coupons
        self.held: Counter = Counter()  # (member, template) -> claimed + granted
        self.points = dict.fromkeys(members, 0)  # points balances (a points price is paid with them)
        self.points_rows: Counter = Counter()  # (member, pk, sk): the points ledger rows of claims
        # The stories a run must tell at least once (see `STORIES`).
        self.stories: Counter = Counter()
        # Stored-value history rows a fault-free run leaves: (member, pk, sk, type), each once.
        self.rows: Counter = Counter()

    def _row(self, member: str, kind: str, key: str, type_: str) -> None:
        self.rows[(member, *keys.stored_value_entry(PROGRAM, member, kind, key), type_)] += 1

    # -- money

    def top_up(self, top_up_id: str, member: str, plan: str) -> Expected:
        pay, bonus = PLANS[plan]
        wallet = self.wallets[member]
        if wallet.available + wallet.frozen_principal + wallet.frozen_bonus + pay + bonus > CAP:
            return 409, {"code": "balance_cap"}
        self.top_ups.setdefault(top_up_id, TopUp(member, plan))
        return 201, {"top_up_id": top_up_id, "plan_id": plan, "pay_fen": pay, "bonus_fen": bonus}

    def credit(self, top_up_id: str) -> None:
        top_up = self.top_ups[top_up_id]
        if top_up.status != "pending":
            return
        top_up.status = "paid"
        pay, bonus = PLANS[top_up.plan]
        wallet = self.wallets[top_up.member]
        wallet.principal += pay
        wallet.bonus += bonus
        self._row(top_up.member, "topup", top_up_id, "top_up")

    def notify(self, top_up_id: str) -> Expected:
        if self.top_ups[top_up_id].status == "paid":
            self.stories["a notification repeated"] += 1
        self.credit(top_up_id)  # a repeat, or a closed order, is acknowledged and changes nothing
        return 200, {"code": "SUCCESS", "message": "OK"}

    def pay(self, payment_id: str, member: str, amount: int, freeze: bool) -> Expected:
        wallet = self.wallets[member]
        if amount > wallet.available:
            self.stories["insufficient_balance"] += 1
            return 409, {"code": "insufficient_balance"}
        principal = min(wallet.principal, amount)
        bonus = amount - principal
        wallet.principal -= principal
        wallet.bonus -= bonus
        if freeze:
            wallet.frozen_principal += principal
            wallet.frozen_bonus += bonus
        status = "frozen" if freeze else "paid"
        answer = {"payment_id": payment_id, "member_id": member, "amount_fen": amount, "principal_fen": principal,
                  "bonus_fen": bonus, "status": status, "refunded_fen": 0, "stored_value_fen": wallet.available}
        self.payments[payment_id] = Payment(member, amount, principal, bonus, status, answer)
        self._row(member, "pay", payment_id, "freeze" if freeze else "payment")
        return 201, answer

    def settle(self, payment_id: str, outcome: str) -> Expected:
        payment = self.payments[payment_id]
        if payment.status == outcome:  # settled the same way again (or paid in one step): the first answer
            return 200, payment.settled or payment.answer
        if payment.status != "frozen":
            return 409, {"code": "payment_settled"}
        wallet = self.wallets[payment.member]
        wallet.frozen_principal -= payment.principal
        wallet.frozen_bonus -= payment.bonus
        if outcome == "released":
            wallet.principal += payment.principal
            wallet.bonus += payment.bonus
        payment.status = outcome
        kind = "capture" if outcome == "paid" else "release"
        self._row(payment.member, kind, payment_id, kind)
        payment.settled = {**payment.answer, "status": outcome, "stored_value_fen": wallet.available}
        return 200, payment.settled

    def refund(self, payment_id: str, refund_id: str, amount: int) -> Expected:
        payment = self.payments[payment_id]
        if payment.status != "paid":
            return 409, {"code": "payment_not_paid"}
        after = payment.refunded + amount
        if after > payment.amount:
            self.stories["refund_exceeds_payment"] += 1
            return 409, {"code": "refund_exceeds_payment"}
        principal = min(payment.principal, after) - payment.refunded_principal
        bonus = amount - principal
        payment.refunded_principal += principal
        payment.refunded_bonus += bonus
        wallet = self.wallets[payment.member]
        wallet.principal += principal
        wallet.bonus += bonus
        self._row(payment.member, "payrefund", f"{payment_id}#{refund_id}", "payment_refund")
        return 201, {"refund_id": refund_id, "payment_id": payment_id, "amount_fen": amount, "principal_fen": principal,
                     "bonus_fen": bonus, "stored_value_fen": wallet.available}

    def close_or_credit(self, paid_at_wechat: set[str]) -> None:
        """The settle-payments job past every order's timeout: paid ones credited, the others closed."""
        for top_up_id, top_up in self.top_ups.items():
            if top_up.status == "pending":
                if top_up_id in paid_at_wechat:
                    self.credit(top_up_id)
                else:
                    top_up.status = "closed"

    def release_frozen(self) -> None:
        for payment_id, payment in self.payments.items():
            if payment.status == "frozen":
                self.settle(payment_id, "released")

    # -- coupons

    def _refusal(self, member: str, template_id: str) -> str | None:
        template = self.templates[template_id]
        if template.valid_until < self.today:
            return "not_claimable"
        if template.total is not None and template.issued >= template.total:
            return "out_of_stock"
        if template.limit is not None and self.held[(member, template_id)] >= template.limit:
            return "limit_reached"
        return None

    def _issue(self, member: str, template_id: str) -> Coupon:
        self.templates[template_id].issued += 1
        self.held[(member, template_id)] += 1
        coupon = Coupon(member, template_id)
        coupon.events["issued"] += 1
        self.coupons.append(coupon)
        return coupon

    def _view(self, coupon: Coupon) -> dict[str, Any]:
        template = self.templates[coupon.template]
        return {"template_id": coupon.template, "name": template.name, "status": coupon.status,
                "valid_from": template.valid_from.isoformat(), "valid_until": template.valid_until.isoformat()}

    def claim(self, request_id: str, member: str, template_id: str) -> Expected:
        refusal = self._refusal(member, template_id)
        price = self.templates[template_id].points_price
        if not refusal and self.points[member] < price:
            refusal = "insufficient_points"
        if refusal:
            self.stories[refusal] += 1
            return 409, {"code": refusal}
        if price:
            self.points[member] -= price
            self.points_rows[(member, *keys.member_operation(PROGRAM, member, "coupon", request_id))] += 1
            self.stories["a coupon paid with points"] += 1
        coupon = self.claims[request_id] = self._issue(member, template_id)
        return 201, self._view(coupon)

    def grant(self, request_id: str, template_id: str, members: list[str]) -> Expected:
        granted, refused, coupons = 0, [], []
        for member in dict.fromkeys(members):
            refusal = self._refusal(member, template_id)
            if refusal:
                self.stories[refusal] += 1
                refused.append({"member_id": member, "code": refusal})
            else:
                coupons.append(self._issue(member, template_id))
                granted += 1
        self.grants[request_id] = coupons
        return 200, {"template_id": template_id, "request_id": request_id, "granted": granted, "refused": refused}

    def redeem(self, coupon: Coupon, order_id: str, amount: int) -> Expected:
        template = self.templates[coupon.template]
        if coupon.status == "used":
            self.stories["coupon_used"] += 1
            return 409, {"code": "coupon_used"}
        if coupon.status == "expired" or self.today > template.valid_until:
            self.stories["coupon_expired"] += 1
            return 409, {"code": "coupon_expired"}
        if amount < template.threshold:
            return 409, {"code": "threshold_not_met"}
        coupon.status, coupon.order_id = "used", order_id
        if coupon.events["voided"]:
            self.stories["a voided coupon used again"] += 1
        coupon.events["used"] += 1
        return 201, {"coupon_id": coupon.coupon_id, "code": coupon.code, "order_id": order_id,
                     "discount_fen": template.off(amount), "status": "used"}

    def void(self, coupon: Coupon, order_id: str) -> Expected:
        if coupon.status != "used" or coupon.order_id != order_id:
            return 409, {"code": "coupon_not_used"}
        coupon.status = "unused" if self.today <= self.templates[coupon.template].valid_until else "expired"
        self.stories[f"a void giving the coupon back {coupon.status}"] += 1
        coupon.order_id = None
        coupon.events["voided"] += 1
        return 200, {"coupon_id": coupon.coupon_id, "code": coupon.code, "status": coupon.status,
                     "order_id": None, "discount_fen": None, "used_at": None}

    def expire_coupons(self) -> None:
        for coupon in self.coupons:
            if coupon.status == "unused" and self.templates[coupon.template].valid_until < self.today:
                coupon.status = "expired"
                coupon.events["expired"] += 1


# --- the scenario ----------------------------------------------------------------------------

@dataclass
class Op:
    """One caller request (or one run of a job, `call` set). `expect` applies it to the model and
    returns the fault-free answer; `key` is the item holding its idempotency key, read first."""

    kind: str
    method: str
    path: str
    body: Any
    caller: str  # "till", "staff", "wechatpay", or a member's token
    expect: Callable[[Model], Expected]
    member: str | None = None
    key: tuple[str, str] | None = None
    racer: Callable[[], None] | None = None  # another caller, acting between reads and write
    duplicate: bool = False
    racing: bool = False
    call: Callable[[], Any] | None = None
    after: Callable[[Any], None] | None = None  # learns ids from the answer (coupon codes)
    expected: Expected | None = None
    answer: Any = None
    duplicate_answer: Any = None


def _essence(answer: Any) -> tuple[int, Any]:
    """What must not differ between two answers to one request (each has its own request_id)."""
    if answer.status_code >= 400:
        return answer.status_code, (answer.json or {}).get("error", {}).get("code")
    return answer.status_code, answer.json


def _keys_read(request: dict[str, Any]) -> set[tuple[str, str]]:
    wanted = [request["Key"]] if "Key" in request else [
        key for spec in request.get("RequestItems", {}).values() for key in spec.get("Keys", [])]
    return {(key["pk"]["S"], key["sk"]["S"]) for key in wanted}


def _retry_later(answer: Any) -> bool:
    body = answer.json or {}
    if "error" in body:
        return body["error"].get("code") == "retry_later"
    return body.get("code") == "FAIL" and str(body.get("message", "")).startswith("retry_later")  # WeChat Pay's shape


class Scenario:
    def __init__(self, api: Any, pay: Any, monkeypatch: Any, seed: int, steps: int = STEPS) -> None:
        from chalicelib import ids as id_maker
        from chalicelib.domain import coupons as coupon_rules
        from chalicelib.services import coupons as coupon_service
        from chalicelib.services.programs import program_config
        from chalicelib.settings import get_settings
        from chalicelib.store import tx

        self.api, self.pay, self.steps = api, pay, steps
        # WeChat Pay's orders of this run only: a seeded run makes the same out_trade_no each time.
        monkeypatch.setattr(pay, "orders", {})
        self.settings = get_settings()
        self.rng = random.Random(seed)
        # Seeded ids and coupon codes: they decide queue shards, hence the order the jobs meet
        # items and their faults. Random ones would make the run differ from run to run.
        made = random.Random(seed - 1)
        seeded_uuid = SimpleNamespace(uuid4=lambda: uuid.UUID(int=made.getrandbits(128)))
        monkeypatch.setattr(id_maker, "uuid", seeded_uuid)
        monkeypatch.setattr(coupon_service, "uuid", seeded_uuid)
        monkeypatch.setattr(coupon_rules, "secrets", SimpleNamespace(choice=made.choice))
        # The program's clock, moved by the scenario (jobs after the hold time, coupons after their
        # day). Started well before midnight in Shanghai so that 31 minutes stay on the same day.
        real_now = clock.now
        start = real_now()
        self.offset = dt.timedelta(hours=3) if start.astimezone(_SHANGHAI).hour >= 22 else dt.timedelta(0)
        monkeypatch.setattr(clock, "now", lambda: real_now() + self.offset)
        # A run that crashed keeps its claim until the lease runs out; the schedule's next delivery
        # comes after that (SQS's visibility timeout is longer than the lease). Here the next run
        # comes at once, so the lease is over at once (leases have tests of their own: test_jobs.py).
        from chalicelib import jobs

        monkeypatch.setattr(jobs, "LEASE_SECONDS", 0)
        config = program_config(self.settings, PROGRAM)
        self.tokens: dict[str, str] = {}
        for n in range(MEMBERS):
            token = api.enrolled(f"chaos-money-{seed}-{n}")
            assert api.member("POST", "/v1/members/me/phone", token, {"phone_code": f"phone-139000{n:05d}"}).status_code == 200
            self.tokens[api.member("GET", "/v1/members/me", token).json["member_id"]] = token
        self.members = sorted(self.tokens)
        today = config.today(clock.now())
        self._put_templates(today)
        self.model = Model(self.members, today)
        for n, member in enumerate(self.members):  # points to pay a points price with: 1 a yuan
            yuan = 150 if n == 0 else 450
            order = {"order_id": f"setup-{n}", "member_id": member, "amount_fen": yuan * 100,
                     "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()}
            assert api.till("POST", "/v1/orders", order).json["points_balance"] == yuan
            self.model.points[member] = yuan
        self.faults = DynamoFaults(tx.connection().client, random.Random(seed + 1), RATES, interfere=self._interfere)
        self.problems: list[str] = []
        self.done: list[Op] = []
        self.paid_at_wechat: set[str] = set()
        self._current: Op | None = None
        self._key_read = False
        self._ids = 0

    def _put_templates(self, today: dt.date) -> None:
        few = {"name": "满50减5", "kind": "amount_off", "threshold_fen": 5_000, "off_fen": 500, "valid_days": 30,
               "total": 8, "per_member_limit": 3, "claimable": True}
        short = {"name": "今日八折", "kind": "percent_off", "threshold_fen": 0, "percent": 80, "max_off_fen": 2_000,
                 "valid_from": today.isoformat(), "valid_until": today.isoformat(), "claimable": True}
        last = {"name": "最后两张", "kind": "amount_off", "threshold_fen": 0, "off_fen": 300, "valid_days": 7,
                "total": 2, "per_member_limit": 1, "claimable": True}
        points = {"name": "积分换券", "kind": "amount_off", "threshold_fen": 0, "off_fen": 200, "valid_days": 30,
                  "claimable": True, "points_price": POINTS_PRICE}
        for template_id, body in ((FEW, few), (SHORT, short), (LAST, last), (POINTS, points)):
            answer = self.api.staff("PUT", f"/v1/admin/coupon-templates/{template_id}", body)
            assert answer.status_code == 200, answer.body

    # -- sending, retrying, comparing

    def _id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids}"

    def _send(self, op: Op) -> Any:
        if op.caller == "till":
            return self.api.till(op.method, op.path, op.body)
        if op.caller == "staff":
            return self.api.staff(op.method, op.path, op.body)
        if op.caller == "wechatpay":  # each delivery signed afresh, as WeChat Pay's retries are
            headers, body, _ = self.pay.payment_notification(op.body["top_up_id"])
            return self.api.request("POST", NOTIFY, headers=headers, raw=body)
        return self.api.member(op.method, op.path, op.caller, op.body)

    def perform(self, op: Op) -> None:
        if op.call is not None:
            return self._run_job(op)
        self._current, self._key_read = op, False
        answer = send_until_answered(self.faults, op.kind, f"{op.kind} {op.path}", lambda: self._send(op),
                                     self.problems, MAX_ATTEMPTS, retry_later=_retry_later)
        self._current = None
        self.faults.unforce()
        op.answer = answer
        if op.expected is None:  # (a duplicate delivery may have done it already)
            op.expected = op.expect(self.model)
        self._compare(op, answer, *op.expected)
        if op.duplicate_answer is not None and _essence(op.duplicate_answer) != _essence(answer):
            self.problems.append(f"answer: {op.kind} {op.path} {op.body}: the duplicate delivery answered "
                                 f"{_essence(op.duplicate_answer)}, the caller {_essence(answer)}")
        self.done.append(op)

    def _run_job(self, op: Op) -> None:
        """A job run; one that fails is run again (the schedule's next tick)."""
        assert op.call is not None
        for _ in range(MAX_ATTEMPTS):
            with self.faults.during(op.kind) as call:
                try:
                    op.call()
                    failed = None
                except Exception as exc:  # noqa: BLE001 - a failed run is what the schedule retries
                    failed = exc
            if failed is None:
                break
            if not (call.crashed or call.injected["throttle"] or call.injected["conflict"]):
                self.problems.append(f"5xx: {op.kind}: failed without a fault: {failed!r}")
        else:
            self.problems.append(f"5xx: {op.kind}: still failing after {MAX_ATTEMPTS} runs")
        self.faults.unforce()
        op.expect(self.model)

    def _compare(self, op: Op, answer: Any, status: int, fields: dict[str, Any]) -> None:
        if status >= 400:
            got = (answer.status_code, (answer.json or {}).get("error", {}).get("code"))
            want = (status, fields["code"])
        else:
            got = (answer.status_code, {k: (answer.json or {}).get(k) for k in fields})
            want = (status, fields)
        if got != want:
            self.problems.append(f"answer: {op.kind} {op.path} {op.body}: got {got}, a fault-free run gives {want}")
        elif op.after is not None and 200 <= answer.status_code < 300:
            op.after(answer.json)

    def _side(self, op: Op) -> None:
        """Another caller's request, disarmed, checked against the model like any other."""
        op.answer = self._send(op)
        op.expected = op.expect(self.model)
        self._compare(op, op.answer, *op.expected)
        self.done.append(op)

    # -- other callers, slipped in at the worst moment (they run with faults disarmed)

    def _interfere(self, operation: str, request: dict[str, Any]) -> None:
        op = self._current
        if op is None:
            return
        if op.duplicate and self._key_read:
            # It has just read its idempotency key and found nothing: the same request, delivered
            # again, completes now.
            op.duplicate = False
            self.faults.totals[(op.kind, "duplicate")] += 1
            op.duplicate_answer = self._send(op)
            op.expected = op.expect(self.model)
            if op.after is not None and op.duplicate_answer.status_code < 300:
                op.after(op.duplicate_answer.json)
        if op.key is not None and operation in ("GetItem", "BatchGetItem") and op.key in _keys_read(request):
            self._key_read = True
        if op.racing and operation == "TransactWriteItems" and op.racer is not None:
            op.racing = False
            self.faults.totals[(op.kind, "racing")] += 1
            op.racer()

    def _racing_top_up(self, member: str) -> Callable[[], None]:
        """Another top-up of the member's, paid and notified: the wallet moves under the request."""
        def race() -> None:
            opened = self._top_up_op(member, plan="sv-100")
            self._side(opened)
            if opened.answer.status_code == 201:
                self._side(self._notify_op(opened.answer.json["top_up_id"]))
        return race

    # -- the requests: money

    def _top_up_op(self, member: str | None = None, plan: str | None = None) -> Op:
        from chalicelib.services import pay_orders

        member = member or self.rng.choice(self.members)
        plan = plan or self.rng.choice(["sv-100", "sv-100", "sv-500"])
        request_id = self._id("tu")
        top_up_id = pay_orders.out_trade_no_for(PROGRAM, member, "top_up", request_id)
        return Op("top_up", "POST", "/v1/members/me/top-ups", {"plan_id": plan, "request_id": request_id},
                  self.tokens[member], lambda m: m.top_up(top_up_id, member, plan), member=member,
                  key=keys.pay_order(top_up_id), racer=self._racing_top_up(member))

    def _notify_op(self, top_up_id: str) -> Op:
        member = self.model.top_ups[top_up_id].member
        return Op("notify", "POST", NOTIFY, {"top_up_id": top_up_id}, "wechatpay", lambda m: m.notify(top_up_id),
                  member=member, key=keys.pay_order(top_up_id), racer=self._racing_top_up(member))

    def _open_top_up(self, member: str | None = None) -> str:
        """A top-up opened (no faults: the notification is what is under test)."""
        opened = self._top_up_op(member)
        self._side(opened)
        if opened.answer.status_code != 201:  # only a broken service gets here (the model said 201)
            raise Derailed(f"top-up refused: {_essence(opened.answer)}")
        return opened.answer.json["top_up_id"]

    def _notify_some(self) -> Op:
        """Mostly a pending top-up's first notification; now and then a repeat of a paid one."""
        pending = sorted(t for t, u in self.model.top_ups.items() if u.status == "pending")
        paid = sorted(t for t, u in self.model.top_ups.items() if u.status == "paid")
        if paid and (self.rng.random() < 0.25 or not pending):
            return self._notify_op(self.rng.choice(paid))
        return self._notify_op(self.rng.choice(pending) if pending else self._open_top_up())

    def _pay_op(self, member: str | None = None, amount: int | None = None, freeze: bool | None = None) -> Op:
        member = member or self.rng.choice(self.members)
        available = self.model.wallets[member].available
        if amount is None:  # mostly within the balance, some beyond it
            amount = self.rng.randrange(1, available + 2) if available and self.rng.random() < 0.85 else available + 1
        freeze = self.rng.random() < 0.3 if freeze is None else freeze
        payment_id = self._id("sp")
        body = {"payment_id": payment_id, "member_id": member, "order_id": self._id("sale"), "amount_fen": amount,
                **({"freeze": True} if freeze else {})}
        return Op("pay", "POST", "/v1/stored-value/payments", body, "till",
                  lambda m: m.pay(payment_id, member, amount, freeze), member=member,
                  key=keys.sv_payment(PROGRAM, payment_id), racer=self._racing_top_up(member))

    def _settle_op(self, outcome: str, payment_id: str | None = None) -> Op | None:
        frozen = sorted(p for p, x in self.model.payments.items() if x.status == "frozen")
        settled = sorted(p for p, x in self.model.payments.items() if x.status != "frozen")
        if payment_id is None:
            if frozen and (self.rng.random() < 0.8 or not settled):
                payment_id = self.rng.choice(frozen)
            elif settled:
                payment_id = self.rng.choice(settled)  # settled already: same answer, or 409
            else:
                return None
        member = self.model.payments[payment_id].member
        verb = "capture" if outcome == "paid" else "release"
        return Op(verb, "POST", f"/v1/stored-value/payments/{payment_id}/{verb}", None, "till",
                  lambda m: m.settle(payment_id, outcome), member=member,
                  key=keys.sv_payment(PROGRAM, payment_id), racer=self._racing_top_up(member))

    def _refund_op(self, payment_id: str | None = None, may_exceed: bool = True) -> Op | None:
        paid = sorted(p for p, x in self.model.payments.items() if x.status == "paid" and x.refunded < x.amount)
        if payment_id is None:
            if not paid:
                return None
            payment_id = self.rng.choice(paid)
        payment = self.model.payments[payment_id]
        left = payment.amount - payment.refunded
        roll = self.rng.random()
        amount = left if roll < 0.4 else (left + 1 if roll > 0.9 and may_exceed else self.rng.randrange(1, left + 1))
        refund_id = self._id("rf")

        def race() -> None:  # another till refunds the same payment meanwhile (or the wallet moves)
            other = self._refund_op(payment_id, may_exceed=False) if payment.refunded < payment.amount else None
            if other is not None:
                self._side(other)
            else:
                self._racing_top_up(payment.member)()

        return Op("refund", "POST", f"/v1/stored-value/payments/{payment_id}/refunds",
                  {"refund_id": refund_id, "amount_fen": amount}, "till",
                  lambda m: m.refund(payment_id, refund_id, amount), member=payment.member,
                  key=keys.sv_payment_refund(PROGRAM, payment_id, refund_id), racer=race)

    # -- the requests: coupons

    def _claim_op(self, member: str | None = None, template_id: str | None = None) -> Op:
        member = member or self.rng.choice(self.members)
        template_id = template_id or self.rng.choice([DEMO, FEW, FEW, SHORT, POINTS])
        request_id = self._id("cl")

        def learn(answer: dict[str, Any]) -> None:
            coupon = self.model.claims[request_id]
            coupon.code, coupon.coupon_id = answer["code"], answer["coupon_id"]

        return Op("claim", "POST", "/v1/members/me/coupons", {"template_id": template_id, "request_id": request_id},
                  self.tokens[member], lambda m: m.claim(request_id, member, template_id), member=member,
                  key=keys.idempotency(PROGRAM, f"coupon-claim:{member}", request_id),
                  racer=lambda: self._side(self._claim_op(member, template_id)), after=learn)

    def _grant_op(self, template_id: str | None = None, members: list[str] | None = None) -> Op:
        template_id = template_id or self.rng.choice([FEW, FEW, SHORT, DEMO])
        members = members or self.rng.sample(self.members, self.rng.randint(1, 3))
        request_id = self._id("gr")

        def learn(_: dict[str, Any]) -> None:
            self._learn_granted(request_id)

        return Op("grant", "POST", f"/v1/admin/coupon-templates/{template_id}/grants",
                  {"member_ids": members, "request_id": request_id}, "staff",
                  lambda m: m.grant(request_id, template_id, members),
                  key=keys.idempotency(PROGRAM, "coupon-grants", request_id),
                  racer=lambda: self._side(self._claim_op(members[0], template_id)), after=learn)

    def _learn_granted(self, request_id: str) -> None:
        """A grant's answer names no codes: find its coupons in the table (one per member granted)."""
        found = [c for c in _all_coupons() if c.channel == "grant" and c.cause == request_id]
        for coupon in self.model.grants[request_id]:
            mine = [c for c in found if c.member_id == coupon.member and c.template_id == coupon.template]
            if len(mine) == 1:
                coupon.code, coupon.coupon_id = mine[0].code, mine[0].coupon_id
        if len(found) != len(self.model.grants[request_id]):
            self.problems.append(f"grant: {request_id}: {len(found)} coupons issued, "
                                 f"a fault-free run issues {len(self.model.grants[request_id])}")

    def _coupon(self, statuses: tuple[str, ...]) -> Coupon | None:
        known = [c for c in self.model.coupons if c.code and c.status in statuses]
        return self.rng.choice(known) if known else None

    def _redeem_op(self, coupon: Coupon | None = None, amount: int | None = None) -> Op | None:
        if coupon is None:
            coupon = self._coupon(("unused",)) if self.rng.random() < 0.85 else self._coupon(("used", "expired"))
            if coupon is None:
                return None
        template = self.model.templates[coupon.template]
        roll = self.rng.random()
        if amount is None:  # mostly over the threshold, now and then under it
            amount = (self.rng.randrange(1, template.threshold) if roll < 0.1 and template.threshold > 1
                      else template.threshold + self.rng.randrange(0, 20_000))
        request_id, order_id = self._id("rd"), self._id("o")
        typed = coupon.code.lower() if roll > 0.8 else coupon.code  # a till may send it in lower case
        return Op("redeem", "POST", "/v1/coupons/redeem",
                  {"code": typed, "order_id": order_id, "order_amount_fen": max(1, amount), "request_id": request_id},
                  "till", lambda m: m.redeem(coupon, order_id, max(1, amount)), member=coupon.member,
                  key=keys.idempotency(PROGRAM, "coupon-redeem", request_id),
                  racer=lambda: self._side(self._redeem_op(coupon)))  # another till, the same code

    def _void_op(self, coupon: Coupon | None = None, order_id: str | None = None) -> Op | None:
        coupon = coupon or self._coupon(("used",)) or self._coupon(("unused", "expired"))
        if coupon is None:
            return None
        if order_id is None:  # mostly the order it was used on
            order_id = coupon.order_id if coupon.order_id and self.rng.random() < 0.9 else self._id("o")
        request_id = self._id("vd")
        return Op("void", "POST", "/v1/coupons/void", {"code": coupon.code, "order_id": order_id,
                                                       "request_id": request_id},
                  "till", lambda m: m.void(coupon, order_id), member=coupon.member,
                  key=keys.idempotency(PROGRAM, "coupon-void", request_id),
                  racer=lambda: self._side(self._void_op_for(coupon, order_id)))  # another till voids it too

    def _void_op_for(self, coupon: Coupon, order_id: str) -> Op:
        request_id = self._id("vd")
        return Op("void", "POST", "/v1/coupons/void", {"code": coupon.code, "order_id": order_id,
                                                       "request_id": request_id},
                  "till", lambda m: m.void(coupon, order_id), member=coupon.member)

    # -- the jobs

    def _release_job(self) -> Op:
        from chalicelib.services import stored_value

        return Op("release_job", "", "", None, "job", lambda m: m.release_frozen(),
                  call=lambda: stored_value.release_due_payments(self.settings, clock.now()))

    def _settle_job(self) -> Op:
        from chalicelib.services import payments

        return Op("settle_job", "", "", None, "job", lambda m: m.close_or_credit(self.paid_at_wechat),
                  call=lambda: payments.settle_due_orders(self.settings, clock.now()))

    def _expire_coupons_job(self) -> Op:
        from chalicelib import jobs, wiring

        as_of = self.model.today  # the job expires the coupons whose last day was the day before

        def run() -> None:
            answer = jobs.run_job(self.settings, wiring.daily_jobs(), PROGRAM, "expire-coupons", as_of)
            assert answer["complete"], answer

        return Op("expire_coupons", "", "", None, "job", lambda m: m.expire_coupons(), call=run)

    # -- the sequence

    def _with_racers(self, op: Op) -> Op:
        op.duplicate = self.rng.random() < P_DUPLICATE
        op.racing = self.rng.random() < P_RACING
        return op

    def next_op(self) -> Op:
        roll = self.rng.random()
        op: Op | None = None
        if roll < 0.08:
            op = self._top_up_op()
        elif roll < 0.2:
            op = self._notify_some()
        elif roll < 0.36:
            op = self._pay_op()
        elif roll < 0.44:
            op = self._settle_op(self.rng.choice(["paid", "released"]))
        elif roll < 0.54:
            op = self._refund_op()
        elif roll < 0.66:
            op = self._claim_op()
        elif roll < 0.72:
            op = self._grant_op()
        elif roll < 0.9:
            op = self._redeem_op()
        else:
            op = self._void_op()
        return self._with_racers(op or self._claim_op())

    def _funded(self, amount: int) -> str:
        """The richest member, topped up first if it cannot pay `amount`."""
        member = max(self.members, key=lambda m: self.model.wallets[m].available)
        while self.model.wallets[member].available < amount:
            self.perform(self._notify_op(self._open_top_up(member)))
        return member

    def _writing_op(self, kind: str) -> Op:
        """A request of this kind that gets as far as its transaction."""
        if kind == "top_up":
            return self._top_up_op()
        if kind == "notify":
            return self._notify_op(self._open_top_up())
        if kind == "pay":
            return self._pay_op(self._funded(100), amount=100, freeze=False)
        if kind in ("capture", "release"):
            frozen = self._pay_op(self._funded(100), amount=100, freeze=True)
            self.perform(frozen)
            return self._settle_op("paid" if kind == "capture" else "released", frozen.body["payment_id"])
        if kind == "refund":
            sale = self._pay_op(self._funded(100), amount=100, freeze=False)
            self.perform(sale)
            refund = self._refund_op(sale.body["payment_id"], may_exceed=False)
            assert refund is not None
            return refund
        if kind == "grant":
            return self._grant_op(SHORT, [self.rng.choice(self.members)])
        if kind in ("redeem", "void"):
            coupon = self._coupon(("unused",))
            if coupon is None:
                claim = self._claim_op(template_id=SHORT)
                self.perform(claim)
                coupon = self.model.claims[claim.body["request_id"]]
            redeem = self._redeem_op(coupon, amount=self.model.templates[coupon.template].threshold + 1_000)
            assert redeem is not None
            if kind == "redeem":
                return redeem
            self.perform(redeem)
            void = self._void_op(coupon, redeem.body["order_id"])
            assert void is not None
            return void
        return self._claim_op(template_id=SHORT)

    def top_up_faults(self, wanted: tuple[str, ...] = (*FAULTS, "duplicate", "racing")) -> None:
        """Whatever the draws left out: one more request of each kind for each fault it has not
        met yet, with that fault forced."""
        for kind, fault in WANTED:
            if kind in KINDS and fault in wanted and not self.faults.totals[(kind, fault)]:
                op = self._writing_op(kind)
                if fault == "duplicate":
                    op.duplicate = True
                elif fault == "racing":
                    op.racing = True
                else:
                    self.faults.force(fault)
                self.perform(op)

    def worst_cases(self) -> None:
        """Everything at once, twice: a payment of the whole balance delivered twice; a refund of
        the whole payment delivered twice; the last coupons of a template granted while the
        process dies after the first member's coupon (its retry must not call that member
        refused: the coupon is theirs); the last claim delivered twice."""
        member = self._funded(1)
        everything = self._pay_op(member, amount=self.model.wallets[member].available, freeze=False)
        everything.duplicate = True
        self.perform(everything)
        refund = self._refund_op(everything.body["payment_id"], may_exceed=False)
        assert refund is not None
        refund.body["amount_fen"] = self.model.payments[everything.body["payment_id"]].amount
        payment_id, refund_id = everything.body["payment_id"], refund.body["refund_id"]
        refund.expect = lambda m: m.refund(payment_id, refund_id, m.payments[payment_id].amount)
        refund.duplicate = True
        self.perform(refund)
        self.perform(self._claim_op(self.members[0], LAST))
        grant = self._grant_op(LAST, self.members[1:3])
        self.faults.force("crash")  # right after the last coupon went to the first member granted
        self.perform(grant)
        for member in self.members:
            if self.model._refusal(member, DEMO) is None:
                claim = self._claim_op(member, DEMO)
                claim.duplicate = True
                self.perform(claim)
                break

    def run(self) -> list[str]:
        try:
            self._run_sequence()
        except Derailed as derailed:
            self.problems.append(f"answer: the sequence could not go on: {derailed}")
        state = self.state_problems()
        replays = self.replay_problems()
        again = self.state_problems() if not (state or replays) else []
        self.problems += state + replays + again
        return self.problems

    def _run_sequence(self) -> None:
        with self.faults:
            for _ in range(self.steps):
                self.perform(self.next_op())
            self.worst_cases()
            if self.steps < STEPS:  # a short run (the broken variants): every racer once, no jobs
                self.top_up_faults(wanted=("duplicate", "racing"))
                return
            self.top_up_faults()
            self.tell_missing_stories()
            # Kept for the next day: a short coupon unused, another used (voided after its day).
            keep_unused = self._claimed(SHORT)
            keep_used = self._claimed(SHORT)
            self.perform(self._redeem_op(keep_used, amount=10_000))
            # Past the hold time: frozen payments go back; orders paid at WeChat Pay but never
            # notified are settled by the query, the others closed when they time out.
            for _ in range(2):
                self.perform(self._pay_op(self._funded(50), 50, freeze=True))
            for top_up_id in sorted(t for t, u in self.model.top_ups.items() if u.status == "pending")[::2]:
                self.pay.pay(top_up_id)
                self.paid_at_wechat.add(top_up_id)
            self._open_top_up()  # one more nobody pays
            self.offset += dt.timedelta(minutes=FREEZE_MINUTES + 1)
            for job in (self._release_job(), self._settle_job()):
                self.faults.force(*FAULTS)
                self.perform(job)
            # The next day: the short coupons' day has passed. A used one voided now comes back
            # expired; the job expires the unused ones; none of them can be used any more.
            self.offset += dt.timedelta(days=1)
            self.model.today += dt.timedelta(days=1)
            self.perform(self._with_racers(self._void_op(keep_used)))
            self.perform(self._with_racers(self._redeem_op(keep_unused)))  # before the job: refused all the same
            for _ in range(3):
                op = self._void_op(self._coupon(("used",)))
                if op is not None:
                    self.perform(self._with_racers(op))
            self.faults.force(*FAULTS)
            self.perform(self._expire_coupons_job())
            self.perform(self._with_racers(self._redeem_op(keep_used)))
            for _ in range(5):
                op = self._redeem_op()
                if op is not None:
                    self.perform(self._with_racers(op))

    def _claimed(self, template_id: str, member: str | None = None) -> Coupon:
        claim = self._claim_op(member, template_id)
        self.perform(claim)
        coupon = self.model.claims.get(claim.body["request_id"])
        if coupon is None or not coupon.code:
            raise Derailed(f"a claim of {template_id} was refused: {_essence(claim.answer)}")
        return coupon

    def tell_missing_stories(self) -> None:
        """Whatever the draws left out of the refusals and repeats a run must show."""
        stories = self.model.stories
        if not stories["insufficient_points"]:
            poorest = min(self.members, key=lambda m: self.model.points[m])
            while not stories["insufficient_points"]:
                self.perform(self._claim_op(poorest, POINTS))
        if not stories["a voided coupon used again"] or not stories["a void giving the coupon back unused"]:
            coupon = self._claimed(FEW if self.model._refusal(self.members[0], FEW) is None else SHORT,
                                   self.members[0])
            redeem = self._redeem_op(coupon, amount=10_000)
            self.perform(redeem)
            self.perform(self._void_op(coupon, redeem.body["order_id"]))
            self.perform(self._redeem_op(coupon, amount=10_000))
        if not stories["coupon_used"]:
            used = self._coupon(("used",))
            assert used is not None
            self.perform(self._redeem_op(used))
        if not stories["a notification repeated"]:
            self.perform(self._notify_op(sorted(t for t, u in self.model.top_ups.items() if u.status == "paid")[0]))
        if not stories["insufficient_balance"]:
            self.perform(self._pay_op(amount=10**9))
        if not stories["refund_exceeds_payment"]:
            sale = self._pay_op(self._funded(100), amount=100, freeze=False)
            self.perform(sale)
            refund = self._refund_op(sale.body["payment_id"], may_exceed=False)
            assert refund is not None
            payment_id, refund_id = sale.body["payment_id"], refund.body["refund_id"]
            refund.body["amount_fen"] = 101
            refund.expect = lambda m: m.refund(payment_id, refund_id, 101)
            self.perform(refund)
        if not stories["limit_reached"]:  # demo-10off: one per member
            holder = next((m for m in self.members if self.model.held[(m, DEMO)]), None)
            if holder is None:
                holder = self._claimed(DEMO, self.members[0]).member
            self.perform(self._claim_op(holder, DEMO))
        if not stories["out_of_stock"]:  # the worst cases took both of LAST's coupons
            self.perform(self._claim_op(self.members[3], LAST))

    # -- afterwards (no faults)

    def state_problems(self) -> list[str]:
        from chalicelib.store import ledger as store
        from chalicelib.store.models import (
            CouponLimitItem,
            CouponTemplateItem,
            CouponWalletItem,
            PayOrderItem,
            StoredValueItem,
            StoredValuePaymentItem,
            TableItem,
        )

        problems = []
        for member in self.members:
            item = store.get_item(StoredValueItem, keys.stored_value(PROGRAM, member))
            got = Wallet(*(int(getattr(item, a) or 0) for a in ("principal", "bonus", "frozen_principal", "frozen_bonus"))
                         ) if item else Wallet()
            want = self.model.wallets[member]
            if got != want:
                problems.append(f"balance: {member}: {got}, a fault-free run gives {want}")
            if min(got.principal, got.bonus, got.frozen_principal, got.frozen_bonus) < 0:
                problems.append(f"balance: {member}: overspent: {got}")
            problems += self._points_problems(member)
            rows = list(TableItem.gsi1.query(keys.stored_value_history(PROGRAM, member)))
            summed = (sum(int(r.principal_fen) for r in rows), sum(int(r.bonus_fen) for r in rows))
            if summed != (got.principal, got.bonus):
                problems.append(f"reconcile: {member}: Σ history (principal, bonus) {summed}, "
                                f"wallet {(got.principal, got.bonus)}")
            found = Counter((member, r.pk, r.sk, r.type) for r in rows)
            expected = Counter({k: n for k, n in self.model.rows.items() if k[0] == member})
            if found != expected:
                problems.append(f"rows: {member}: unexpected {dict(found - expected)}, missing {dict(expected - found)}")
            wallet = store.get_item(CouponWalletItem, keys.coupon_wallet(PROGRAM, member))
            unused = sum(1 for c in self.model.coupons if c.member == member and c.status == "unused")
            if int(getattr(wallet, "unused", 0) or 0) != unused:
                problems.append(f"coupons: {member}: unused counter {getattr(wallet, 'unused', 0)}, a fault-free "
                                f"run gives {unused}")
            for template_id, template in self.model.templates.items():
                limit = store.get_item(CouponLimitItem, keys.coupon_limit(PROGRAM, member, template_id))
                held = int(getattr(limit, "issued", 0) or 0)
                want_held = self.model.held[(member, template_id)] if template.limit is not None else 0
                if held != want_held or (template.limit is not None and held > template.limit):
                    problems.append(f"coupons: {member} {template_id}: limit counter {held}, a fault-free run "
                                    f"gives {want_held} (limit {template.limit})")
        for payment_id, payment in self.model.payments.items():
            item = store.get_item(StoredValuePaymentItem, keys.sv_payment(PROGRAM, payment_id))
            got_payment = item and (item.status, int(item.refunded_principal_fen or 0), int(item.refunded_bonus_fen or 0))
            want_payment = (payment.status, payment.refunded_principal, payment.refunded_bonus)
            if got_payment != want_payment:
                problems.append(f"payment: {payment_id}: {got_payment}, a fault-free run gives {want_payment}")
            elif item and int(item.refunded_fen or 0) > int(item.amount_fen):
                problems.append(f"payment: {payment_id}: refunded {item.refunded_fen} of {item.amount_fen}")
        for top_up_id, top_up in self.model.top_ups.items():
            order = store.get_item(PayOrderItem, keys.pay_order(top_up_id))
            if getattr(order, "status", None) != top_up.status:
                problems.append(f"payment: top-up {top_up_id}: {getattr(order, 'status', None)}, "
                                f"a fault-free run gives {top_up.status}")
        coupons = _all_coupons()
        by_code = {c.code: c for c in coupons}
        for template_id, template in self.model.templates.items():
            item = store.get_item(CouponTemplateItem, keys.coupon_template(PROGRAM, template_id))
            issued = sum(1 for c in coupons if c.template_id == template_id)
            if (int(item.issued), issued) != (template.issued, template.issued):
                problems.append(f"coupons: {template_id}: counter {item.issued}, coupons {issued}, "
                                f"a fault-free run issues {template.issued}")
        events = Counter((e.coupon_id, e.event) for e in _all_coupon_events())
        for coupon in self.model.coupons:
            item = by_code.get(coupon.code)
            if item is None:
                problems.append(f"coupons: {coupon.template} of {coupon.member}: not found (code {coupon.code!r})")
                continue
            if (item.status, item.order_id) != (coupon.status, coupon.order_id):
                problems.append(f"coupons: {coupon.code}: {(item.status, item.order_id)}, a fault-free run gives "
                                f"{(coupon.status, coupon.order_id)}")
            got_events = Counter({e: n for (cid, e), n in events.items() if cid == coupon.coupon_id})
            if got_events != coupon.events:
                problems.append(f"coupons: {coupon.code}: history {dict(got_events)}, a fault-free run gives "
                                f"{dict(coupon.events)}")
        return problems

    def _points_problems(self, member: str) -> list[str]:
        """The points a points price took: the account reconciles and holds what the model says,
        one ledger row per claim paid with points."""
        from chalicelib.domain.reconcile import differences
        from chalicelib.services import reconcile
        from chalicelib.store import ledger as store

        totals = reconcile.totals(PROGRAM, member)
        assert totals is not None
        problems = [f"reconcile: {member}: points: {difference}" for difference in differences(totals)]
        if totals.points != self.model.points[member]:
            problems.append(f"balance: {member}: {totals.points} points, a fault-free run gives "
                            f"{self.model.points[member]}")
        rows = Counter((member, row.pk, row.sk) for row in store.all_ledger_rows(PROGRAM, member)
                       if row.type == "redeem")
        expected = Counter({k: n for k, n in self.model.points_rows.items() if k[0] == member})
        if rows != expected:
            problems.append(f"rows: {member}: points rows unexpected {dict(rows - expected)}, "
                            f"missing {dict(expected - rows)}")
        return problems

    def replay_problems(self) -> list[str]:
        """Every request answered 2xx, sent again with the same key, answers the same."""
        problems = []
        for op in self.done:
            if op.call is not None or op.answer is None or not 200 <= op.answer.status_code < 300:
                continue
            again = self._send(op)
            if _essence(again) != _essence(op.answer):
                problems.append(f"replay: {op.kind} {op.path} {op.body}: first {_essence(op.answer)}, "
                                f"again {_essence(again)}")
        return problems

    def fault_coverage(self) -> list[str]:
        totals = self.faults.totals
        return [f"coverage: no {fault} during a {kind}" for kind, fault in WANTED if not totals[(kind, fault)]] + [
            f"coverage: the run never showed {story!r}" for story in STORIES if not self.model.stories[story]]


_SHANGHAI = dt.timezone(dt.timedelta(hours=8))


class Derailed(Exception):
    """The service answered so far from the model that the sequence cannot go on."""


def _all_coupons() -> list[Any]:
    from chalicelib.store.models import CouponItem

    return [item for item in _all_items() if isinstance(item, CouponItem)]


def _all_coupon_events() -> list[Any]:
    from chalicelib.store.models import CouponEventItem

    return [item for item in _all_items() if isinstance(item, CouponEventItem)]


def _all_items() -> list[Any]:
    """Every item, read from moto's backend (not through the hooked client: no faults, no cost)."""
    from chalicelib.store.models import TableItem
    from tests.support.seeded import table_items

    return [TableItem.from_raw_data(attributes) for attributes in table_items().values()]


def _report(problems: list[str]) -> str:
    order = ("balance", "reconcile", "rows", "payment", "coupons", "grant", "5xx", "swallowed", "answer", "replay",
             "coverage")
    ranked = sorted(problems, key=lambda p: order.index(p.split(":", 1)[0]))
    shown = ranked[:30] + ([f"... and {len(ranked) - 30} more"] if len(ranked) > 30 else [])
    return f"{len(problems)} problems:\n" + "\n".join(shown)


# --- the tests -------------------------------------------------------------------------------

@pytest.fixture
def pay(wechat):
    return wechat.pay


def test_money_and_coupon_chaos_every_effect_once(api, pay, monkeypatch):
    scenario = Scenario(api, pay, monkeypatch, SEED)
    problems = scenario.run() + scenario.fault_coverage()
    assert not problems, _report(problems)
    injected = Counter()
    for (_, fault), n in scenario.faults.totals.items():
        injected[fault] += n
    print(f"\nchaos (money, coupons): {len(scenario.done)} requests, faults injected {dict(injected)}")


def _without_conditions(monkeypatch: Any, labels: tuple[str, ...]) -> None:
    """Every write with one of these labels goes into its transaction without its condition."""
    from chalicelib.store.tx import Transaction

    real_put, real_update = Transaction.put, Transaction.update

    def put(self: Any, item: Any, condition: Any = None, *, label: str) -> Any:
        return real_put(self, item, None if label in labels else condition, label=label)

    def update(self: Any, item: Any, actions: Any, condition: Any = None, *, label: str) -> Any:
        return real_update(self, item, actions, None if label in labels else condition, label=label)

    monkeypatch.setattr(Transaction, "put", put)
    monkeypatch.setattr(Transaction, "update", update)


@pytest.mark.parametrize(("labels", "found"), [
    # The stored-value wallet written without its version guard: a racing credit is lost.
    pytest.param(("wallet",), ("balance:", "reconcile:"), id="wallet without its version guard"),
    # A coupon's status (and the caller's key) not checked at commit: a coupon used twice.
    pytest.param(("coupon", "caller_key"), ("coupons:",), id="coupon without its status and key guards"),
])
def test_the_money_chaos_checks_catch_a_missing_guard(api, pay, monkeypatch, labels, found):
    """The same scenario with guards of the transactions removed: the checks must find the damage."""
    _without_conditions(monkeypatch, labels)
    problems = Scenario(api, pay, monkeypatch, SEED, steps=TEETH_STEPS).run()
    assert any(p.startswith(found) for p in problems), _report(problems)
