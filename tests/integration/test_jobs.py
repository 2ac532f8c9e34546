"""The admin jobs endpoint, reconciliation, and the scheduled entry point."""

from __future__ import annotations

import datetime as dt


def _today() -> dt.date:
    from chalicelib import clock
    from chalicelib.services.programs import program_config
    from chalicelib.settings import get_settings

    return program_config(get_settings(), "demo").today(clock.now())


def _not_swept(member_id: str, near: dt.date) -> dt.date:
    """A day on or after `near` whose weekly sweep leaves the member's shard alone."""
    from chalicelib.services.reconcile import swept_shards
    from chalicelib.store import keys

    shard = int(keys.members_list("demo", member_id)[0].rsplit("#", 1)[1])
    return next(near + dt.timedelta(days=n) for n in range(7) if shard not in swept_shards(near + dt.timedelta(days=n)))


def _swept(member_id: str, near: dt.date) -> dt.date:
    from chalicelib.services.reconcile import swept_shards
    from chalicelib.store import keys

    shard = int(keys.members_list("demo", member_id)[0].rsplit("#", 1)[1])
    return next(near + dt.timedelta(days=n) for n in range(8) if shard in swept_shards(near + dt.timedelta(days=n)))


def test_reconcile_checks_the_members_changed_the_day_before(api):
    token = api.enrolled("recon")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    api.till("POST", "/v1/orders", {"order_id": "o-1", "member_id": member_id, "amount_fen": 10_000,
                                    "paid_at": "2026-11-20T12:00:00+08:00"})
    tomorrow = _today() + dt.timedelta(days=1)  # the order entered today's activity queue
    first = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": tomorrow.isoformat()})
    assert first.status_code == 200
    assert first.json["complete"] and first.json["clean"] and first.json["members_checked"] == 1
    assert first.json["replayed"] is False
    again = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": tomorrow.isoformat()})
    assert again.json["replayed"] is True and again.json["members_checked"] == 1
    # A day whose queue is empty and whose sweep misses the member's shard checks nobody.
    quiet = _not_swept(member_id, tomorrow + dt.timedelta(days=1))
    assert api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": quiet.isoformat()}).json["members_checked"] == 0


def test_the_weekly_sweep_finds_a_broken_balance_of_a_quiet_member(api):
    token = api.enrolled("broken")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    from chalicelib.store import keys
    from chalicelib.store.models import AccountItem

    AccountItem(*keys.account("demo", member_id)).update(actions=[AccountItem.points.add(5)])
    day = _swept(member_id, _today())
    report = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": day.isoformat()}).json
    assert report["clean"] is False and report["differences"][0]["member_id"] == member_id
    assert report["swept_members_checked"] == 1 and report["changed_members_checked"] == 0


def test_unknown_job_and_bad_dates(api):
    assert api.staff("POST", "/v1/admin/jobs/nope/runs", {}).status_code == 404
    assert api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": "2026-02-30"}).status_code == 400


def test_scheduled_entry_point_runs_every_program(api):
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    result = jobs.run_daily(get_settings(), wiring.daily_jobs())
    ran = [r["job"] for r in result["runs"]]
    assert result["complete"] and ran[:10] == ["expire-points", "expiry-reminders", "birthday-gifts",
                                               "expire-coupons", "coupon-reminders", "birthday-coupons",
                                               "dormant-members", "checkin-reminders", "release-pending",
                                               "reconcile"]
    assert ran[10:13] == ["reconcile-payments", "stored-value-liability", "membership-daily"]
    insight = ["daily-report", "rfm", "computed-tags", "segments"]  # issue 15
    assert ran[13:] in (insight, ["tier-review", *insight])  # the review runs on review days only
    assert jobs.run_daily(get_settings(), wiring.daily_jobs())["runs"] == []  # today is done
    assert jobs.run_frequent(get_settings(), wiring.frequent_jobs())["runs"][0] == {"job": "release-holds", "released": 0}


def test_a_run_claimed_by_another_invocation_is_refused_until_its_claim_expires(api, monkeypatch):
    from chalicelib import clock, jobs

    as_of = dt.date(2031, 1, 6)
    assert jobs._claim("demo", "reconcile", as_of, "someone-else") is not None  # a task holds it
    busy = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": as_of.isoformat()})
    assert busy.status_code == 409 and busy.json["error"]["code"] == "job_running"
    # The holder died: once its claim has expired, the run is taken over and finishes.
    later = clock.now() + dt.timedelta(seconds=jobs.LEASE_SECONDS + 1)
    monkeypatch.setattr(clock, "now", lambda: later)
    done = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": as_of.isoformat()})
    assert done.status_code == 200 and done.json["complete"]


def test_the_daily_schedule_sends_one_task_per_program_to_the_job_queue(api):
    import json

    import boto3

    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="loyalty-local-jobs")["QueueUrl"]
    settings = get_settings().model_copy(update={"job_queue_url": url})
    answer = jobs.run_daily(settings, wiring.daily_jobs())
    assert answer == {"group": "daily", "tasks_sent": 1, "complete": True}
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    task = json.loads(message["Body"])
    assert task["program_id"] == "demo" and task["job"] == "expire-points" and task["as_of"] == _today().isoformat()
    # The consumer works the whole day (nothing is left: no task sent back), in the table's order.
    result = jobs.run_task(settings, wiring.daily_jobs(), task)
    assert result["complete"] and [r["job"] for r in result["runs"]][:3] == ["expire-points", "expiry-reminders",
                                                                            "birthday-gifts"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert jobs.run_daily(settings, wiring.daily_jobs())["tasks_sent"] == 0  # today is done
