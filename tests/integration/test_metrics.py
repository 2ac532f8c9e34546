"""Business metrics reach stdout as CloudWatch EMF lines with the dimensions the alarms read."""

from __future__ import annotations

import json
from typing import Any


def _metrics(out: str) -> list[tuple[str, dict[str, str], float]]:
    found = []
    for line in out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        data = json.loads(line)
        (directive,) = data["_aws"]["CloudWatchMetrics"]
        (metric,) = directive["Metrics"]
        dims = {name: data[name] for name in directive["Dimensions"][0]}
        found.append((metric["Name"], dims, data[metric["Name"]][0]))
    return found


def test_accruals_redemptions_and_refusals_by_code(api: Any, capsys: Any) -> None:
    token = api.enrolled("metered")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    capsys.readouterr()
    order = {"order_id": "m-1", "member_id": member_id, "amount_fen": 20000, "paid_at": "2026-11-30T10:00:00+08:00"}
    assert api.till("POST", "/v1/orders", order).status_code == 201
    assert api.till("POST", "/v1/orders", order).status_code == 201  # a replay is not a second accrual
    redeem = {"reward_id": "demo-cup", "quantity": 1, "request_id": "m-r1"}
    assert api.member("POST", "/v1/members/me/redemptions", token, redeem).status_code == 201
    too_much = {"reward_id": "demo-cup", "quantity": 5, "request_id": "m-r2"}
    assert api.member("POST", "/v1/members/me/redemptions", token, too_much).status_code == 409
    found = _metrics(capsys.readouterr().out)
    base = {"service": "loyalty", "stage": "local"}
    assert ("Accruals", base, 1.0) in found and found.count(("Accruals", base, 1.0)) == 1
    assert ("PointsAccrued", base, 200.0) in found
    assert ("Redemptions", base, 1.0) in found and ("PointsRedeemed", base, 100.0) in found
    assert ("Refusals", {**base, "code": "insufficient_points"}, 1.0) in found


def test_job_progress_and_completion(api: Any, capsys: Any) -> None:
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    capsys.readouterr()
    jobs.run_frequent(get_settings(), wiring.frequent_jobs())
    found = _metrics(capsys.readouterr().out)
    assert ("ScheduledRunCompleted", {"service": "loyalty", "stage": "local", "schedule": "frequent"}, 1.0) in found
    answer = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": "2026-11-30"})
    assert answer.status_code == 200
    names = {(name, dims.get("job")) for name, dims, _ in _metrics(capsys.readouterr().out)}
    assert {("JobPages", "reconcile"), ("JobRunsCompleted", "reconcile")} <= names
