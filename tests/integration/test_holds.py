"""Checkout deduction holds: freeze, capture, release, expire unsettled."""

from __future__ import annotations

import datetime as dt

import pytest

PAID_AT = "2026-11-20T12:00:00+08:00"


@pytest.fixture
def member(api):
    token = api.enrolled("holder")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    api.till("POST", "/v1/orders", {"order_id": "o-1", "member_id": member_id, "amount_fen": 50_000,
                                    "paid_at": PAID_AT})
    return token, member_id


def hold(api, member_id, hold_id="h-1", points=100, order_amount_fen=10_000):
    return api.till("POST", "/v1/points/holds", {"hold_id": hold_id, "member_id": member_id, "order_id": "sale-1",
                                                 "order_amount_fen": order_amount_fen, "points": points})


def test_hold_then_capture(api, member):
    token, member_id = member
    placed = hold(api, member_id)
    assert placed.status_code == 201
    assert placed.json["deduction_fen"] == 1000 and placed.json["points_balance"] == 400
    assert hold(api, member_id).json == placed.json
    card = api.member("GET", "/v1/members/me", token).json["points"]
    assert card["available"] == 400 and card["held"] == 100
    captured = api.till("POST", "/v1/points/holds/h-1/capture")
    assert captured.status_code == 200 and captured.json["status"] == "captured"
    assert api.till("POST", "/v1/points/holds/h-1/capture").json["status"] == "captured"
    assert api.till("POST", "/v1/points/holds/h-1/release").status_code == 409
    card = api.member("GET", "/v1/members/me", token).json["points"]
    assert card["available"] == 400 and card["held"] == 0
    types = [h["type"] for h in api.member("GET", "/v1/members/me/points/history", token).json["items"]]
    assert types == ["redeem", "hold", "earn"]


def test_hold_then_release_returns_points(api, member):
    token, member_id = member
    hold(api, member_id, points=200, order_amount_fen=40_000)
    released = api.till("POST", "/v1/points/holds/h-1/release")
    assert released.json["status"] == "released" and released.json["points_balance"] == 500
    card = api.member("GET", "/v1/members/me", token).json["points"]
    assert card == {**card, "available": 500, "held": 0}


def test_hold_is_capped_and_needs_points(api, member):
    _, member_id = member
    capped = hold(api, member_id, points=600, order_amount_fen=10_000)  # 50% of 100 yuan = 500 points
    assert capped.status_code == 400 and capped.json["error"]["code"] == "hold_exceeds_cap"
    short = hold(api, member_id, hold_id="h-2", points=5000, order_amount_fen=1_000_000)
    assert short.status_code == 409 and short.json["error"]["code"] == "insufficient_points"


def test_unsettled_holds_release_themselves(api, member):
    token, member_id = member
    hold(api, member_id)
    from chalicelib.services import holds
    from chalicelib.settings import get_settings

    now = dt.datetime.now(dt.timezone.utc)
    assert holds.release_due_holds(get_settings(), now) == {"released": 0}
    assert holds.release_due_holds(get_settings(), now + dt.timedelta(minutes=31)) == {"released": 1}
    assert holds.release_due_holds(get_settings(), now + dt.timedelta(minutes=31)) == {"released": 0}
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 500


def test_a_hold_that_is_the_first_activity_of_its_day_still_releases_itself(api, member, monkeypatch):
    """The stuck-hold bug: earn 500 today; tomorrow a till places a hold of 100 (the member's first
    activity that day) and never settles it. Eight days later `held` must be 0 again. (It once
    stayed 100: the hold shared one index slot between the due queue and the activity queue.)"""
    from chalicelib import clock, jobs, wiring
    from chalicelib.services import reconcile
    from chalicelib.settings import get_settings

    token, member_id = member
    today = dt.datetime.now(dt.timezone.utc)
    monkeypatch.setattr(clock, "now", lambda: today + dt.timedelta(days=1))
    assert hold(api, member_id).status_code == 201
    assert api.member("GET", "/v1/members/me", token).json["points"]["held"] == 100

    for day in range(1, 9):  # the frequent job keeps running; the hold's time ran out on day 1
        monkeypatch.setattr(clock, "now", lambda d=day: today + dt.timedelta(days=d, hours=1))
        jobs.run_frequent(get_settings(), wiring.frequent_jobs())
    card = api.member("GET", "/v1/members/me", token).json["points"]
    assert (card["held"], card["available"]) == (0, 500)
    history = api.member("GET", "/v1/members/me/points/history", token).json["items"]
    assert [(h["type"], h["points"]) for h in history] == [("release", 100), ("hold", -100), ("earn", 500)]
    assert not reconcile.reconcile_program("demo")["differences"]
    # ...and the day's activity queue still has the hold's ledger row (dormancy reads it).
    from chalicelib.store import keys
    from chalicelib.store.models import TableItem

    tomorrow = (today + dt.timedelta(days=1)).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date()
    shard_rows = [item for shard in range(keys.MEMBER_SHARDS)
                  for item in TableItem.gsi2.query(keys.activity_queue_partition("demo", tomorrow.isoformat(), shard))]
    assert [row.type for row in shard_rows if row.member_id == member_id] == ["hold"]
