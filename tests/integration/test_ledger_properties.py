"""Random sequences of real points operations keep the ledger invariant (through the services, on
moto): after every step the member reconciles, and the card agrees with the account."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chalicelib.errors import Conflict, InsufficientPoints

_members = itertools.count()


@pytest.fixture
def machine_settings(api):
    return settings(max_examples=12, stateful_step_count=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def test_random_operation_sequences_keep_the_invariant(api, machine_settings):
    from chalicelib.auth.principals import MemberPrincipal, StaffPrincipal, TillPrincipal
    from chalicelib.domain.reconcile import differences
    from chalicelib.services import holds, ledger, members, reconcile, rewards
    from chalicelib.settings import get_settings

    cfg = get_settings()
    till = TillPrincipal("demo", "dev-pos", None)
    staff = StaffPrincipal("demo", "bench", "x")
    paid_at = dt.datetime.now(dt.timezone.utc).isoformat()

    class Member(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            n = next(_members)
            token = api.enrolled(f"prop-{n}")
            self.member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
            self.principal = MemberPrincipal("demo", f"prop-{n}", self.member_id)
            self.orders: list[tuple[str, int]] = []
            self.redemptions: list[str] = []
            self.holds: list[str] = []
            self.ids = itertools.count()

        def _id(self, prefix: str) -> str:
            return f"{prefix}-{self.member_id}-{next(self.ids)}"

        @rule(amount=st.integers(0, 50_000))
        def order(self, amount: int) -> None:
            order_id = self._id("o")
            body = ledger.OrderIn.model_validate_json(
                f'{{"order_id":"{order_id}","member_id":"{self.member_id}","amount_fen":{amount},"paid_at":"{paid_at}"}}')
            ledger.accrue_order(cfg, till, body)
            ledger.accrue_order(cfg, till, body)  # a replay changes nothing
            self.orders.append((order_id, amount))

        @precondition(lambda self: self.orders)
        @rule(pick=st.integers(0, 1000), share=st.integers(1, 100))
        def refund(self, pick: int, share: int) -> None:
            order_id, amount = self.orders[pick % len(self.orders)]
            try:
                ledger.refund_order(cfg, till, order_id,
                                    ledger.RefundIn(refund_id=self._id("r"), amount_fen=max(1, amount * share // 100)))
            except Conflict:
                pass  # beyond the order: refused, nothing changed

        @rule(quantity=st.integers(1, 3))
        def redeem(self, quantity: int) -> None:
            request_id = self._id("q")
            try:
                rewards.redeem(cfg, self.principal, rewards.RedemptionIn(reward_id="demo-cup", quantity=quantity,
                                                                          request_id=request_id))
                self.redemptions.append(rewards.redemption_id_for(request_id))
            except InsufficientPoints:
                pass

        @precondition(lambda self: self.redemptions)
        @rule(pick=st.integers(0, 1000))
        def cancel(self, pick: int) -> None:
            rewards.cancel_redemption(cfg, "demo", self.member_id, self.redemptions[pick % len(self.redemptions)])

        @rule(points=st.integers(1, 300))
        def hold(self, points: int) -> None:
            hold_id = self._id("h")
            try:
                holds.place_hold(cfg, till, holds.HoldIn(hold_id=hold_id, member_id=self.member_id, order_id="s",
                                                         order_amount_fen=100_000, points=points))
                self.holds.append(hold_id)
            except InsufficientPoints:
                pass

        @precondition(lambda self: self.holds)
        @rule(capture=st.booleans())
        def settle(self, capture: bool) -> None:
            hold_id = self.holds.pop()
            holds.settle(cfg, "demo", hold_id, holds.CAPTURED if capture else holds.RELEASED, "settled")

        @rule(points=st.integers(-200, 200).filter(bool))
        def adjust(self, points: int) -> None:
            try:
                ledger.adjust(cfg, staff, self.member_id,
                              ledger.AdjustmentIn(points=points, reason="prop", request_id=self._id("a")))
            except InsufficientPoints:
                pass

        @invariant()
        def reconciles(self) -> None:
            totals = reconcile.totals("demo", self.member_id)
            assert totals is not None and differences(totals) == []
            card = members.card(cfg, self.principal)["points"]
            assert card["available"] == totals.points and card["held"] == totals.held

    Member.TestCase.settings = machine_settings
    Member.TestCase().runTest()
