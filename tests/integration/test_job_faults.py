"""A job task killed mid-page loses nothing and repeats nothing: a fault injected at every
DynamoDB call of a run, in turn, then the task delivered again (as SQS does) until the run is
done. Two kinds of fault: throttling (the call fails, the task raises, its claim is released) and
a kill (a Lambda timeout: the call and every later one never happen, the claim is left to expire).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import botocore.client
import pytest
from botocore.exceptions import ClientError

from chalicelib import clock, jobs, wiring
from chalicelib.settings import get_settings
from chalicelib.store import keys

MEMBERS = 3
POINTS = 10
BASE = dt.date(2027, 3, 1)


class Killed(BaseException):
    """The task's process died (Lambda timeout): nothing after this point runs."""


class Faults:
    """Counts DynamoDB calls; at call `at`, throttles it, or kills the "process" from there on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.at: int | None = None
        self.kind = "throttle"
        self.dead = False
        original = botocore.client.BaseClient._make_api_call
        faults = self

        def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if client.meta.service_model.service_name == "dynamodb":
                faults.calls += 1
                if faults.dead:
                    raise Killed()
                if faults.at is not None and faults.calls == faults.at:
                    if faults.kind == "kill":
                        faults.dead = True
                        raise Killed()
                    raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                                 "Message": "injected"}}, operation)
            return original(client, operation, params)

        monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)

    def arm(self, at: int | None, kind: str) -> None:
        self.calls, self.at, self.kind, self.dead = 0, at, kind, False


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> list[dt.timedelta]:
    """clock.now() moved by the list's one element (to let a dead task's claim expire)."""
    offset = [dt.timedelta(0)]
    real = clock.now
    monkeypatch.setattr(clock, "now", lambda: real() + offset[0])
    return offset


def _deliver_until_done(message: dict[str, Any], table: dict[str, jobs.Job], later: list[dt.timedelta],
                        faults: Faults) -> None:
    """What SQS does with a task: deliver it again until a delivery finishes it, then the tasks
    that one sent."""
    queue = jobs.InlineTaskQueue()
    pending = [message]
    for _ in range(50):
        if not pending:
            return
        task = pending.pop(0)
        try:
            jobs.run_task(get_settings(), table, task, queue=queue)
        except Killed:
            faults.arm(None, "throttle")  # a new container
            later[0] += dt.timedelta(seconds=jobs.LEASE_SECONDS + 1)  # redelivered after the claim expired
            pending.insert(0, task)
        except Exception:  # noqa: BLE001 - the task failed: SQS delivers it again
            faults.arm(None, "throttle")
            pending.insert(0, task)
        pending += [t.to_message() for t in queue.pending]
        queue.pending.clear()
    raise AssertionError("the run never finished")


def _seed_expiring(scenario: int, day: dt.date) -> list[str]:
    from chalicelib.store import programs
    from chalicelib.store.models import AccountItem, LotItem

    members = [f"fault{scenario:03d}x{n}" for n in range(MEMBERS)]
    with AccountItem.batch_write() as batch:
        for member_id in members:
            batch.save(AccountItem(*keys.account("demo", member_id), program_id="demo", member_id=member_id,
                                   tier="normal", points=POINTS, updated_at="2026-01-01T00:00:00+00:00"))
            queue_pk, queue_sk = keys.expiry_queue("demo", day.isoformat(), member_id)
            batch.save(LotItem(*keys.lot("demo", member_id, day.isoformat()), program_id="demo", member_id=member_id,
                               expires_on=day.isoformat(), remaining=POINTS, earned=POINTS,
                               gsi2pk=queue_pk, gsi2sk=queue_sk))
    programs.mark_expired_through("demo", (day - dt.timedelta(days=1)).isoformat())
    programs.clear_cache()
    return members


def _expiry_effects(members: list[str], day: dt.date) -> dict[str, Any]:
    from chalicelib.store import ledger
    from chalicelib.store.models import AccountItem, LedgerItem, LotItem

    rows = [row for m in members for row in ledger.all_ledger_rows("demo", m)]
    return {
        "expire_rows": sorted((row.member_id, row.type, int(row.points)) for row in rows),
        "points": [int(AccountItem.get(*keys.account("demo", m)).points) for m in members],
        "lots": [int(LotItem.get(*keys.lot("demo", m, day.isoformat())).remaining) for m in members],
        "rows_of_a_kind": sum(1 for row in rows if isinstance(row, LedgerItem)),
    }


def test_expiry_killed_or_throttled_at_every_call_loses_nothing_and_repeats_nothing(api, monkeypatch, later):
    from chalicelib.services import lifecycle

    monkeypatch.setattr(lifecycle, "PAGE", 2)  # 3 lots: two pages, and a fault can land between them
    table = {"expire-points": wiring.daily_jobs()["expire-points"]}
    faults = Faults(monkeypatch)

    # The clean run: how many calls it makes, and what it leaves.
    day = BASE
    members = _seed_expiring(0, day)
    faults.arm(None, "throttle")
    as_of = day + dt.timedelta(days=1)
    _deliver_until_done({"program_id": "demo", "as_of": as_of.isoformat(), "job": "expire-points"}, table, later, faults)
    calls = faults.calls
    clean = _expiry_effects(members, day)
    assert clean["expire_rows"] == [(m, "expire", -POINTS) for m in members] and clean["points"] == [0] * MEMBERS
    assert calls >= 10

    scenario = 0
    for kind in ("throttle", "kill"):
        for at in range(1, calls + 1):
            scenario += 1
            day = BASE + dt.timedelta(days=2 * scenario)
            members = _seed_expiring(scenario, day)
            as_of = day + dt.timedelta(days=1)
            faults.arm(at, kind)
            _deliver_until_done({"program_id": "demo", "as_of": as_of.isoformat(), "job": "expire-points"},
                                table, later, faults)
            effects = _expiry_effects(members, day)
            # Nothing lost, nothing twice: one expiry row per lot, every balance and lot at zero.
            assert effects["expire_rows"] == [(m, "expire", -POINTS) for m in members], (kind, at)
            assert effects["points"] == [0] * MEMBERS and effects["lots"] == [0] * MEMBERS, (kind, at)
            run = jobs.run_job(get_settings(), table, "demo", "expire-points", as_of)
            assert run["replayed"] and run["complete"], (kind, at)
            # The summary never counts a lot twice (a page redone after its writes but before
            # its checkpoint finds those lots gone and may count them short).
            assert run["points_expired"] <= MEMBERS * POINTS, (kind, at)


def test_reconcile_killed_or_throttled_at_every_call_reports_the_clean_run(api, monkeypatch, later):
    from chalicelib.services import reconcile

    monkeypatch.setattr(reconcile, "PAGE", 1)
    for n in range(4):
        api.enrolled(f"recon-fault-{n}")
    table = {"reconcile": wiring.daily_jobs()["reconcile"]}
    faults = Faults(monkeypatch)
    first = dt.date(2027, 5, 3)
    # The weekly sweep's shards depend on the weekday: pick a day whose sweep finds members.
    day = next(first + dt.timedelta(days=n) for n in range(7)
               if jobs.run_job(get_settings(), table, "demo", "reconcile", first + dt.timedelta(days=n))[
                   "swept_members_checked"] > 0)
    faults.arm(None, "throttle")
    clean_day = day + dt.timedelta(days=7)
    _deliver_until_done({"program_id": "demo", "as_of": clean_day.isoformat(), "job": "reconcile"}, table, later, faults)
    calls = faults.calls
    clean = jobs.run_job(get_settings(), table, "demo", "reconcile", clean_day)
    assert clean["members_checked"] >= 1 and clean["clean"]
    counted = ("members_checked", "swept_members_checked", "changed_members_checked", "members_with_differences")
    week = 1
    for kind in ("throttle", "kill"):
        for at in range(1, calls + 1):
            week += 1
            as_of = day + dt.timedelta(days=7 * week)  # the same weekday: the same shards swept
            faults.arm(at, kind)
            _deliver_until_done({"program_id": "demo", "as_of": as_of.isoformat(), "job": "reconcile"},
                                table, later, faults)
            run = jobs.run_job(get_settings(), table, "demo", "reconcile", as_of)
            assert run["complete"] and {k: run[k] for k in counted} == {k: clean[k] for k in counted}, (kind, at)
