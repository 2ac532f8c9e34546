"""Reconciling a member while the service keeps changing it (the frequent job releasing a hold,
a till capturing one, an order landing) must not report a difference that is not there.

`reconcile.totals` reads the account, the ledger rows, the open holds and the pending entries in
separate requests. The load run of 2026-11-30 19:05 reported "held 100 != open holds 0" for one
member: the frequent job released that member's expired hold after the check had read the ledger
rows and before it listed the open holds. The service was right (one transaction moved account,
ledger row and hold together); the check compared two moments. `totals` now re-reads the
account's version after the other reads and starts again when it moved, so its figures are one
moment's. A real drift (nothing moving) is still reported.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

PAID_AT = "2026-11-20T12:00:00+08:00"


@pytest.fixture
def member(api):
    token = api.enrolled("reconciled-live")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    api.till("POST", "/v1/orders", {"order_id": "o-1", "member_id": member_id, "amount_fen": 50_000,
                                    "paid_at": PAID_AT})
    placed = api.till("POST", "/v1/points/holds", {"hold_id": "h-1", "member_id": member_id, "order_id": "sale-1",
                                                   "order_amount_fen": 10_000, "points": 100})
    assert placed.status_code == 201
    return member_id


def _between_reads(monkeypatch, step, when: str):
    """Run `step` once, right after `totals` made the read named `when` (rows or holds)."""
    from chalicelib.services import holds, reconcile

    done = threading.Event()
    target, name = {"rows": (reconcile.store, "all_ledger_rows"), "holds": (holds, "open_holds")}[when]
    original = getattr(target, name)

    def read_then_step(*args, **kwargs):
        found = original(*args, **kwargs)
        if not done.is_set():
            done.set()
            step()
        return found

    monkeypatch.setattr(target, name, read_then_step)
    return done


def _release_expired():
    from chalicelib.services import holds
    from chalicelib.settings import get_settings

    now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=31)
    assert holds.release_due_holds(get_settings(), now) == {"released": 1}


@pytest.mark.parametrize("when", ["rows", "holds"])
def test_a_hold_released_by_the_job_during_the_reconciliation_is_not_a_difference(api, member, monkeypatch, when):
    from chalicelib.domain.reconcile import differences
    from chalicelib.services import reconcile

    ran = _between_reads(monkeypatch, _release_expired, when)
    found = reconcile.totals("demo", member)
    assert ran.is_set()
    assert found is not None and differences(found) == []
    assert (found.held, found.open_holds, found.points) == (0, 0, 500)


def test_a_capture_and_an_order_during_the_reconciliation_are_not_differences(api, member, monkeypatch):
    from chalicelib.domain.reconcile import differences
    from chalicelib.services import reconcile

    def capture_and_order():
        assert api.till("POST", "/v1/points/holds/h-1/capture").status_code == 200
        assert api.till("POST", "/v1/orders", {"order_id": "o-2", "member_id": member, "amount_fen": 10_000,
                                               "paid_at": PAID_AT}).status_code == 201

    _between_reads(monkeypatch, capture_and_order, "rows")
    found = reconcile.totals("demo", member)
    assert found is not None and differences(found) == []
    assert (found.held, found.points) == (0, 500)


def test_a_real_drift_is_still_reported(api, member):
    """The hold item says released, the account still holds its points: nothing moves, so the
    re-read agrees and the difference stands."""
    from chalicelib.domain.reconcile import differences
    from chalicelib.services import reconcile
    from chalicelib.store import keys
    from chalicelib.store.models import HoldItem

    HoldItem(*keys.hold("demo", "h-1")).update(actions=[HoldItem.status.set("released")])
    found = reconcile.totals("demo", member)
    assert found is not None and differences(found) == ["held 100 != open holds 0"]
    assert reconcile.reconcile_program("demo")["members_with_differences"] == 1
