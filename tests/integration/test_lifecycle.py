"""Daily jobs: point expiry, reminders, birthday gifts, dormant members."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.store import keys


def run(api, job, as_of):
    answer = api.staff("POST", f"/v1/admin/jobs/{job}/runs", {"as_of": as_of.isoformat()})
    assert answer.status_code == 200, answer.body
    return answer.json


def member_with_order(api, openid, amount_fen=10_000):
    token = api.enrolled(openid)
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    api.till("POST", "/v1/orders", {"order_id": f"o-{openid}", "member_id": member_id, "amount_fen": amount_fen,
                                    "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    return token, member_id


def expiry_of_today_earnings():
    from chalicelib.domain.lots import expiry_day
    from chalicelib.domain.program import ExpiryPolicy

    # The program's today (Asia/Shanghai), not the machine's: they differ from 16:00 UTC on.
    return expiry_day(ExpiryPolicy(), dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date())


def test_a_run_13_months_after_earning_expires_the_points_once(api):
    token, member_id = member_with_order(api, "expiring")
    expires_on = dt.date.fromisoformat(api.member("GET", "/v1/members/me", token).json["points"]["expiring"][0]["date"])
    thirteen_months = expires_on + dt.timedelta(days=20)
    first = run(api, "expire-points", thirteen_months)
    assert first["complete"] and (first["lots_expired"], first["points_expired"]) == (1, 100)
    assert run(api, "expire-points", thirteen_months)["replayed"] is True
    assert run(api, "expire-points", thirteen_months + dt.timedelta(days=1))["lots_expired"] == 0
    history = api.member("GET", "/v1/members/me/points/history", token).json["items"]
    assert (history[0]["type"], history[0]["points"], history[0]["balance_after"]) == ("expire", -100, 0)
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 0
    assert run(api, "reconcile", thirteen_months)["clean"]


def test_the_card_never_counts_an_expired_lot_even_before_the_job(api, monkeypatch):
    token, _ = member_with_order(api, "early")
    expires_on = dt.date.fromisoformat(api.member("GET", "/v1/members/me", token).json["points"]["expiring"][0]["date"])
    from chalicelib.services import members

    later = dt.datetime.combine(expires_on + dt.timedelta(days=1), dt.time(12), dt.timezone.utc)
    monkeypatch.setattr(members, "_now", lambda: later)
    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == 0 and card["points"]["expiring"] == []


def test_expiry_reads_only_the_lots_expiring(api):
    """10,000 members, 100 with a lot expiring that day: the run reads at most 200 items."""
    from bench.meter import Meter
    from chalicelib.settings import get_settings
    from chalicelib.store import tx
    from chalicelib.store.models import AccountItem, LotItem

    day = dt.date(2027, 6, 30)
    with AccountItem.batch_write() as batch:
        for n in range(10_000):
            member_id = f"bulk{n:05d}"
            batch.save(AccountItem(*keys.account("demo", member_id), program_id="demo", member_id=member_id,
                                   tier="normal", points=10, updated_at="2026-01-01T00:00:00+00:00"))
            expires_on = day if n % 100 == 0 else day + dt.timedelta(days=1 + n % 300)
            queue_pk, queue_sk = keys.expiry_queue("demo", expires_on.isoformat(), member_id)
            batch.save(LotItem(*keys.lot("demo", member_id, expires_on.isoformat()), program_id="demo",
                               member_id=member_id, expires_on=expires_on.isoformat(), remaining=10, earned=10,
                               gsi2pk=queue_pk, gsi2sk=queue_sk))
    from chalicelib import jobs
    from chalicelib.store import programs

    programs.mark_expired_through("demo", (day - dt.timedelta(days=1)).isoformat())
    # As in a warm Lambda container: program config cached (the tests run with no cache).
    settings = get_settings().model_copy(update={"config_cache_seconds": 300})
    programs.clear_cache()
    programs.get_program(settings, "demo")
    meter = Meter(tx.connection().client, settings.table_name, "us-east-1")
    try:
        with meter.measure() as tally:
            report = jobs.run_job(settings, "demo", "expire-points", day + dt.timedelta(days=1))
        assert (report["lots_expired"], report["points_expired"]) == (100, 1000)
        assert tally.items_read <= 200, tally
        with meter.measure() as again:
            assert jobs.run_job(settings, "demo", "expire-points", day + dt.timedelta(days=1))["replayed"] is True
        assert again.items_read <= 1 and again.write_units == 0
    finally:
        meter.close()
        programs.clear_cache()
    assert AccountItem.get(*keys.account("demo", "bulk00100")).points == 0
    assert AccountItem.get(*keys.account("demo", "bulk00101")).points == 10


def test_an_interrupted_run_finishes_next_time_with_each_lot_expired_once(api, monkeypatch):
    members = [member_with_order(api, f"crash{n}", 1000 * (n + 1))[1] for n in range(12)]
    from chalicelib.services import lifecycle

    expires_on = expiry_of_today_earnings()
    as_of = expires_on + dt.timedelta(days=1)
    real = lifecycle.expire_lot
    calls = {"n": 0}

    def crash_on_the_fifth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("injected crash between steps")
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "expire_lot", crash_on_the_fifth)
    crashed = api.staff("POST", "/v1/admin/jobs/expire-points/runs", {"as_of": as_of.isoformat()})
    assert crashed.status_code == 500
    monkeypatch.setattr(lifecycle, "expire_lot", real)
    finished = run(api, "expire-points", as_of)
    assert finished["complete"] and finished["points_expired"] == sum(10 * (n + 1) for n in range(12))
    from chalicelib.services import reconcile

    for member_id in members:
        totals = reconcile.totals("demo", member_id)
        assert totals.points == 0 and totals.ledger_points == 0
        rows = [r for r in reconcile.store.all_ledger_rows("demo", member_id) if r.type == "expire"]
        assert len(rows) == 1


def test_reminders_once_per_lot_per_offset_one_message_per_member_per_day(api):
    token, member_id = member_with_order(api, "remind")
    expires_on = expiry_of_today_earnings()
    from chalicelib.store.models import ReminderItem

    for days_left in (30, 15, 3):
        as_of = expires_on - dt.timedelta(days=days_left)
        first = run(api, "expiry-reminders", as_of)
        assert (first["reminders"], first["lots_reminded"]) == (1, 1)
        assert run(api, "expiry-reminders", as_of)["replayed"] is True
        from chalicelib.services import lifecycle
        from chalicelib.jobs import JobContext
        from chalicelib.settings import get_settings

        # Even a fresh run of the same day (not the stored summary) adds nothing.
        again = lifecycle.remind_step(JobContext(get_settings(), "demo", as_of, {}, {}))
        assert again.summary["reminders"] == 0
    reminders = list(ReminderItem.query(keys.member_pk("demo", member_id), ReminderItem.sk.startswith("REMIND#")))
    assert sorted(r.lots[0]["days_left"] for r in reminders) == [3, 15, 30]
    assert {r.points for r in reminders} == {100}
    assert run(api, "expiry-reminders", expires_on - dt.timedelta(days=10))["reminders"] == 0


def test_birthday_gift_by_tier_once_a_year(api):
    token = api.enrolled("bday", birthday="1990-03-15")
    from chalicelib.store.models import AccountItem

    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    AccountItem(*keys.account("demo", member_id)).update(actions=[AccountItem.tier.set("silver")])
    first = run(api, "birthday-gifts", dt.date(2027, 3, 15))
    assert (first["gifts"], first["gift_points"]) == (1, 50)
    from chalicelib.jobs import JobContext
    from chalicelib.services import lifecycle
    from chalicelib.settings import get_settings

    ctx = JobContext(get_settings(), "demo", dt.date(2027, 3, 15), {}, {})
    assert sum(lifecycle.birthday_step(JobContext(ctx.settings, "demo", ctx.as_of, {"shard": s}, {})).summary["gifts"]
               for s in range(keys.MEMBER_SHARDS)) == 0
    assert run(api, "birthday-gifts", dt.date(2027, 3, 16))["gifts"] == 0
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 50
    history = api.member("GET", "/v1/members/me/points/history", token).json["items"]
    assert history[0]["reason"] == "birthday gift (银卡)"


def test_leap_day_birthdays_are_celebrated_on_28_february(api):
    api.enrolled("leap", birthday="2000-02-29")
    from chalicelib.store.models import AccountItem  # noqa: F401

    assert run(api, "birthday-gifts", dt.date(2027, 2, 28))["gifts"] == 0  # 普通 has no gift points
    from chalicelib.services.lifecycle import _birthdays

    assert _birthdays(dt.date(2027, 2, 28)) == ["02-28", "02-29"]
    assert _birthdays(dt.date(2028, 2, 28)) == ["02-28"]


def test_dormant_members_get_one_winback(api):
    _, quiet = member_with_order(api, "quiet")
    _, busy = member_with_order(api, "busy")
    today = dt.datetime.now(dt.timezone.utc).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    from chalicelib.store.models import AccountItem, WinbackItem

    AccountItem(*keys.account("demo", busy)).update(
        actions=[AccountItem.last_active_on.set((today + dt.timedelta(days=3)).isoformat())])
    as_of = today + dt.timedelta(days=15)
    first = run(api, "dormant-members", as_of)
    assert first["winbacks"] == 1
    assert run(api, "dormant-members", as_of)["replayed"] is True
    winbacks = list(WinbackItem.query(keys.member_pk("demo", quiet), WinbackItem.sk.startswith("WINBACK#")))
    assert len(winbacks) == 1 and winbacks[0].last_active == today.isoformat()
