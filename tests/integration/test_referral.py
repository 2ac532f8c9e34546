"""Referral rewards (issue 14) through the app and the stream: paid on the invitee's first paid
order, caps per inviter, no reward for a self-invite by phone, reversal on a full refund."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support.stream import StreamFeeder

UTC = dt.timezone.utc


@pytest.fixture
def feeder(api):
    feeder = StreamFeeder()
    feeder.read()
    return feeder


def enrolled(api, openid, **profile):
    token = api.enrolled(openid, **profile)
    return token, api.member("GET", "/v1/members/me", token).json


def available(api, token):
    return api.member("GET", "/v1/members/me", token).json["points"]["available"]


def order(api, member_id, order_id, amount_fen=100):
    answer = api.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
                                             "paid_at": dt.datetime.now(UTC).isoformat()})
    assert answer.status_code == 201, answer.body


def set_referral(api, **rules):
    current = api.staff("GET", "/v1/admin/program").json
    current["referral"] = {**current["referral"], **rules}
    answer = api.staff("PUT", "/v1/admin/program", {k: v for k, v in current.items() if k not in ("program_id", "appid")})
    assert answer.status_code == 200, answer.body


def test_first_paid_order_pays_both_once(api, feeder):
    inviter_token, inviter = enrolled(api, "inviter")
    invitee_token, invitee = enrolled(api, "invitee", invite_code=inviter["invite_code"])
    feeder.pump()
    assert available(api, inviter_token) == 0  # enrolment is not the demo's trigger
    order(api, invitee["member_id"], "o-1")  # 1 yuan: 1 point
    feeder.pump()
    order(api, invitee["member_id"], "o-2")
    feeder.pump()
    assert available(api, inviter_token) == 50
    assert available(api, invitee_token) == 20 + 2


def test_an_inviter_over_the_daily_cap_gets_nothing_more_that_day(api, feeder):
    set_referral(api, daily_cap=2)
    inviter_token, inviter = enrolled(api, "capper")
    invitees = [enrolled(api, f"capped-{n}", invite_code=inviter["invite_code"]) for n in range(3)]
    for n, (_, invitee) in enumerate(invitees):
        order(api, invitee["member_id"], f"oc-{n}")
    feeder.pump()
    assert available(api, inviter_token) == 100
    assert [available(api, token) for token, _ in invitees] == [21, 21, 21]  # invitees are paid all the same
    from chalicelib.store import keys
    from chalicelib.store.models import ReferralRewardItem, TableItem

    statuses = sorted(i.reward_status for i in TableItem.query(keys.member_pk("demo", inviter["member_id"]))
                      if isinstance(i, ReferralRewardItem))
    assert statuses == ["capped", "paid", "paid"]


def test_a_self_invite_by_the_same_phone_pays_nothing(api, feeder):
    inviter_token, inviter = enrolled(api, "self-a")
    assert api.member("POST", "/v1/members/me/phone", inviter_token, {"phone_code": "phone-13900002222"}).status_code == 200
    invitee_token, invitee = enrolled(api, "self-b", invite_code=inviter["invite_code"])
    tried = api.member("POST", "/v1/members/me/phone", invitee_token, {"phone_code": "phone-13900002222"})
    assert tried.status_code == 409 and tried.json["error"]["code"] == "phone_in_use"
    order(api, invitee["member_id"], "o-self")
    feeder.pump()
    assert available(api, inviter_token) == 0
    assert available(api, invitee_token) == 1  # the order's own point only


def test_a_full_refund_within_the_window_reverses_both(api, feeder):
    inviter_token, inviter = enrolled(api, "rev-a")
    invitee_token, invitee = enrolled(api, "rev-b", invite_code=inviter["invite_code"])
    order(api, invitee["member_id"], "o-rev", 1_000)
    feeder.pump()
    assert (available(api, inviter_token), available(api, invitee_token)) == (50, 30)
    refund = api.till("POST", "/v1/orders/o-rev/refunds", {"refund_id": "r1", "amount_fen": 500})
    assert refund.status_code == 201, refund.body
    feeder.pump()
    assert available(api, inviter_token) == 50  # a partial refund keeps the reward
    api.till("POST", "/v1/orders/o-rev/refunds", {"refund_id": "r2", "amount_fen": 500})
    feeder.pump()
    assert (available(api, inviter_token), available(api, invitee_token)) == (0, 0)
