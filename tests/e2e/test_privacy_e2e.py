"""Members' rights over real HTTP on the local stack (issue 17): the export holds every item the
table has of the person; deletion is refused while stored value is left, then leaves no personal
data anywhere in the table while orders, refunds and money records stay and add up; old tokens
answer 401 and the same WeChat user comes back as a new, unenrolled person; withdrawn consent
means no message."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import requests

from chalicelib.domain import privacy
from tests.e2e.calls import Http

OPENID, PHONE, NICKNAME, BIRTHDAY = "wx-leaving-person", "13700001111", "要走的人", "1991-02-03"


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _standin(stack, method, path, body=None):
    answer = requests.request(method, f"{stack.wechat}{path}", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _scan(stack):
    client = stack.dynamodb()
    items, start = [], None
    while True:
        page = client.scan(TableName=stack.table_name, **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _s(item, name):
    value = item.get(name, {})
    return value.get("S") if isinstance(value, dict) else None


def _n(item, name):
    return int(item[name]["N"])


def _of_member(items, member_id):
    """The member's items as a scan of the whole table sees them: theirs by attribute or partition,
    and the order partitions of their orders."""
    mine = f"P#demo#M#{member_id}"
    orders = {_s(i, "pk") for i in items if _s(i, "kind") == "order" and _s(i, "member_id") == member_id}
    return [i for i in items if _s(i, "member_id") == member_id or _s(i, "pk").startswith(mine)
            or _s(i, "openid") == OPENID or _s(i, "pk") in orders]


def _order(http, member_id, order_id, amount_fen):
    return http.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
                                            "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})


def test_export_then_deletion_keeps_money_records_and_nothing_personal(http, stack):
    token, member_id = http.enrolled(OPENID, nickname=NICKNAME, birthday=BIRTHDAY)
    assert http.member("POST", "/v1/members/me/phone", token, {"phone_code": f"phone-{PHONE}"}).status_code == 200
    assert _order(http, member_id, "leave-o1", 60_000).status_code == 201
    assert http.till("POST", "/v1/orders/leave-o1/refunds", {"refund_id": "leave-r1", "amount_fen": 20_000}).status_code == 201
    assert http.till("POST", "/v1/points/holds", {"hold_id": "leave-h1", "member_id": member_id, "order_id": "leave-s1",
                                                  "points": 50, "order_amount_fen": 10_000}).status_code == 201
    assert http.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points"]}).status_code == 200
    top_up = http.member("POST", "/v1/members/me/top-ups", token, {"plan_id": "sv-100", "request_id": "leave-t1"})
    assert top_up.status_code == 201
    top_up_id = top_up.json()["top_up_id"]
    _standin(stack, "POST", "/_pay/confirm", {"out_trade_no": top_up_id})
    assert http.till("POST", "/v1/stored-value/payments", {"payment_id": "leave-p1", "member_id": member_id,
                                                           "order_id": "leave-s2", "amount_fen": 3_000}).status_code == 201
    trial = http.member("POST", "/v1/members/me/membership", token, {"plan_id": "svip-trial", "request_id": "leave-m1"})
    assert trial.status_code == 201, trial.text
    draw = http.member("POST", "/v1/members/me/lottery-draws", token, {"lottery_id": "demo-wheel", "request_id": "leave-d1"})
    assert draw.status_code == 201, draw.text
    stack.settle()

    # The export holds every item the table has of the person (and the phone, unmasked, here only).
    # Stream reactions write on after the member's own requests (gifts, counters, their reactions),
    # so compare once the table holds still: the same scan before and after the export.
    for _ in range(5):
        stack.settle()
        before = {(_s(i, "pk"), _s(i, "sk")) for i in _of_member(_scan(stack), member_id)
                  if privacy.KINDS[_s(i, "kind")].exported}
        export = http.member("GET", "/v1/members/me/export", token)
        assert export.status_code == 200, export.text
        document = export.json()
        exported = {(row["pk"], row["sk"]) for rows in document["items"].values() for row in rows}
        expected = {(_s(i, "pk"), _s(i, "sk")) for i in _of_member(_scan(stack), member_id)
                    if privacy.KINDS[_s(i, "kind")].exported}
        if before == expected:
            break
    assert document["profile"]["phone"] == PHONE and document["profile"]["nickname"] == NICKNAME
    assert exported == expected
    assert {"order", "ledger", "pay_order", "sv_entry", "sv_payment", "hold", "identity", "membership", "trial_claim",
            "lottery_draw"} <= set(document["items"])

    # Stored value left: refused, nothing changed.
    refused = http.member("DELETE", "/v1/members/me", token)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "stored_value_not_settled"
    assert http.member("GET", "/v1/members/me", token).status_code == 200
    refund = http.staff("POST", f"/v1/admin/members/{member_id}/top-ups/{top_up_id}/refunds", {"request_id": "leave-rf"})
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded", refund.text

    erased = http.member("DELETE", "/v1/members/me", token)
    assert erased.status_code == 200, erased.text
    assert erased.json()["status"] == "done" and erased.json()["summary"]["bonus_forfeited_fen"] == 300
    stack.settle()

    # Nothing in the whole table holds the person's openid, unionid, phone, nickname or birthday.
    everything = _scan(stack)
    for value in (OPENID, f"u-{OPENID}", PHONE, NICKNAME, BIRTHDAY):
        holders = [(_s(i, "kind"), _s(i, "pk"), _s(i, "sk")) for i in everything
                   if value in json.dumps(i, ensure_ascii=False)]
        assert holders == [], (value, holders)
    # ... while the orders, refunds and money records are still there and add up.
    kept = _of_member(everything, member_id)
    kinds = [_s(i, "kind") for i in kept]
    assert kinds.count("order") == 1 and kinds.count("order_totals") == 1 and kinds.count("pay_order") == 1
    assert kinds.count("pay_refund") == 1 and kinds.count("sv_payment") == 1
    assert kinds.count("membership") == 1 and kinds.count("lottery_draw") == 1 and kinds.count("trial_phone") == 1
    [totals] = [i for i in kept if _s(i, "kind") == "order_totals"]
    refunds = [i for i in kept if _s(i, "kind") == "ledger" and _s(i, "sk").startswith("REFUND#")]
    assert _n(totals, "refunded_fen") == 20_000 and len(refunds) == 1
    assert sum(_n(i, "points") for i in kept if _s(i, "kind") in ("ledger", "order")) == 0  # forfeited, with its row
    assert sum(_n(i, "amount_fen") for i in kept if _s(i, "kind") == "sv_entry") == 0  # stored value: zero, by its rows
    assert not [k for k in kinds if privacy.KINDS[k].deleted]

    # Old token: 401. The same WeChat user again: a new, unenrolled person.
    assert http.member("GET", "/v1/members/me", token).status_code == 401
    again = http.login(OPENID)
    assert again["enrolled"] is False and again["member_id"] is None


def test_withdrawn_consent_means_no_message(http, stack):
    keeper, keeper_id = http.enrolled("wx-consent-keeper")
    leaver, leaver_id = http.enrolled("wx-consent-leaver")
    for token in (keeper, leaver):
        assert http.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points"]}).status_code == 200
    withdrawn = http.member("DELETE", "/v1/members/me/subscriptions/tmpl-points", leaver)
    assert withdrawn.status_code == 200 and withdrawn.json()["credits"] == {}
    assert _order(http, keeper_id, "consent-k1", 10_000).status_code == 201
    assert _order(http, leaver_id, "consent-l1", 10_000).status_code == 201
    deadline = time.monotonic() + 15
    while not [m for m in stack.wechat_sent() if m["touser"] == "wx-consent-keeper"]:
        assert time.monotonic() < deadline, "the consenting member's message never went out"
        time.sleep(0.2)
    stack.settle(rounds=2)  # the leaver's order -> its notification job -> the sender (dropped)
    assert [m for m in stack.wechat_sent() if m["touser"] == "wx-consent-leaver"] == []
