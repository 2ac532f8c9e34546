"""Coupons through the API on in-process moto: templates, claims, grants, gifts, the wallet,
核销 and voids, expiry and reminders, history. (Concurrency over HTTP: tests/e2e/test_coupons_e2e.py.)"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from chalicelib import clock
from tests.support import seeded
from tests.support.stream import StreamFeeder

ZONE = ZoneInfo("Asia/Shanghai")


def today() -> dt.date:
    return dt.datetime.now(ZONE).date()  # the program's day, not the machine's


def put_template(api, template_id, **fields):
    body = {"name": "5 off", "kind": "amount_off", "off_fen": 500, "valid_days": 30, "claimable": True, **fields}
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    return api.staff("PUT", f"/v1/admin/coupon-templates/{template_id}", body)


def member(api, openid):
    token = api.enrolled(openid)
    return token, api.member("GET", "/v1/members/me", token).json["member_id"]


def claim(api, token, template_id, request_id):
    return api.member("POST", "/v1/members/me/coupons", token, {"template_id": template_id, "request_id": request_id})


def redeem(api, code, amount_fen=20_000, request_id="rd-1", order_id="o-1", **sign):
    return api.till("POST", "/v1/coupons/redeem", {"code": code, "order_id": order_id,
                                                   "order_amount_fen": amount_fen, "request_id": request_id}, **sign)


def run(api, job, as_of):
    answer = api.staff("POST", f"/v1/admin/jobs/{job}/runs", {"as_of": as_of.isoformat()})
    assert answer.status_code == 200, answer.body
    return answer.json


def card(api, token):
    return api.member("GET", "/v1/members/me", token).json


def history(api, member_id):
    answer = api.staff("GET", f"/v1/admin/members/{member_id}/coupons")
    assert answer.status_code == 200, answer.body
    return [(row["event"], row["status"]) for row in reversed(answer.json["items"])]


# --- templates -------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "named"), [
    ({"kind": "percent_off", "off_fen": None, "percent": 100}, "percent"),
    ({"kind": "percent_off", "off_fen": None, "percent": 0}, "percent"),
    ({"threshold_fen": -100}, "threshold_fen"),
    ({"off_fen": -1}, "off_fen"),
    ({"threshold_fen": 1_000, "off_fen": 1_000}, "off_fen"),
    ({"valid_days": None, "valid_from": "2026-03-02", "valid_until": "2026-03-01"}, "valid_until"),
    ({"valid_days": None}, "valid_days"),
])
def test_a_bad_template_is_a_400_naming_the_field_and_writes_nothing(api, fields, named):
    answer = put_template(api, "bad", **fields)
    assert answer.status_code == 400, answer.body
    assert answer.json["error"]["code"] == "invalid_request"
    assert answer.json["error"]["message"].startswith(named), answer.json
    assert api.staff("GET", "/v1/admin/coupon-templates/bad").status_code == 404


def test_templates_are_versioned_and_a_stale_edit_is_refused(api):
    first = put_template(api, "t1", total=5)
    assert first.status_code == 200 and first.json["version"] == 1 and first.json["remaining"] == 5
    second = put_template(api, "t1", total=6, version=1)
    assert second.json["version"] == 2 and second.json["total"] == 6
    stale = put_template(api, "t1", total=7, version=1)
    assert stale.status_code == 409 and stale.json["error"]["code"] == "version_conflict"
    assert api.staff("GET", "/v1/admin/coupon-templates/t1").json["total"] == 6


def test_the_seeded_demo_template_matches_the_contract(api):
    t = api.staff("GET", "/v1/admin/coupon-templates/demo-10off").json
    assert (t["kind"], t["threshold_fen"], t["off_fen"], t["valid_days"], t["total"], t["per_member_limit"],
            t["claimable"], t["points_price"]) == ("amount_off", 10_000, 1_000, 30, 100, 1, True, 0)
    token, _ = member(api, "browser")
    assert [x["template_id"] for x in api.member("GET", "/v1/coupon-templates", token).json["items"]] == ["demo-10off"]


# --- claims ----------------------------------------------------------------------------------

def test_claiming_demo_10off_once_per_member_and_replays(api):
    token, member_id = member(api, "claimer")
    first = claim(api, token, "demo-10off", "c-1")
    assert first.status_code == 201, first.body
    coupon = first.json
    assert (coupon["status"], coupon["template_id"], coupon["off_fen"]) == ("unused", "demo-10off", 1_000)
    assert coupon["valid_from"] == today().isoformat()
    assert coupon["valid_until"] == (today() + dt.timedelta(days=29)).isoformat()
    assert claim(api, token, "demo-10off", "c-1").json == coupon  # a replay: the first answer
    other = api.member("POST", "/v1/members/me/coupons", token, {"template_id": "t-x", "request_id": "c-1"})
    assert other.status_code == 409 and other.json["error"]["code"] == "idempotency_conflict"
    again = claim(api, token, "demo-10off", "c-2")
    assert again.status_code == 409 and again.json["error"]["code"] == "limit_reached"
    assert card(api, token)["coupons_unused"] == 1
    wallet = api.member("GET", "/v1/members/me/coupons", token).json
    assert [c["code"] for c in wallet["items"]] == [coupon["code"]] and wallet["next_cursor"] is None
    assert api.staff("GET", "/v1/admin/coupon-templates/demo-10off").json["issued"] == 1
    assert history(api, member_id) == [("issued", "unused")]


def test_claim_refusals(api):
    token, _ = member(api, "refused")
    assert claim(api, token, "nope", "r1").json["error"]["code"] == "template_not_found"
    put_template(api, "staff-only", claimable=False)
    assert claim(api, token, "staff-only", "r2").json["error"]["code"] == "not_claimable"
    put_template(api, "one-left", total=1)
    assert claim(api, token, "one-left", "r3").status_code == 201
    other, _ = member(api, "late")
    late = claim(api, other, "one-left", "r4")
    assert late.status_code == 409 and late.json["error"]["code"] == "out_of_stock"
    assert card(api, other)["coupons_unused"] == 0


def test_a_points_price_is_paid_in_the_same_transaction(api):
    token, member_id = member(api, "buyer")
    put_template(api, "for-points", points_price=60)
    poor = claim(api, token, "for-points", "p1")
    assert poor.status_code == 409 and poor.json["error"]["code"] == "insufficient_points"
    assert card(api, token)["coupons_unused"] == 0
    api.till("POST", "/v1/orders", {"order_id": "o-buyer", "member_id": member_id, "amount_fen": 10_000,
                                    "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    assert claim(api, token, "for-points", "p2").status_code == 201
    assert claim(api, token, "for-points", "p2").status_code == 201  # replay: paid once
    after = card(api, token)
    assert (after["points"]["available"], after["coupons_unused"]) == (40, 1)
    rows = api.member("GET", "/v1/members/me/points/history", token).json["items"]
    assert [(r["type"], r["points"]) for r in rows] == [("redeem", -60), ("earn", 100)]
    assert api.staff("POST", "/v1/admin/jobs/reconcile/runs", {}).json["clean"]


# --- 核销 and voids --------------------------------------------------------------------------

def test_redeem_at_the_till(api):
    token, member_id = member(api, "shopper")
    code = claim(api, token, "demo-10off", "c-1").json["code"]
    low = redeem(api, code, amount_fen=9_999)
    assert low.status_code == 409 and low.json["error"]["code"] == "threshold_not_met"
    used = redeem(api, code.lower()[:6] + "-" + code[6:], amount_fen=10_000)  # as typed at the till
    assert used.status_code == 201, used.body
    assert (used.json["discount_fen"], used.json["status"]) == (1_000, "used")
    assert redeem(api, code, amount_fen=10_000).json == used.json  # the same request again
    conflict = redeem(api, code, amount_fen=10_000, request_id="rd-other", order_id="o-2")
    assert conflict.status_code == 409 and conflict.json["error"]["code"] == "coupon_used"
    assert used.json["used_at"][:10] in conflict.json["error"]["message"]
    changed = redeem(api, code, amount_fen=12_000)
    assert changed.status_code == 409 and changed.json["error"]["code"] == "idempotency_conflict"
    assert card(api, token)["coupons_unused"] == 0
    assert [c["code"] for c in api.member("GET", "/v1/members/me/coupons?status=used", token).json["items"]] == [code]
    assert history(api, member_id) == [("issued", "unused"), ("used", "used")]


def test_unknown_and_foreign_codes_are_not_found(api):
    token, _ = member(api, "foreign")
    code = claim(api, token, "demo-10off", "c-1").json["code"]
    assert redeem(api, "ABCDEFGHJKMN").json["error"]["code"] == "coupon_not_found"
    assert redeem(api, "O0O0").json["error"]["code"] == "coupon_not_found"
    seeded.add_other_program()
    foreign = redeem(api, code, key_id=seeded.OTHER_TILL_KEY_ID, secret=seeded.OTHER_TILL_SECRET)
    assert foreign.status_code == 404 and foreign.json["error"]["code"] == "coupon_not_found"
    assert card(api, token)["coupons_unused"] == 1


def test_percent_off_with_a_cap_and_stores(api):
    token, _ = member(api, "percent")
    put_template(api, "eighty", kind="percent_off", off_fen=None, percent=80, max_off_fen=500)
    put_template(api, "elsewhere", store_ids=["store-9"])
    capped = redeem(api, claim(api, token, "eighty", "a").json["code"], amount_fen=10_000, request_id="r1")
    assert capped.json["discount_fen"] == 500
    small = redeem(api, claim(api, token, "eighty", "b").json["code"], amount_fen=1_000, request_id="r2")
    assert small.json["discount_fen"] == 200
    away = redeem(api, claim(api, token, "elsewhere", "c").json["code"], request_id="r3")  # dev-pos: demo-store-1
    assert away.status_code == 409 and away.json["error"]["code"] == "store_not_allowed"


def test_void_gives_the_coupon_back_or_expires_it(api, monkeypatch):
    token, member_id = member(api, "voider")
    code = claim(api, token, "demo-10off", "c-1").json["code"]
    redeem(api, code, request_id="u1", order_id="o-9")
    wrong = api.till("POST", "/v1/coupons/void", {"code": code, "order_id": "o-8", "request_id": "v0"})
    assert wrong.status_code == 409 and wrong.json["error"]["code"] == "coupon_not_used"
    voided = api.till("POST", "/v1/coupons/void", {"code": code, "order_id": "o-9", "request_id": "v1"})
    assert voided.status_code == 200 and voided.json["status"] == "unused"
    assert api.till("POST", "/v1/coupons/void", {"code": code, "order_id": "o-9", "request_id": "v1"}).json == voided.json
    assert card(api, token)["coupons_unused"] == 1
    redeem(api, code, request_id="u2", order_id="o-10")
    valid_until = dt.date.fromisoformat(voided.json["valid_until"])
    later = dt.datetime.combine(valid_until + dt.timedelta(days=2), dt.time(4), ZONE)
    monkeypatch.setattr(clock, "now", lambda: later)
    late = api.till("POST", "/v1/coupons/void", {"code": code, "order_id": "o-10", "request_id": "v2"})
    assert late.status_code == 200 and late.json["status"] == "expired"
    assert card(api, token)["coupons_unused"] == 0
    assert history(api, member_id) == [("issued", "unused"), ("used", "used"), ("voided", "unused"),
                                       ("used", "used"), ("voided", "expired")]


# --- expiry ----------------------------------------------------------------------------------

def test_a_coupon_past_its_window_is_refused_before_the_job_and_expired_once(api, monkeypatch):
    token, member_id = member(api, "expiry")
    put_template(api, "one-day", valid_days=1)
    yesterday = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    monkeypatch.setattr(clock, "now", lambda: yesterday)
    coupon = claim(api, token, "one-day", "c-1").json
    monkeypatch.undo()
    valid_until = dt.date.fromisoformat(coupon["valid_until"])
    assert valid_until == today() - dt.timedelta(days=1)  # valid until yesterday; no job has run
    assert card(api, token)["coupons_unused"] == 1
    refused = redeem(api, coupon["code"])
    assert refused.status_code == 409 and refused.json["error"]["code"] == "coupon_expired"
    assert api.member("GET", "/v1/members/me/coupons", token).json["items"] == []
    listed = api.member("GET", "/v1/members/me/coupons?status=expired", token).json["items"]
    assert [(c["code"], c["status"]) for c in listed] == [(coupon["code"], "expired")]
    first = run(api, "expire-coupons", valid_until + dt.timedelta(days=1))
    assert first["coupons_expired"] == 1
    assert run(api, "expire-coupons", valid_until + dt.timedelta(days=1))["replayed"] is True
    assert run(api, "expire-coupons", valid_until + dt.timedelta(days=2))["coupons_expired"] == 0
    assert card(api, token)["coupons_unused"] == 0
    assert history(api, member_id) == [("issued", "unused"), ("expired", "expired")]
    assert [c["code"] for c in api.member("GET", "/v1/members/me/coupons?status=expired", token).json["items"]] == [
        coupon["code"]]


def test_wallet_is_soonest_expiring_first_and_paged(api):
    token, _ = member(api, "pager")
    for days in (20, 5, 12):
        put_template(api, f"d{days}", valid_days=days)
        claim(api, token, f"d{days}", f"c{days}")
    first = api.member("GET", "/v1/members/me/coupons?limit=2", token).json
    assert [c["template_id"] for c in first["items"]] == ["d5", "d12"] and first["next_cursor"]
    rest = api.member("GET", f"/v1/members/me/coupons?limit=2&cursor={first['next_cursor']}", token).json
    assert [c["template_id"] for c in rest["items"]] == ["d20"]


def test_reminders_three_days_before_through_tmpl_coupon(api):
    from chalicelib.store import keys
    from chalicelib.store.models import NotificationItem

    token, member_id = member(api, "reminded")
    put_template(api, "soon", valid_days=4)
    claim(api, token, "soon", "c-1")
    summary = run(api, "coupon-reminders", today())
    assert (summary["coupon_reminders"], summary["coupons_reminded"]) == (1, 1)
    jobs = list(NotificationItem.query(keys.member_pk("demo", member_id), NotificationItem.sk.startswith("NOTIFY#")))
    assert [(n.template_id, n.status) for n in jobs] == [("tmpl-coupon", "queued")]
    assert run(api, "coupon-reminders", today() + dt.timedelta(days=1))["coupon_reminders"] == 0


# --- issued rules, grants, gifts -------------------------------------------------------------

def test_a_granted_coupon_keeps_the_rules_it_was_issued_with(api):
    token, member_id = member(api, "kept")
    put_template(api, "editable", off_fen=500, claimable=False)
    granted = api.staff("POST", "/v1/admin/coupon-templates/editable/grants",
                        {"member_ids": [member_id], "request_id": "g1"})
    assert granted.status_code == 200 and granted.json["granted"] == 1
    put_template(api, "editable", off_fen=3_000, threshold_fen=50_000, claimable=False)
    code = api.member("GET", "/v1/members/me/coupons", token).json["items"][0]["code"]
    used = redeem(api, code, amount_fen=2_000)
    assert used.status_code == 201 and used.json["discount_fen"] == 500


def test_bulk_grants_are_idempotent_and_list_refusals(api):
    _, alice = member(api, "g-alice")
    _, bob = member(api, "g-bob")
    put_template(api, "gift-2", total=2, per_member_limit=1, claimable=False)
    claim_first = api.staff("POST", "/v1/admin/coupon-templates/gift-2/grants",
                            {"member_ids": [alice], "request_id": "g0"})
    assert claim_first.json["granted"] == 1
    body = {"member_ids": [alice, "m-nobody", bob, bob], "request_id": "g1"}
    first = api.staff("POST", "/v1/admin/coupon-templates/gift-2/grants", body)
    assert first.status_code == 200, first.body
    assert first.json["granted"] == 1
    assert first.json["refused"] == [{"member_id": alice, "code": "limit_reached"},
                                     {"member_id": "m-nobody", "code": "member_not_found"}]
    assert api.staff("POST", "/v1/admin/coupon-templates/gift-2/grants", body).json == first.json
    assert api.staff("GET", "/v1/admin/coupon-templates/gift-2").json["issued"] == 2
    more = api.staff("POST", "/v1/admin/coupon-templates/gift-2/grants", {"member_ids": [bob], "request_id": "g2"})
    assert more.json["refused"] == [{"member_id": bob, "code": "out_of_stock"}]
    missing = api.staff("POST", "/v1/admin/coupon-templates/nope/grants", {"member_ids": [bob], "request_id": "g3"})
    assert missing.status_code == 404 and missing.json["error"]["code"] == "template_not_found"


def test_automatic_gifts_once_per_cause_even_when_redelivered(api):
    from app import on_table_change
    from tests.support.stream import lambda_event

    put_template(api, "welcome", claimable=False)
    put_template(api, "silver-gift", claimable=False)
    put_template(api, "cup-coupon", claimable=False)
    rules = api.staff("GET", "/v1/admin/program").json
    rules["coupon_gifts"] = {"on_enrol": ["welcome"], "on_tier": {"silver": ["silver-gift"]},
                             "on_redemption": {"demo-cup": ["cup-coupon"]}}
    put = api.staff("PUT", "/v1/admin/program", {k: v for k, v in rules.items() if k not in ("program_id", "appid")})
    assert put.status_code == 200, put.body
    feeder = StreamFeeder()
    feeder.read()  # skip what came before
    token, member_id = member(api, "gifted")
    api.till("POST", "/v1/orders", {"order_id": "o-gift", "member_id": member_id, "amount_fen": 120_000,
                                    "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    api.member("POST", "/v1/members/me/redemptions", token, {"reward_id": "demo-cup", "quantity": 1, "request_id": "rq"})
    feeder.pump()
    templates = sorted(c["template_id"] for c in api.member("GET", "/v1/members/me/coupons", token).json["items"])
    assert templates == ["cup-coupon", "silver-gift", "welcome"]
    on_table_change(lambda_event(feeder.delivered), None)  # every record delivered again
    feeder.pump()
    assert card(api, token)["coupons_unused"] == 3
    assert len(api.member("GET", "/v1/members/me/coupons", token).json["items"]) == 3


def test_birthday_coupons_once_a_year(api):
    put_template(api, "bday", claimable=False)
    rules = api.staff("GET", "/v1/admin/program").json
    rules["coupon_gifts"] = {"on_birthday": ["bday"]}
    api.staff("PUT", "/v1/admin/program", {k: v for k, v in rules.items() if k not in ("program_id", "appid")})
    token = api.enrolled("birthday", birthday="1990-06-15")
    as_of = dt.date(2031, 6, 15)
    assert run(api, "birthday-coupons", as_of)["coupons_gifted"] == 1
    assert run(api, "birthday-coupons", as_of)["replayed"] is True
    from chalicelib.jobs import run_job
    from chalicelib.settings import get_settings
    from chalicelib import wiring
    from chalicelib.store import keys
    from chalicelib.store.models import JobRunItem

    JobRunItem(*keys.job_run("demo", "birthday-coupons", as_of.isoformat())).delete()  # a rerun from scratch
    assert run_job(get_settings(), wiring.daily_jobs(), "demo", "birthday-coupons", as_of)["coupons_gifted"] == 0
    assert card(api, token)["coupons_unused"] == 1


def test_a_grant_retried_after_a_crash_counts_the_coupon_it_already_issued(api):
    """Regression (found by tests/integration/test_chaos_money.py): the last coupon of a template
    granted, then the process dies after that transaction. The retry read the template, found no
    stock left (that member's own coupon took it) and answered the member refused `out_of_stock`;
    the coupon was theirs all along."""
    import random

    from chalicelib.store import tx
    from tests.support.faults import DynamoFaults, Rates

    assert put_template(api, "last-one", total=1).status_code == 200
    token, member_id = member(api, "granted-once")
    path, body = "/v1/admin/coupon-templates/last-one/grants", {"member_ids": [member_id], "request_id": "g-1"}
    with DynamoFaults(tx.connection().client, random.Random(0), Rates()) as faults:
        faults.force("crash")
        with faults.during("grant") as call:
            crashed = api.staff("POST", path, body)
    assert crashed.status_code == 500 and call.crashed
    again = api.staff("POST", path, body)
    assert again.json == {"template_id": "last-one", "request_id": "g-1", "granted": 1, "refused": []}
    assert api.staff("POST", path, body).json == again.json
    assert [c["template_id"] for c in api.member("GET", "/v1/members/me/coupons", token).json["items"]] == ["last-one"]


def test_a_grant_answers_out_of_stock_before_limit_reached_and_survives_a_conflict(api):
    """Regressions (found by tests/integration/test_chaos_money.py):
    - a member at their limit, granted after another member took the last coupon in the same
      grant, was refused `limit_reached` (the stock read was stale), where a claim, or the same
      grant in another order, says `out_of_stock`: the answer must not depend on the order;
    - a `TransactionConflict` on the grant's answer record was a 500."""
    import random

    from chalicelib.store import tx
    from tests.support.faults import DynamoFaults, Rates

    assert put_template(api, "two", total=2, per_member_limit=1).status_code == 200
    token_b, b = member(api, "at-limit")
    _, a = member(api, "has-room")
    assert claim(api, token_b, "two", "c-1").status_code == 201
    granted = api.staff("POST", "/v1/admin/coupon-templates/two/grants", {"member_ids": [a, b], "request_id": "g-1"})
    assert granted.json["refused"] == [{"member_id": b, "code": "out_of_stock"}]
    assert claim(api, token_b, "two", "c-2").json["error"]["code"] == "out_of_stock"
    assert put_template(api, "none-left", total=0).status_code == 200
    with DynamoFaults(tx.connection().client, random.Random(0), Rates()) as faults:
        faults.force("conflict")  # the one transaction: the answer's record (nobody can be issued one)
        with faults.during("grant") as call:
            answer = api.staff("POST", "/v1/admin/coupon-templates/none-left/grants",
                               {"member_ids": [a], "request_id": "g-2"})
    assert call.injected["conflict"] == 1
    assert answer.status_code == 200, answer.body
    assert answer.json["refused"] == [{"member_id": a, "code": "out_of_stock"}]


def test_a_template_edit_under_a_transaction_conflict_is_a_503_not_a_500(api):
    """Found while testing the grant's conflict: any route whose transaction DynamoDB cancels for
    contention outside a retry loop (here a template edit) answered 500 internal_error; nothing
    was written, so it is 503 retry_later, and the edit goes through when tried again."""
    import random

    from chalicelib.store import tx
    from tests.support.faults import DynamoFaults, Rates

    with DynamoFaults(tx.connection().client, random.Random(0), Rates()) as faults:
        faults.force("conflict")
        with faults.during("template") as call:
            answer = put_template(api, "busy")
    assert call.injected["conflict"] == 1
    assert (answer.status_code, answer.json["error"]["code"]) == (503, "retry_later")
    assert api.staff("GET", "/v1/admin/coupon-templates/busy").status_code == 404
    assert put_template(api, "busy").json["version"] == 1
