"""Risk controls through the API: till rate caps (429, nothing written), pending points (caps,
review threshold, refund ratio) released or rejected by staff once, the auto-release job, flags
with their evidence; reconciliation after every step."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib import clock

# A fixed moment early in a minute: 200 orders all land in it however long the test takes.
NOW = dt.datetime(2026, 11, 30, 9, 30, 2, tzinfo=dt.timezone.utc)
PAID_AT = "2026-11-30T17:00:00+08:00"


def order(order_id, member_id, amount_fen):
    return {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen, "paid_at": PAID_AT}


@pytest.fixture
def frozen(monkeypatch):
    """The clock stands at NOW and moves 1 ms per reading: rows keep their order in history."""
    ticks = iter(range(10**9))
    monkeypatch.setattr(clock, "now", lambda: NOW + dt.timedelta(milliseconds=next(ticks)))
    return NOW


def set_risk(api, **rules):
    view = api.staff("GET", "/v1/admin/program").json
    version = view.pop("version")
    for fixed in ("program_id", "appid"):
        view.pop(fixed)
    view["risk"] = {**view["risk"], **rules}
    answer = api.staff("PUT", "/v1/admin/program", {"version": version, **view})
    assert answer.status_code == 200, answer.body
    return answer.json["risk"]


def enrolled(api, openid):
    token = api.enrolled(openid)
    return token, api.member("GET", "/v1/members/me", token).json["member_id"]


def check_books():
    """Every member of the demo program: balance = ledger = lots - debt, pending = open entries."""
    from chalicelib.services.reconcile import reconcile_program

    report = reconcile_program("demo")
    assert report["clean"], report["differences"]


def history(api, member_id):
    return api.staff("GET", f"/v1/admin/members/{member_id}/points/history?limit=100").json["items"]


def test_a_till_posting_200_orders_in_a_minute_against_a_cap_of_60(api, frozen):
    from chalicelib.store import risk as risk_store

    set_risk(api, till_caps={"dev-pos": {"orders_per_minute": 60}})
    token, member_id = enrolled(api, "alice")
    statuses = []
    for n in range(200):
        answer = api.till("POST", "/v1/orders", order(f"o-{n}", member_id, 1_000))
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert answer.json["error"]["code"] == "rate_limited"
    assert statuses.count(201) == 60 and statuses.count(429) == 140
    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == 60 * 10
    assert risk_store.till_rate("dev-pos", "2026-11-30T09") == {"m30": 60, "amount_fen": 60_000}
    # Nothing of a refused order was written: no order row, no ledger row; a replay of an
    # accepted order still answers as a replay.
    rows = history(api, member_id)
    assert len(rows) == 60 and {r["ref"] for r in rows} == {f"o-{n}" for n in range(60)}
    assert api.till("POST", "/v1/orders", order("o-0", member_id, 1_000)).status_code == 201
    assert api.till("POST", "/v1/orders", order("o-150", member_id, 1_000)).status_code == 429
    check_books()


def test_the_cap_counts_per_minute_and_the_amount_per_hour(api, frozen, monkeypatch):
    set_risk(api, till_caps={"*": {"orders_per_minute": 2, "amount_fen_per_hour": 10_000}})
    _, member_id = enrolled(api, "bob")
    assert [api.till("POST", "/v1/orders", order(f"a-{n}", member_id, 1_000)).status_code for n in range(3)] == \
        [201, 201, 429]
    monkeypatch.setattr(clock, "now", lambda: NOW + dt.timedelta(minutes=1))
    assert api.till("POST", "/v1/orders", order("b-1", member_id, 7_000)).status_code == 201
    # 2 000 + 7 000 fen this hour: another 1 001 would pass 10 000.
    assert api.till("POST", "/v1/orders", order("b-2", member_id, 1_001)).status_code == 429
    assert api.till("POST", "/v1/orders", order("b-3", member_id, 1_000)).status_code == 201
    # An order larger than the whole hour's cap is refused outright.
    monkeypatch.setattr(clock, "now", lambda: NOW + dt.timedelta(hours=1))
    assert api.till("POST", "/v1/orders", order("c-1", member_id, 10_001)).status_code == 429
    assert api.till("POST", "/v1/orders", order("c-2", member_id, 10_000)).status_code == 201
    check_books()


def test_a_member_over_the_daily_cap_has_the_excess_pending_until_staff_release_it_once(api, frozen):
    set_risk(api, daily_points_cap=100)
    token, member_id = enrolled(api, "carol")
    first = api.till("POST", "/v1/orders", order("o-1", member_id, 15_000)).json
    assert (first["points_awarded"], first["points_pending"], first["pending_reason"]) == (100, 50, "daily_cap")
    check_books()
    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == 100 and card["points"]["pending"] == 50
    rows = history(api, member_id)
    pending_row = next(r for r in rows if r["type"] == "pending")
    assert (pending_row["points"], pending_row["pending"], pending_row["balance_after"]) == (50, 50, 100)
    assert api.member("GET", "/v1/members/me/points/history", token).json["items"][0]["id"] in \
        {r["id"] for r in rows}
    # Over the cap, nothing more is spendable today.
    second = api.till("POST", "/v1/orders", order("o-2", member_id, 2_000)).json
    assert (second["points_awarded"], second["points_pending"]) == (0, 20)
    check_books()

    path = f"/v1/admin/members/{member_id}/pending/{pending_row['id']}/release"
    released = api.staff("POST", path, {"request_id": "rel-1", "reason": "regular customer"})
    assert released.status_code == 200, released.body
    assert released.json == {"member_id": member_id, "entry_id": pending_row["id"], "status": "released",
                             "points": 50, "points_balance": 150, "points_pending": 20}
    check_books()
    for _ in range(2):  # a replayed release changes nothing
        again = api.staff("POST", path, {"request_id": "rel-1", "reason": "regular customer"})
        assert again.status_code == 200 and again.json == released.json
    check_books()
    other = api.staff("POST", path, {"request_id": "rel-2"})
    assert other.status_code == 409 and other.json["error"]["code"] == "pending_settled"
    conflict = api.staff("POST", path, {"request_id": "rel-1", "reason": "something else"})
    assert conflict.status_code == 409 and conflict.json["error"]["code"] == "idempotency_conflict"
    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == 150 and card["points"]["pending"] == 20
    kinds = [r["type"] for r in history(api, member_id)]
    assert kinds.count("pending") == 2 and kinds.count("earn") == 2
    missing = api.staff("POST", f"/v1/admin/members/{member_id}/pending/nope/release", {"request_id": "x-1"})
    assert missing.status_code == 404
    check_books()


def test_an_order_above_the_review_threshold_awards_nothing_spendable_until_approved(api, frozen):
    token, member_id = enrolled(api, "dave")  # demo: orders of 50 000 yuan or more are reviewed
    big = api.till("POST", "/v1/orders", order("big-1", member_id, 5_000_000)).json
    assert (big["points_awarded"], big["points_pending"], big["pending_reason"]) == (0, 50_000, "review")
    card = api.member("GET", "/v1/members/me", token).json
    assert card["points"]["available"] == 0 and card["points"]["pending"] == 50_000
    redeem = api.member("POST", "/v1/members/me/redemptions", token,
                        {"reward_id": "demo-cup", "quantity": 1, "request_id": "r-1"})
    assert redeem.status_code == 409 and redeem.json["error"]["code"] == "insufficient_points"
    queue = api.staff("GET", "/v1/admin/pending").json["items"]
    assert [(e["member_id"], e["rule"], e["points"], e["auto_release_on"]) for e in queue] == \
        [(member_id, "review", 50_000, "2026-12-07")]
    entry_id = queue[0]["entry_id"]
    assert history(api, member_id)[0]["id"] == entry_id
    check_books()

    approved = api.staff("POST", f"/v1/admin/members/{member_id}/pending/{entry_id}/release",
                         {"request_id": "ok-1"})
    assert approved.json["points_balance"] == 50_000
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 50_000
    assert api.staff("GET", "/v1/admin/pending").json["items"] == []
    check_books()


def test_a_rejection_leaves_no_trace_on_the_balance_but_stays_in_history(api, frozen):
    token, member_id = enrolled(api, "erin")
    api.till("POST", "/v1/orders", order("small", member_id, 10_000))
    api.till("POST", "/v1/orders", order("big", member_id, 6_000_000))
    entry_id = api.staff("GET", "/v1/admin/pending").json["items"][0]["entry_id"]
    rejected = api.staff("POST", f"/v1/admin/members/{member_id}/pending/{entry_id}/reject",
                         {"request_id": "no-1", "reason": "fake order"})
    assert rejected.status_code == 200
    assert rejected.json == {"member_id": member_id, "entry_id": entry_id, "status": "rejected", "points": 60_000,
                             "points_balance": 100, "points_pending": 0}
    card = api.member("GET", "/v1/members/me", token).json["points"]
    assert (card["available"], card["pending"]) == (100, 0)
    rows = history(api, member_id)
    assert [(r["type"], r["points"], r["balance_after"]) for r in rows] == \
        [("pending", -60_000, 100), ("pending", 60_000, 100), ("earn", 100, 100)]
    assert rows[0]["reason"] == "pending rejected: fake order"
    entries = api.staff("GET", f"/v1/admin/members/{member_id}/pending").json["items"]
    assert [(e["status"], e["settled_reason"]) for e in entries] == [("rejected", "fake order")]
    # The auto-release day comes and goes: a rejected entry stays rejected.
    due = api.staff("POST", "/v1/admin/jobs/release-pending/runs", {"as_of": "2026-12-07"}).json
    assert due["pending_released"] == 0
    assert api.member("GET", "/v1/members/me", token).json["points"]["available"] == 100
    check_books()


def test_review_sized_orders_release_themselves_after_n_days(api, frozen):
    token, member_id = enrolled(api, "fay")
    api.till("POST", "/v1/orders", order("big", member_id, 5_000_000))
    early = api.staff("POST", "/v1/admin/jobs/release-pending/runs", {"as_of": "2026-12-06"}).json
    assert early["pending_released"] == 0
    due = api.staff("POST", "/v1/admin/jobs/release-pending/runs", {"as_of": "2026-12-07"}).json
    assert due["pending_released"] == 1
    again = api.staff("POST", "/v1/admin/jobs/release-pending/runs", {"as_of": "2026-12-07"}).json
    assert again["replayed"] is True
    card = api.member("GET", "/v1/members/me", token).json["points"]
    assert (card["available"], card["pending"]) == (50_000, 0)
    check_books()


def test_refunds_of_a_pending_order_take_from_the_pending_points_first(api, frozen):
    token, member_id = enrolled(api, "gus")
    api.till("POST", "/v1/orders", order("big", member_id, 5_000_000))
    part = api.till("POST", "/v1/orders/big/refunds", {"refund_id": "r-1", "amount_fen": 1_000_000}).json
    assert (part["points_reversed"], part["pending_reversed"], part["points_balance"]) == (0, 10_000, 0)
    entry = api.staff("GET", "/v1/admin/pending").json["items"][0]
    assert entry["remaining"] == 40_000
    check_books()
    api.staff("POST", f"/v1/admin/members/{member_id}/pending/{entry['entry_id']}/release", {"request_id": "ok"})
    # Once released, the rest of the order's points are in the balance: a refund takes from it.
    rest = api.till("POST", "/v1/orders/big/refunds", {"refund_id": "r-2", "amount_fen": 4_000_000}).json
    assert (rest["points_reversed"], rest["pending_reversed"], rest["points_balance"]) == (40_000, 0, 0)
    check_books()


def test_a_member_refunding_too_much_gets_new_accruals_pending_and_a_flag(api, frozen):
    set_risk(api, refund_ratio_pct=50, refund_ratio_min_ordered_fen=10_000)
    token, member_id = enrolled(api, "hal")
    api.till("POST", "/v1/orders", order("o-1", member_id, 20_000))
    api.till("POST", "/v1/orders/o-1/refunds", {"refund_id": "r-1", "amount_fen": 15_000})
    held = api.till("POST", "/v1/orders", order("o-2", member_id, 3_000)).json
    assert (held["points_awarded"], held["points_pending"], held["pending_reason"]) == (0, 30, "refund_ratio")
    check_books()
    flags = api.staff("GET", "/v1/admin/flags").json["items"]
    assert [(f["rule"], f["member_ids"]) for f in flags] == [("refund_ratio", [member_id])]
    detail = api.staff("GET", f"/v1/admin/flags/{flags[0]['flag_id']}").json
    assert detail["evidence"]["ordered_fen"] == 20_000 and detail["evidence"]["refunded_fen"] == 15_000
    evidence = detail["members"][0]
    assert [o["ref"] for o in evidence["orders"]] == ["o-2", "o-1"]
    assert [r["ref"] for r in evidence["refunds"]] == ["o-1"]
    body = {"request_id": "fl-1", "resolution": "confirmed", "reason": "serial refunder"}
    resolved = api.staff("POST", f"/v1/admin/flags/{flags[0]['flag_id']}/resolve", body)
    assert resolved.status_code == 200 and resolved.json["status"] == "resolved"
    assert api.staff("POST", f"/v1/admin/flags/{flags[0]['flag_id']}/resolve", body).json == resolved.json
    assert api.staff("POST", f"/v1/admin/flags/{flags[0]['flag_id']}/resolve",
                     {**body, "request_id": "fl-2"}).json["error"]["code"] == "flag_resolved"
    assert api.staff("GET", "/v1/admin/flags").json["items"] == []
    assert [f["flag_id"] for f in api.staff("GET", "/v1/admin/resolved-flags").json["items"]] == \
        [flags[0]["flag_id"]]


def test_many_members_behind_one_device_or_phone_are_flagged(api, frozen):
    from tests.support import calls

    members = []
    for n in range(5):
        login = api.request("POST", "/v1/auth/login", {"appid": calls.DEMO_APPID, "code": f"dev-farm{n}",
                                                       "device_id": "device-0001"}).json
        card = api.member("POST", "/v1/members", login["token"], {"device_id": "device-0001"}).json
        members.append((login["token"], card["member_id"]))
        flagged = api.staff("GET", "/v1/admin/flags").json["items"]
        assert len(flagged) == (1 if n == 4 else 0)  # demo default: 5 members behind one device
    assert flagged[0]["rule"] == "shared_device" and sorted(flagged[0]["member_ids"]) == sorted(m for _, m in members)
    assert "device-0001" not in str(flagged)  # only a keyed hash is kept

    phone = {"phone_code": "phone-13800000000"}
    assert api.member("POST", "/v1/members/me/phone", members[0][0], phone).status_code == 200
    for token, _ in members[1:3]:
        assert api.member("POST", "/v1/members/me/phone", token, phone).json["error"]["code"] == "phone_in_use"
    rules = {f["rule"]: f for f in api.staff("GET", "/v1/admin/flags").json["items"]}
    assert sorted(rules["shared_phone"]["member_ids"]) == sorted(m for _, m in members[:3])
    assert "13800000000" not in str(rules)
