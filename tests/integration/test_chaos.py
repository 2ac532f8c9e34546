"""Chaos: DynamoDB faults and racing callers during every points change (accrual, refunds,
redemptions and their cancellation, checkout holds, staff adjustments) and the expire-points job,
with callers that retry the way real tills, mini-programs and consoles do.

A seeded sequence of requests runs against the app while `tests/support/faults.py` throttles
DynamoDB calls, cancels transactions with `TransactionConflict`, and kills the request right after
its transaction committed. Two more faults are other callers acting at the worst moment: the same
request delivered again just after this one checked its idempotency key and found nothing (a
retry while the first is still in flight), and another till's order for the same member between
this request's reads and its write. A caller retries every 5xx with the same idempotency key
until it gets an answer; 503 `retry_later` is the only 5xx allowed, besides the 500 of a
simulated crash.

Afterwards: every answer equals what an independent model of the same sequence without faults
predicts; every member reconciles (balance = Σ ledger = Σ lots - debt, held = Σ open holds); the
ledger holds exactly one row per order, refund, redemption, cancellation, hold, settlement,
adjustment and expired lot; stock and order totals agree; and every request sent again answers
as it did the first time.

`test_the_chaos_checks_catch_a_missing_guard` runs the same scenario with one of the
transaction's guards removed and asserts that these checks find the damage.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from chalicelib import clock
from chalicelib.store import keys
from tests.support.faults import DynamoFaults, Rates, send_until_answered

SEED = 20261123
STEPS = 90  # random requests before the worst cases, the expiry run and the refunds after it
MEMBERS = 5
RATES = Rates(throttle=0.05, conflict=0.2, crash=0.15)
P_DUPLICATE = 0.15  # the same request arrives again while this one is in flight
P_RACING_ORDER = 0.15  # another till's order for the member lands before this request writes
MAX_ATTEMPTS = 25  # a caller that still has no answer after this many tries is a failure
PROGRAM, REWARD, PRICE, STOCK = "demo", "demo-cup", 100, 1000
KINDS = ("order", "refund", "redeem", "cancel", "hold", "capture", "release", "adjust")
# Every kind of request meets every fault at least once in a run (see `top_up`).
WANTED = [(kind, fault) for kind in (*KINDS, "expire") for fault in ("throttle", "conflict", "crash")]
WANTED += [(kind, racer) for kind in KINDS for racer in ("duplicate", "racing_order")]


# --- the model: the same sequence without faults, in plain arithmetic -------------------------

@dataclass
class Account:
    points: int = 0
    lot: int = 0  # every point is earned today, so each member has one lot
    debt: int = 0
    growth: int = 0
    held: int = 0


@dataclass
class Order:
    member: str
    amount: int
    points: int
    refunded: int = 0
    points_reversed: int = 0


@dataclass
class Redemption:
    member: str
    price: int
    quantity: int
    cancelled: dict[str, Any] | None = None  # the first cancellation's answer


@dataclass
class Hold:
    member: str
    points: int
    status: str = "held"
    settled: dict[str, Any] | None = None  # the settlement's answer


Expected = tuple[int, dict[str, Any]]  # status, and the fields the answer must have (or the error code)


def _reversal(awarded: int, amount: int, refunded_before: int, refund: int, reversed_before: int) -> int:
    """What a refund takes back: the proportional share of the refunded total, rounded down,
    minus what earlier refunds took (the whole award once the whole order is refunded)."""
    refunded_after = refunded_before + refund
    target = awarded if refunded_after == amount else awarded * refunded_after // amount
    return target - reversed_before


class Model:
    """Demo rules: 1 point and 1 growth per whole yuan (no tier changes: no stream runs here);
    spends draw from the lot and are refused while in debt; reversals beyond the lot become
    debt; credits (earnings, returns) repay debt first."""

    def __init__(self, members: list[str]) -> None:
        self.accounts = {member: Account() for member in members}
        self.orders: dict[str, Order] = {}
        self.redemptions: dict[str, Redemption] = {}
        self.holds: dict[str, Hold] = {}
        self.stock = STOCK
        # The ledger rows a fault-free run leaves: (member, pk, sk, type), each exactly once.
        self.rows: Counter = Counter()

    def _credit(self, account: Account, points: int) -> None:
        repay = min(account.debt, points)
        account.debt -= repay
        account.lot += points - repay
        account.points += points

    def _spend(self, account: Account, points: int) -> bool:
        if account.debt or account.lot < points:
            return False
        account.lot -= points
        account.points -= points
        return True

    def order(self, order_id: str, member: str, amount: int) -> Expected:
        account, yuan = self.accounts[member], amount // 100
        self._credit(account, yuan)
        account.growth += yuan
        self.orders[order_id] = Order(member, amount, yuan)
        self.rows[(member, *keys.order(PROGRAM, order_id), "earn")] += 1
        return 201, {"order_id": order_id, "member_id": member, "points_awarded": yuan, "growth_awarded": yuan,
                     "points_balance": account.points}

    def refund(self, order_id: str, refund_id: str, amount: int) -> Expected:
        order = self.orders[order_id]
        if order.refunded + amount > order.amount:
            return 409, {"code": "refund_exceeds_order"}
        points = _reversal(order.points, order.amount, order.refunded, amount, order.points_reversed)
        growth = points  # growth is awarded like points (1 per yuan) and reversed alike
        order.refunded += amount
        order.points_reversed += points
        account = self.accounts[order.member]
        taken = min(account.lot, points)
        account.lot -= taken
        account.debt += points - taken
        account.points -= points
        account.growth = max(0, account.growth - growth)
        self.rows[(order.member, *keys.refund(PROGRAM, order_id, refund_id), "reverse")] += 1
        return 201, {"refund_id": refund_id, "order_id": order_id, "member_id": order.member,
                     "points_reversed": points, "growth_reversed": growth, "points_balance": account.points,
                     "points_debt": account.debt}

    def redeem(self, member: str, request_id: str, quantity: int) -> Expected:
        account, price = self.accounts[member], PRICE * quantity
        if not self._spend(account, price):
            return 409, {"code": "insufficient_points"}
        self.stock -= quantity
        self.redemptions[f"rd-{request_id}"] = Redemption(member, price, quantity)
        self.rows[(member, *keys.member_operation(PROGRAM, member, "redeem", request_id), "redeem")] += 1
        return 201, {"redemption_id": f"rd-{request_id}", "points_spent": price, "points_balance": account.points,
                     "status": "redeemed"}

    def cancel(self, redemption_id: str) -> Expected:
        redemption = self.redemptions[redemption_id]
        if redemption.cancelled:  # a second cancel answers like the first and does nothing
            return 200, redemption.cancelled
        account = self.accounts[redemption.member]
        self._credit(account, redemption.price)
        self.stock += redemption.quantity
        self.rows[(redemption.member, *keys.member_operation(PROGRAM, redemption.member, "cancel", redemption_id),
                   "reverse")] += 1
        redemption.cancelled = {"redemption_id": redemption_id, "status": "cancelled",
                                "points_returned": redemption.price, "points_forfeited": 0,
                                "points_balance": account.points}
        return 200, redemption.cancelled

    def hold(self, hold_id: str, member: str, points: int) -> Expected:
        account = self.accounts[member]
        if not self._spend(account, points):
            return 409, {"code": "insufficient_points"}
        account.held += points
        self.holds[hold_id] = Hold(member, points)
        self.rows[(member, *keys.member_operation(PROGRAM, member, "hold", hold_id), "hold")] += 1
        return 201, {"hold_id": hold_id, "member_id": member, "points": points, "status": "held",
                     "points_balance": account.points}

    def settle(self, hold_id: str, outcome: str) -> Expected:
        hold = self.holds[hold_id]
        if hold.status == outcome:  # settled the same way again: the same answer, nothing changes
            return 200, hold.settled
        if hold.status != "held":
            return 409, {"code": "hold_settled"}
        hold.status = outcome
        account = self.accounts[hold.member]
        account.held -= hold.points
        if outcome == "released":  # the points go back to their lot; a capture spends them
            self._credit(account, hold.points)
        self.rows[(hold.member, *keys.member_operation(PROGRAM, hold.member, outcome, hold_id),
                   "release" if outcome == "released" else "redeem")] += 1
        hold.settled = {"hold_id": hold_id, "points": hold.points, "status": outcome, "points_balance": account.points}
        return 200, hold.settled

    def adjust(self, member: str, request_id: str, points: int) -> Expected:
        account = self.accounts[member]
        if points > 0:
            self._credit(account, points)
        elif not self._spend(account, -points):
            return 409, {"code": "insufficient_points"}
        self.rows[(member, *keys.member_operation(PROGRAM, member, "adjust", request_id), "adjust")] += 1
        return 201, {"points": points, "points_balance": account.points, "points_debt": account.debt}

    def expire(self, lot_day: dt.date) -> Expected:
        for member, account in self.accounts.items():
            if account.lot > 0:
                account.points -= account.lot
                account.lot = 0
                self.rows[(member, *keys.member_operation(PROGRAM, member, "expire", lot_day.isoformat()),
                           "expire")] += 1
        return 200, {"job": "expire-points", "complete": True}


# --- the scenario ----------------------------------------------------------------------------

@dataclass
class Op:
    """One caller request. `expect` applies it to the model and returns the fault-free answer;
    `key` is the idempotency row it reads first (where a duplicate delivery is slipped in)."""

    kind: str
    method: str
    path: str
    body: dict[str, Any]
    caller: str  # "till", "staff", or a member's token
    expect: Callable[[Model], Expected]
    member: str | None = None
    key: tuple[str, str] | None = None
    duplicate: bool = False
    racing_order: bool = False
    expected: Expected | None = None  # set when its effect happens in the model
    answer: Any = None
    duplicate_answer: Any = None


def _essence(answer: Any) -> tuple[int, Any]:
    """What must not differ between two answers to one request: the status and the body, or for
    an error its code (each answer has its own request_id)."""
    if answer.status_code >= 400:
        return answer.status_code, (answer.json or {}).get("error", {}).get("code")
    return answer.status_code, answer.json


def _keys_read(request: dict[str, Any]) -> set[tuple[str, str]]:
    """The (pk, sk) keys a GetItem or BatchGetItem request asks for."""
    wanted = [request["Key"]] if "Key" in request else [
        key for spec in request.get("RequestItems", {}).values() for key in spec.get("Keys", [])]
    return {(key["pk"]["S"], key["sk"]["S"]) for key in wanted}


class Scenario:
    def __init__(self, api: Any, seed: int) -> None:
        from chalicelib.domain.lots import expiry_day
        from chalicelib import ids as id_maker
        from chalicelib.services.programs import program_config
        from chalicelib.settings import get_settings
        from chalicelib.store import tx

        self.api = api
        self.rng = random.Random(seed)
        self.tokens: dict[str, str] = {}
        # Seeded member ids: they pick the members' expiry-queue shards, hence the order in which
        # the job meets them and its faults. Random ids would make the run differ from run to run.
        ids = random.Random(seed - 1)
        seeded_uuid = SimpleNamespace(uuid4=lambda: uuid.UUID(int=ids.getrandbits(128)))
        with mock.patch.object(id_maker, "uuid", seeded_uuid):
            for n in range(MEMBERS):
                token = api.enrolled(f"chaos-{seed}-{n}")
                self.tokens[api.member("GET", "/v1/members/me", token).json["member_id"]] = token
        self.members = sorted(self.tokens)
        self.model = Model(self.members)
        config = program_config(get_settings(), PROGRAM)
        # Every lot of the run expires on this day (a run spanning midnight at a month's end
        # would earn into two lots; the run takes seconds).
        self.lot_day = expiry_day(config.expiry, config.today(clock.now()))
        self.faults = DynamoFaults(tx.connection().client, random.Random(seed + 1), RATES, interfere=self._interfere)
        self.problems: list[str] = []
        self.done: list[Op] = []
        self._current: Op | None = None
        self._key_read = False
        self._ids = 0

    # -- requests

    def _id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids}"

    def _send(self, op: Op) -> Any:
        if op.caller == "till":
            return self.api.till(op.method, op.path, op.body)
        if op.caller == "staff":
            return self.api.staff(op.method, op.path, op.body)
        return self.api.member(op.method, op.path, op.caller, op.body)

    def perform(self, op: Op) -> None:
        """Send until answered, like a caller that retries a 5xx with the same key; then compare
        with the model."""
        self._current, self._key_read = op, False
        answer = send_until_answered(self.faults, op.kind, f"{op.kind} {op.path}", lambda: self._send(op),
                                     self.problems, MAX_ATTEMPTS)
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

    def _compare(self, op: Op, answer: Any, status: int, fields: dict[str, Any]) -> None:
        if status >= 400:
            got = (answer.status_code, (answer.json or {}).get("error", {}).get("code"))
            want = (status, fields["code"])
        else:
            got = (answer.status_code, {k: (answer.json or {}).get(k) for k in fields})
            want = (status, fields)
        if got != want:
            self.problems.append(f"answer: {op.kind} {op.path} {op.body}: got {got}, a fault-free run gives {want}")

    # -- other callers, slipped in at the worst moment (they run with faults disarmed)

    def _interfere(self, operation: str, request: dict[str, Any]) -> None:
        op = self._current
        if op is None:
            return
        if op.duplicate and self._key_read:
            # This request has just checked its idempotency key and found nothing: the same
            # request, delivered again, completes now, before this one reads on or writes.
            op.duplicate = False
            self.faults.totals[(op.kind, "duplicate")] += 1
            op.duplicate_answer = self._send(op)
            op.expected = op.expect(self.model)  # its effect happened now, before anything after
        if op.key is not None and operation in ("GetItem", "BatchGetItem") and op.key in _keys_read(request):
            self._key_read = True
        if op.racing_order and operation == "TransactWriteItems":
            # Between this request's reads and its write, another till's order for the member.
            op.racing_order = False
            self.faults.totals[(op.kind, "racing_order")] += 1
            assert op.member is not None
            order = self._order_op(op.member)
            order.answer = self._send(order)
            order.expected = order.expect(self.model)
            self._compare(order, order.answer, *order.expected)
            self.done.append(order)

    # -- the requests of the sequence

    def _order_op(self, member: str, amount: int | None = None) -> Op:
        order_id = self._id("o")
        if amount is None:
            # Mostly whole yuan and more; now and then under one yuan (no points, still one row).
            amount = self.rng.randrange(1, 100) if self.rng.random() < 0.05 else self.rng.randrange(100, 20_000)
        body = {"order_id": order_id, "member_id": member, "amount_fen": amount,
                "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()}
        return Op("order", "POST", "/v1/orders", body, "till", lambda m: m.order(order_id, member, amount),
                  member=member, key=keys.order(PROGRAM, order_id))

    def _refund_op(self, may_exceed: bool = True) -> Op | None:
        open_orders = sorted(oid for oid, o in self.model.orders.items() if o.refunded < o.amount)
        if not open_orders:
            return None
        order_id = self.rng.choice(open_orders)
        order = self.model.orders[order_id]
        left = order.amount - order.refunded
        # Half refund what is left, most of the rest a part of it, and some ask for too much.
        roll = self.rng.random()
        if roll < 0.5:
            amount = left
        elif roll < 0.9 or not may_exceed:
            amount = self.rng.randrange(1, left + 1)
        else:
            amount = left + 1
        refund_id = self._id("rf")
        return Op("refund", "POST", f"/v1/orders/{order_id}/refunds", {"refund_id": refund_id, "amount_fen": amount},
                  "till", lambda m: m.refund(order_id, refund_id, amount), member=order.member,
                  key=keys.refund(PROGRAM, order_id, refund_id))

    def _redeem_op(self, member: str | None = None, quantity: int | None = None) -> Op:
        member = member or self.rng.choice(self.members)
        quantity = quantity or self.rng.randint(1, 3)
        request_id = self._id("rq")
        body = {"reward_id": REWARD, "quantity": quantity, "request_id": request_id}
        return Op("redeem", "POST", "/v1/members/me/redemptions", body, self.tokens[member],
                  lambda m: m.redeem(member, request_id, quantity), member=member,
                  key=keys.redemption(PROGRAM, member, f"rd-{request_id}"))

    def _cancel_op(self, open_only: bool = False) -> Op | None:
        candidates = sorted(rid for rid, r in self.model.redemptions.items() if not (open_only and r.cancelled))
        if not candidates:
            return None
        redemption_id = self.rng.choice(candidates)
        member = self.model.redemptions[redemption_id].member
        return Op("cancel", "POST", f"/v1/members/me/redemptions/{redemption_id}/cancel", {}, self.tokens[member],
                  lambda m: m.cancel(redemption_id), member=member,
                  key=keys.redemption(PROGRAM, member, redemption_id))

    def _hold_op(self, member: str | None = None, points: int | None = None) -> Op:
        member = member or self.rng.choice(self.members)
        points = points or self.rng.randrange(10, 300)
        hold_id = self._id("h")
        # The checkout may deduct up to half the order at 10 points a yuan: the order is big enough.
        body = {"hold_id": hold_id, "member_id": member, "order_id": self._id("pos"),
                "order_amount_fen": points * 20 + 100, "points": points}
        return Op("hold", "POST", "/v1/points/holds", body, "till", lambda m: m.hold(hold_id, member, points),
                  member=member, key=keys.hold(PROGRAM, hold_id))

    def _settle_op(self, outcome: str, open_only: bool = False, hold_id: str | None = None) -> Op | None:
        candidates = sorted(hid for hid, h in self.model.holds.items() if not (open_only and h.status != "held"))
        if not (hold_id or candidates):
            return None
        hold_id = hold_id or self.rng.choice(candidates)
        verb = "capture" if outcome == "captured" else "release"
        return Op(verb, "POST", f"/v1/points/holds/{hold_id}/{verb}", {}, "till",
                  lambda m: m.settle(hold_id, outcome), member=self.model.holds[hold_id].member,
                  key=keys.hold(PROGRAM, hold_id))

    def _adjust_op(self, member: str | None = None, points: int | None = None) -> Op:
        member = member or self.rng.choice(self.members)
        points = points or self.rng.choice([-1, 1]) * self.rng.randrange(1, 300)
        request_id = self._id("adj")
        return Op("adjust", "POST", f"/v1/admin/members/{member}/adjustments",
                  {"points": points, "reason": "chaos", "request_id": request_id}, "staff",
                  lambda m: m.adjust(member, request_id, points), member=member,
                  key=keys.member_operation(PROGRAM, member, "adjust", request_id))

    def _expire_op(self) -> Op:
        from chalicelib.store import programs

        # As if the daily run had expired every earlier day: this run reads the lot day's queue.
        programs.mark_expired_through(PROGRAM, (self.lot_day - dt.timedelta(days=1)).isoformat())
        as_of = self.lot_day + dt.timedelta(days=1)
        return Op("expire", "POST", "/v1/admin/jobs/expire-points/runs", {"as_of": as_of.isoformat()}, "staff",
                  lambda m: m.expire(self.lot_day))

    def _with_racers(self, op: Op) -> Op:
        op.duplicate = self.rng.random() < P_DUPLICATE
        op.racing_order = op.member is not None and self.rng.random() < P_RACING_ORDER
        return op

    def next_op(self) -> Op:
        """A random request; an order when the one drawn has nothing to act on yet."""
        roll = self.rng.random()
        op = None
        if roll < 0.2:
            op = self._refund_op()
        elif roll < 0.35:
            op = self._redeem_op()
        elif roll < 0.43:
            op = self._cancel_op()
        elif roll < 0.53:
            op = self._hold_op()
        elif roll < 0.65:
            op = self._settle_op(self.rng.choice(["captured", "released"]))
        elif roll < 0.73:
            op = self._adjust_op()
        return self._with_racers(op or self._order_op(self.rng.choice(self.members)))

    # -- the worst cases, and whatever the draws left out

    def _afford(self, member: str, points: int) -> None:
        """An order first if the member cannot spend `points` yet (short, or in debt)."""
        account = self.model.accounts[member]
        if account.debt or account.lot < points:
            self.perform(self._order_op(member, amount=(account.debt + points) * 100))

    def _richest(self, can_spend: int) -> str:
        """The member with the most points and no debt, able to spend `can_spend` points."""
        member = max(self.members, key=lambda m: (-self.model.accounts[m].debt, self.model.accounts[m].lot))
        self._afford(member, can_spend)
        return member

    @staticmethod
    def _twice(op: Op | None) -> Op:
        assert op is not None
        op.duplicate = True
        return op

    def spend_everything_twice(self) -> None:
        """A spend of everything a member has, delivered twice at once: whichever copy lands
        first leaves nothing for the other to find, so the other must answer as a replay, not
        refuse. Likewise a capture of a hold bigger than the member's other holds together."""
        member = self._richest(can_spend=PRICE)
        self.perform(self._twice(self._redeem_op(member, quantity=self.model.accounts[member].lot // PRICE)))
        member = self._richest(can_spend=10)
        self.perform(self._twice(self._hold_op(member, points=self.model.accounts[member].lot)))
        member = self._richest(can_spend=10)
        self.perform(self._twice(self._adjust_op(member, points=-self.model.accounts[member].lot)))
        member = self._richest(can_spend=10)
        points = self.model.accounts[member].held + 10  # more than its other open holds together
        self._afford(member, points)
        hold = self._hold_op(member, points=points)
        self.perform(hold)
        self.perform(self._twice(self._settle_op("captured", hold_id=hold.body["hold_id"])))

    def _writing_op(self, kind: str) -> Op:
        """A request of this kind that gets as far as its transaction."""
        if kind == "refund":
            if (refund := self._refund_op(may_exceed=False)) is None:
                self.perform(self._writing_op("order"))
                refund = self._refund_op(may_exceed=False)
            return refund
        if kind == "redeem":
            return self._redeem_op(self._richest(can_spend=PRICE), quantity=1)
        if kind == "cancel":
            if not any(not r.cancelled for r in self.model.redemptions.values()):
                self.perform(self._writing_op("redeem"))
            return self._cancel_op(open_only=True)
        if kind == "hold":
            return self._hold_op(self._richest(can_spend=10), points=10)
        if kind in ("capture", "release"):
            if not any(h.status == "held" for h in self.model.holds.values()):
                self.perform(self._writing_op("hold"))
            return self._settle_op("captured" if kind == "capture" else "released", open_only=True)
        if kind == "adjust":
            return self._adjust_op(points=self.rng.randrange(1, 100))
        return self._order_op(self.rng.choice(self.members))

    def top_up(self) -> None:
        """Whatever the draws left out: one more request of each kind for each fault it has not
        met yet, with that fault forced (so a change in how the service calls DynamoDB cannot
        quietly leave a kind of request untested)."""
        for kind, fault in WANTED:
            if kind != "expire" and not self.faults.totals[(kind, fault)]:
                op = self._writing_op(kind)
                if fault in ("duplicate", "racing_order"):
                    setattr(op, fault, True)
                else:
                    self.faults.force(fault)
                self.perform(op)

    def run(self) -> list[str]:
        with self.faults:
            for _ in range(STEPS):
                self.perform(self.next_op())
            self.spend_everything_twice()
            self.top_up()
            # The job is a single request: it meets each fault at least once, with a lot to expire.
            self._richest(can_spend=1)
            self.faults.force("throttle", "conflict", "crash")
            self.perform(self._expire_op())
            # After expiry, refunds find no points left: they become debt.
            for _ in range(6):
                refund = self._refund_op()
                if refund is not None:
                    self.perform(self._with_racers(refund))
        state = self.state_problems()
        replays = self.replay_problems()
        # Sent again, nothing may have changed.
        again = self.state_problems() if not (state or replays) else []
        self.problems += state + replays + again
        return self.problems

    # -- afterwards (no faults)

    def state_problems(self) -> list[str]:
        from chalicelib.domain.reconcile import differences
        from chalicelib.services import reconcile
        from chalicelib.store import ledger as store
        from chalicelib.store.models import OrderItem, OrderTotalsItem, RewardItem

        problems = []
        for member in self.members:
            totals = reconcile.totals(PROGRAM, member)
            problems += [f"reconcile: {member}: {difference}" for difference in differences(totals)]
            want = self.model.accounts[member]
            got = Account(totals.points, totals.lots_remaining, totals.debt, totals.growth, totals.held)
            if got != want:
                problems.append(f"balance: {member}: {got}, a fault-free run gives {want}")
            rows = Counter((member, row.pk, row.sk, row.type) for row in store.all_ledger_rows(PROGRAM, member))
            expected = Counter({k: n for k, n in self.model.rows.items() if k[0] == member})
            if rows != expected:
                problems.append(f"rows: {member}: unexpected {dict(rows - expected)}, missing {dict(expected - rows)}")
        for order_id, order in self.model.orders.items():
            item = store.get_item(OrderItem, keys.order(PROGRAM, order_id))
            refunds = store.get_item(OrderTotalsItem, keys.order_totals(PROGRAM, order_id))
            got_totals = None if item is None else (
                (int(refunds.refunded_fen), int(refunds.points_reversed)) if refunds else (0, 0))
            if got_totals != (order.refunded, order.points_reversed):
                problems.append(f"order: {order_id}: refunded/reversed {got_totals}, "
                                f"a fault-free run gives {(order.refunded, order.points_reversed)}")
        stock = int(store.get_item(RewardItem, keys.reward(PROGRAM, REWARD)).stock)
        if stock != self.model.stock:
            problems.append(f"stock: {REWARD}: {stock}, a fault-free run gives {self.model.stock}")
        return problems

    def replay_problems(self) -> list[str]:
        """Every request that was answered 2xx, sent again with the same key, answers the same."""
        problems = []
        for op in self.done:
            if op.answer is None or not 200 <= op.answer.status_code < 300:
                continue
            again = self._send(op)
            first = _essence(op.answer)
            if op.kind == "expire":
                first = (200, {**op.answer.json, "replayed": True})
            if _essence(again) != first:
                problems.append(f"replay: {op.kind} {op.path} {op.body}: first {first}, again {_essence(again)}")
        return problems

    def fault_coverage(self) -> list[str]:
        """Every kind of request met every fault (a guard against a hook that never fires)."""
        totals = self.faults.totals
        return [f"coverage: no {fault} during a {kind}" for kind, fault in WANTED if not totals[(kind, fault)]]


def _report(problems: list[str]) -> str:
    """The state problems first (they say what went wrong), then the answers that showed it."""
    order = ("reconcile", "balance", "rows", "stock", "order", "5xx", "swallowed", "answer", "replay", "coverage")
    ranked = sorted(problems, key=lambda p: order.index(p.split(":", 1)[0]))
    shown = ranked[:25] + ([f"... and {len(ranked) - 25} more"] if len(ranked) > 25 else [])
    return f"{len(problems)} problems:\n" + "\n".join(shown)


# --- the tests -------------------------------------------------------------------------------

def test_chaos_every_effect_once_and_every_member_reconciles(api):
    scenario = Scenario(api, SEED)
    problems = scenario.run() + scenario.fault_coverage()
    assert not problems, _report(problems)
    injected = Counter()
    for (_, fault), n in scenario.faults.totals.items():
        injected[fault] += n
    # The run is seeded: these figures change only when the service changes how it calls DynamoDB.
    print(f"\nchaos: {len(scenario.done)} requests, faults injected {dict(injected)}")


_OPERATION_GUARDS = ("ledger", "hold", "redemption", "caller_key", "order")


def _operations_without_guards(monkeypatch: Any, transaction: Any) -> None:
    """Every item that records a caller's key (a ledger row, a hold, a redemption) written without
    `attribute_not_exists`, and every operation's status or total moved without its condition."""
    real_put, real_update = transaction.put, transaction.update

    def put(self: Any, item: Any, condition: Any = None, *, label: str) -> Any:
        return real_put(self, item, None if label in _OPERATION_GUARDS else condition, label=label)

    def update(self: Any, item: Any, actions: Any, condition: Any = None, *, label: str) -> Any:
        return real_update(self, item, actions, None if label in _OPERATION_GUARDS else condition, label=label)

    monkeypatch.setattr(transaction, "put", put)
    monkeypatch.setattr(transaction, "update", update)


def _account_without_version_guard(monkeypatch: Any, transaction: Any) -> None:
    real = transaction.update

    def update(self: Any, item: Any, actions: Any, condition: Any = None, *, label: str) -> Any:
        return real(self, item, actions, None if label == "account" else condition, label=label)

    monkeypatch.setattr(transaction, "update", update)


@pytest.mark.parametrize("breaks", [
    pytest.param(_operations_without_guards, id="operations without their key and status guards"),
    pytest.param(_account_without_version_guard, id="account without its version guard"),
])
def test_the_chaos_checks_catch_a_missing_guard(api, monkeypatch, breaks):
    """The same scenario against a deliberately broken `apply_change`: guards of its transaction
    dropped (every points change writes through `Transaction.put`/`update` with these labels).
    The checks above must find the damage: they have teeth."""
    from chalicelib.store.tx import Transaction

    breaks(monkeypatch, Transaction)
    # The main seed: every model shares the one connection the faults hook, so the faults reach
    # the reads of holds, redemptions and coupons too, not only the transactions.
    problems = Scenario(api, SEED).run()
    assert any(p.startswith(("reconcile:", "balance:")) for p in problems), _report(problems)
