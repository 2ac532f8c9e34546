"""The admin jobs endpoint, reconciliation, and the scheduled entry point."""

from __future__ import annotations


def test_reconcile_runs_once_per_day_and_reports_clean(api):
    token = api.enrolled("recon")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    api.till("POST", "/v1/orders", {"order_id": "o-1", "member_id": member_id, "amount_fen": 10_000,
                                    "paid_at": "2026-11-20T12:00:00+08:00"})
    first = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": "2026-11-23"})
    assert first.status_code == 200
    assert first.json["complete"] and first.json["clean"] and first.json["members_checked"] == 1
    assert first.json["replayed"] is False
    again = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {"as_of": "2026-11-23"})
    assert again.json["replayed"] is True and again.json["members_checked"] == 1


def test_reconcile_reports_a_broken_balance(api):
    token = api.enrolled("broken")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    from chalicelib.store import keys
    from chalicelib.store.models import AccountItem

    AccountItem(*keys.account("demo", member_id)).update(actions=[AccountItem.points.add(5)])
    report = api.staff("POST", "/v1/admin/jobs/reconcile/runs", {}).json
    assert report["clean"] is False and report["differences"][0]["member_id"] == member_id


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
