"""Paid membership, the one trial, the lottery (issue 14) through the app (chalice.test.Client on
moto), WeChat Pay through its stand-in's signed notifications."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from chalicelib import clock

NOTIFY = "/v1/payments/wechat/notify"
UTC = dt.timezone.utc


@pytest.fixture
def pay(wechat):
    return wechat.pay


def enrolled(api, openid):
    token = api.enrolled(openid)
    return token, api.member("GET", "/v1/members/me", token).json["member_id"]


def card(api, token):
    return api.member("GET", "/v1/members/me", token).json


def buy(api, token, plan_id, request_id):
    return api.member("POST", "/v1/members/me/membership", token, {"plan_id": plan_id, "request_id": request_id})


def notify(api, pay, out_trade_no):
    headers, body, _ = pay.payment_notification(out_trade_no)
    return api.request("POST", NOTIFY, headers=headers, raw=body)


def move_clock(monkeypatch, when):
    monkeypatch.setattr(clock, "now", lambda: when)


def rules_put(api, **changes):
    rules = api.staff("GET", "/v1/admin/program").json
    rules.update(changes)
    answer = api.staff("PUT", "/v1/admin/program", {k: v for k, v in rules.items() if k not in ("program_id", "appid")})
    assert answer.status_code == 200, answer.body
    return answer.json


# --- membership -------------------------------------------------------------------------------

def test_plans_are_the_programs(api):
    token, _ = enrolled(api, "planner")
    assert api.member("GET", "/v1/membership/plans", token).json["items"] == [
        {"plan_id": "svip-month", "name": "SVIP 月卡", "days": 30, "price_fen": 1990, "trial": False},
        {"plan_id": "svip-trial", "name": "SVIP 7天体验", "days": 7, "price_fen": 0, "trial": True}]


def test_the_trial_once_per_person_and_its_card(api):
    token, member_id = enrolled(api, "trier")
    assert card(api, token)["membership"] is None
    first = buy(api, token, "svip-trial", "t1")
    assert first.status_code == 201, first.body
    until = dt.datetime.fromisoformat(first.json["membership"]["until"])
    assert dt.timedelta(days=7) - dt.timedelta(minutes=1) < until - dt.datetime.now(UTC) <= dt.timedelta(days=7)
    assert buy(api, token, "svip-trial", "t1").json == first.json  # the same request_id: the same answer
    second = buy(api, token, "svip-trial", "t2")
    assert second.status_code == 409 and second.json["error"]["code"] == "trial_used"
    shown = card(api, token)
    assert shown["membership"] == {"plan_id": "svip-trial", "until": first.json["membership"]["until"],
                                   "points_multiplier_pct": 200, "discount_pct": 90}
    assert shown["discount_pct"] == 90  # the better of the tier's (100) and the membership's
    unknown = buy(api, token, "nope", "t3")
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "plan_not_found"


def test_the_trial_is_refused_to_another_account_with_the_same_phone(api):
    from chalicelib.store import keys
    from chalicelib.store.models import ProfileItem

    token_a, _ = enrolled(api, "phone-a")
    assert api.member("POST", "/v1/members/me/phone", token_a, {"phone_code": "phone-13800001111"}).status_code == 200
    assert buy(api, token_a, "svip-trial", "t").status_code == 201
    # A second account of the same person: the phone is in the phone's trial claim.
    token_b, member_b = enrolled(api, "phone-b")
    phone_hash = ProfileItem.get(*keys.profile("demo", card(api, token_a)["member_id"])).phone_hash
    ProfileItem(*keys.profile("demo", member_b)).update(actions=[ProfileItem.phone_hash.set(phone_hash)])
    refused = buy(api, token_b, "svip-trial", "t")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "trial_used"
    assert card(api, token_b)["membership"] is None


def test_a_paid_membership_activates_once_however_often_notified(api, pay):
    token, member_id = enrolled(api, "payer")
    answer = buy(api, token, "svip-month", "m1")
    assert answer.status_code == 201, answer.body
    order_id = answer.json["order_id"]
    assert order_id.startswith("mb") and answer.json["pay_params"]["signType"] == "RSA"
    assert pay.orders[order_id]["amount"]["total"] == 1990
    assert card(api, token)["membership"] is None  # not before it is paid
    for _ in range(5):
        assert notify(api, pay, order_id).status_code == 200
    shown = card(api, token)["membership"]
    assert shown["plan_id"] == "svip-month"
    until = dt.datetime.fromisoformat(shown["until"])
    assert dt.timedelta(days=30) - dt.timedelta(minutes=1) < until - dt.datetime.now(UTC) <= dt.timedelta(days=30)
    from chalicelib.store import keys
    from chalicelib.store.models import AccountItem, MembershipItem, TableItem

    rows = [i for i in TableItem.query(keys.member_pk("demo", member_id)) if isinstance(i, MembershipItem)]
    assert [(r.source, r.source_id, r.price_fen) for r in rows] == [("order", order_id, 1990)]
    account = AccountItem.get(*keys.account("demo", member_id))
    assert (account.membership_until, account.membership_plan_id) == (shown["until"], "svip-month")


def test_renewals_stack_and_a_lapse_restarts_now(api, pay, monkeypatch):
    token, _ = enrolled(api, "renewer")
    start = dt.datetime(2026, 11, 1, 12, tzinfo=UTC)
    move_clock(monkeypatch, start)
    notify(api, pay, buy(api, token, "svip-month", "a").json["order_id"])
    first_end = dt.datetime.fromisoformat(card(api, token)["membership"]["until"])
    assert first_end == start + dt.timedelta(days=30)
    # Bought 10 days before the end: ends 30 days after the old end.
    move_clock(monkeypatch, first_end - dt.timedelta(days=10))
    notify(api, pay, buy(api, token, "svip-month", "b").json["order_id"])
    second_end = dt.datetime.fromisoformat(card(api, token)["membership"]["until"])
    assert second_end == first_end + dt.timedelta(days=30)
    # Bought after a lapse: 30 days from now.
    later = second_end + dt.timedelta(days=5)
    move_clock(monkeypatch, later)
    assert card(api, token)["membership"] is None
    notify(api, pay, buy(api, token, "svip-month", "c").json["order_id"])
    assert dt.datetime.fromisoformat(card(api, token)["membership"]["until"]) == later + dt.timedelta(days=30)


def test_membership_points_stack_with_the_tier(api, pay):
    token, member_id = enrolled(api, "earner")
    notify(api, pay, buy(api, token, "svip-month", "m").json["order_id"])
    now = dt.datetime.now(UTC).isoformat()
    answer = api.till("POST", "/v1/orders", {"order_id": "o-m", "member_id": member_id, "amount_fen": 10_000,
                                             "paid_at": now})
    assert answer.json["points_awarded"] == 200  # 100 yuan x (普通 100% + SVIP's extra 100%)


def test_reminder_three_days_before_the_end_and_monthly_packs(api, pay, monkeypatch):
    from chalicelib.store import keys
    from chalicelib.store.models import NotificationItem, TableItem
    from tests.support.stream import StreamFeeder

    feeder = StreamFeeder()
    feeder.read()
    token, member_id = enrolled(api, "reminded")
    start = dt.datetime(2026, 11, 1, 4, tzinfo=UTC)
    move_clock(monkeypatch, start)
    notify(api, pay, buy(api, token, "svip-month", "m").json["order_id"])
    feeder.pump()
    assert card(api, token)["coupons_unused"] == 1  # the first pack: demo-10off
    for day in ("2026-11-27", "2026-11-28"):
        assert api.staff("POST", "/v1/admin/jobs/membership-daily/runs", {"as_of": day}).status_code in (200, 201)
    found = [i for i in TableItem.query(keys.member_pk("demo", member_id)) if isinstance(i, NotificationItem)]
    assert [n.event for n in found] == ["membership_expiring"]


# --- lottery ----------------------------------------------------------------------------------

def points(api, token):
    return card(api, token)["points"]["available"]


def give(api, member_id, amount_fen, order_id):
    answer = api.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
                                             "paid_at": dt.datetime.now(UTC).isoformat()})
    assert answer.status_code == 201, answer.body


def draw(api, token, request_id, lottery_id="demo-wheel"):
    return api.member("POST", "/v1/members/me/lottery-draws", token, {"lottery_id": lottery_id,
                                                                      "request_id": request_id})


def test_a_draw_takes_points_once_and_the_limit_holds(api):
    token, member_id = enrolled(api, "drawer")
    give(api, member_id, 10_000, "o-d")  # 100 points
    before = points(api, token)
    first = draw(api, token, "d1")
    assert first.status_code == 201, first.body
    assert first.json["points_spent"] == 10 and first.json["draw_number"] == 1
    won = first.json["prize"]["points"] if first.json["prize"] and first.json["prize"]["kind"] == "points" else 0
    assert points(api, token) == before - 10 + won == first.json["points_balance"]
    assert draw(api, token, "d1").json == first.json
    for n in range(2, 6):
        assert draw(api, token, f"d{n}").status_code == 201
    refused = draw(api, token, "d6")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "draw_limit_reached"


def test_no_points_no_draw_and_unknown_lottery(api):
    token, _ = enrolled(api, "poor")
    refused = draw(api, token, "d")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "insufficient_points"
    assert draw(api, token, "d", "nope").status_code == 404


def _lottery(lottery_id, starts_at, ends_at, **extra):
    return {"lottery_id": lottery_id, "name": "test", "cost_points": 1, "daily_limit": 1000,
            "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
            "prizes": [{"prize_id": "big", "name": "big", "kind": "points", "points": 5, "weight": 1, "stock": 3,
                        "value_fen": 50},
                       {"prize_id": "none", "name": "谢谢参与", "kind": "nothing", "weight": 1}], **extra}


def test_a_prize_runs_out_leaves_the_table_and_the_seed_recomputes_every_draw(api, monkeypatch):
    from tools import verify_lottery

    now = dt.datetime.now(UTC)
    rules = api.staff("GET", "/v1/admin/program").json
    rules_put(api, lotteries=rules["lotteries"] + [_lottery("t-wheel", now - dt.timedelta(hours=1),
                                                            now + dt.timedelta(hours=1))])
    token, member_id = enrolled(api, "gambler")
    give(api, member_id, 10_000, "o-g")
    page = api.member("GET", "/v1/lotteries/t-wheel", token).json
    assert page["seed"] is None and len(page["seed_sha256"]) == 64 and page["total_weight"] == 2
    for n in range(40):
        assert draw(api, token, f"g{n}", "t-wheel").status_code == 201
    page = api.member("GET", "/v1/lotteries/t-wheel", token).json
    big = page["prizes"][0]
    assert (big["left"], big["available"], big["odds"]) == (0, False, None)
    assert page["total_weight"] == 1 and "big" in page["notice"] and page["prizes"][1]["odds"] == "1/1"
    assert draw(api, token, "closed-soon", "t-wheel").json["prize"] is None  # only "nothing" is left
    move_clock(monkeypatch, now + dt.timedelta(hours=2))
    closed = draw(api, token, "late", "t-wheel")
    assert closed.status_code == 409 and closed.json["error"]["code"] == "lottery_closed"
    page = api.member("GET", "/v1/lotteries/t-wheel", token).json
    seed = bytes.fromhex(page["seed"])
    assert hashlib.sha256(seed).hexdigest() == page["seed_sha256"]
    draws = api.staff("GET", "/v1/admin/lotteries/t-wheel/draws?limit=100").json["items"]
    assert len(draws) == 41 and sum(d["prize_id"] == "big" for d in draws) == 3
    assert verify_lottery.verify(page["seed"], page["seed_sha256"], draws) == []


def test_a_top_prize_over_fifty_thousand_yuan_is_refused(api):
    now = dt.datetime.now(UTC)
    rules = api.staff("GET", "/v1/admin/program").json
    body = {k: v for k, v in rules.items() if k not in ("program_id", "appid")}
    body["lotteries"] = [_lottery("rich", now, now + dt.timedelta(days=1))]
    body["lotteries"][0]["prizes"][0]["value_fen"] = 5_000_001
    refused = api.staff("PUT", "/v1/admin/program", body)
    assert refused.status_code == 400 and "50,000" in refused.json["error"]["message"]
