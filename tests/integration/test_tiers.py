"""Tiers and growth: stream-triggered upgrades, the review with 保级, staff grants, check-in, tasks."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

import pytest

from tests.support.stream import StreamFeeder


def order(api, member_id, order_id, amount_fen):
    answer = api.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
                                             "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    assert answer.status_code == 201, answer.body
    return answer.json


@pytest.fixture
def member(api):
    token = api.enrolled("tiered")
    return token, api.member("GET", "/v1/members/me", token).json["member_id"]


def test_crossing_1000_growth_upgrades_via_the_stream_and_the_next_order_earns_x1_2(api, member):
    token, member_id = member
    feeder = StreamFeeder()
    order(api, member_id, "o-1", 60_000)
    order(api, member_id, "o-2", 40_000)  # 1000 growth
    assert api.member("GET", "/v1/members/me", token).json["tier"]["code"] == "normal"
    answers = feeder.pump()
    assert all(a == {"batchItemFailures": []} for a in answers)
    card = api.member("GET", "/v1/members/me", token).json
    assert card["tier"]["name"] == "银卡" and card["next_tier"] == {"code": "gold", "growth_needed": 4000}
    assert card["retention"] == {"growth_needed": 0}
    assert order(api, member_id, "o-3", 10_000)["points_awarded"] == 120

    history = api.member("GET", "/v1/members/me/tiers/history", token).json["items"]
    assert [(h["from"], h["to"], h["direction"]) for h in history] == [("normal", "silver", "up")]

    # Redelivering everything (duplicates, out of order) moves nobody again.
    from app import on_table_change
    from tests.support.stream import lambda_event

    on_table_change(lambda_event(feeder.delivered), None)
    on_table_change(lambda_event(list(reversed(feeder.delivered))), None)
    feeder.pump()
    assert len(api.member("GET", "/v1/members/me/tiers/history", token).json["items"]) == 1
    assert api.member("GET", "/v1/members/me", token).json["tier"]["code"] == "silver"


def _run_review(api, as_of):
    answer = api.staff("POST", "/v1/admin/jobs/tier-review/runs", {"as_of": as_of})
    assert answer.status_code == 200, answer.body
    return answer.json


def test_review_a_year_later_drops_the_idle_keeps_the_active_and_runs_once(api):
    idle_token = api.enrolled("idle")
    idle = api.member("GET", "/v1/members/me", idle_token).json["member_id"]
    active_token = api.enrolled("active")
    active = api.member("GET", "/v1/members/me", active_token).json["member_id"]
    feeder = StreamFeeder()
    order(api, idle, "o-idle", 120_000)
    order(api, active, "o-active", 120_000)
    feeder.pump()
    assert api.member("GET", "/v1/members/me", idle_token).json["tier"]["code"] == "silver"

    # A year on, the active member earned again within the window; the idle one did not.
    from chalicelib.store import keys
    from chalicelib.store.models import AccountItem

    # The program's today (Asia/Shanghai): growth months are counted in its calendar.
    year_later = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date() + dt.timedelta(days=365)
    month = f"{year_later.year:04d}-{year_later.month:02d}"
    account = AccountItem.get(*keys.account("demo", active))
    account.update(actions=[AccountItem.growth_months.set({**account.growth_months, month: 1000}),
                            AccountItem.growth.add(1000), AccountItem.version.add(1)])
    report = _run_review(api, year_later.isoformat())
    assert report["complete"] and report["reviewed"] == 2
    assert (report["dropped"], report["kept"]) == (1, 1)
    assert api.staff("GET", f"/v1/admin/members/{idle}").json["tier"]["code"] == "normal"
    assert api.staff("GET", f"/v1/admin/members/{active}").json["tier"]["code"] == "silver"

    again = _run_review(api, year_later.isoformat())
    assert again["replayed"] is True
    from chalicelib.services import tiers
    from chalicelib.services.members import program_config
    from chalicelib.settings import get_settings

    config = program_config(get_settings(), "demo")
    assert tiers.review_member(get_settings(), config, "demo", active, year_later) == "skipped"
    history = api.staff("GET", f"/v1/admin/members/{idle}/tiers/history").json["items"]
    assert [(h["to"], h["direction"]) for h in history] == [("normal", "down"), ("silver", "up")]


def test_a_staff_grant_lifts_at_once_and_floors_the_review(api, member):
    token, member_id = member
    until = (dt.date.today() + dt.timedelta(days=400)).isoformat()
    body = {"tier": "gold", "until": until, "reason": "VIP guest", "request_id": "g-1"}
    granted = api.staff("POST", f"/v1/admin/members/{member_id}/tier", body)
    assert granted.status_code == 200 and granted.json["tier"] == "gold"
    assert api.staff("POST", f"/v1/admin/members/{member_id}/tier", body).json["tier"] == "gold"
    report = _run_review(api, (dt.date.today() + dt.timedelta(days=200)).isoformat())
    assert report["kept"] == 1
    assert api.member("GET", "/v1/members/me", token).json["tier"]["code"] == "gold"
    after = _run_review(api, (dt.date.today() + dt.timedelta(days=401)).isoformat())
    assert after["dropped"] == 1
    assert api.member("GET", "/v1/members/me", token).json["tier"]["code"] == "silver"


def test_check_in_once_a_day_with_streaks_and_the_day_7_bonus(api, member, monkeypatch):
    token, _ = member
    from chalicelib.services import checkins

    start = dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.timezone.utc)
    answers = []
    for day in range(8):
        monkeypatch.setattr(checkins, "now_utc", lambda d=day: start + dt.timedelta(days=d))
        answers.append(api.member("POST", "/v1/members/me/checkin", token).json)
        repeat = api.member("POST", "/v1/members/me/checkin", token).json
        assert repeat["new"] is False and repeat["points_awarded"] == 0
    assert [a["streak"] for a in answers] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [a["points_awarded"] for a in answers] == [1, 1, 1, 1, 1, 1, 11, 1]
    monkeypatch.setattr(checkins, "now_utc", lambda: start + dt.timedelta(days=10))
    assert api.member("POST", "/v1/members/me/checkin", token).json["streak"] == 1


def test_twenty_concurrent_check_ins_award_once(api, member):
    token, _ = member
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = [a.json for a in pool.map(lambda _: api.member("POST", "/v1/members/me/checkin", token), range(20))]
    assert sum(a["new"] for a in answers) == 1
    assert sum(a["points_awarded"] for a in answers) == 1
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 1


def test_completing_the_profile_pays_the_task_once(api, member):
    token, _ = member
    feeder = StreamFeeder()
    api.member("PATCH", "/v1/members/me", token, {"nickname": "T", "birthday": "1990-01-02"})
    api.member("POST", "/v1/members/me/phone", token, {"phone_code": "phone-13700000000"})
    feeder.pump()
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 50
    api.member("PATCH", "/v1/members/me", token, {"nickname": "T2"})
    feeder.pump()
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 50
    moved = api.member("PATCH", "/v1/members/me", token, {"birthday": "1991-01-02"})
    assert moved.status_code == 409 and moved.json["error"]["code"] == "birthday_already_set"
