"""Members' rights through the app on moto: the export is complete, erasure leaves no personal
data but keeps the money records, consent withdrawal stops messages, free text is clean."""

from __future__ import annotations

import datetime as dt
import json

from tests.support.stream import StreamFeeder, lambda_event

PHONE = "13912345678"


def pump(feeder):
    from app import on_table_change, send_notifications

    for _ in range(10):
        records = feeder.read()
        if not records:
            break
        feeder.delivered += records
        on_table_change(lambda_event(records), None)
        send_notifications(lambda_event(records), None)


def _scan():
    from chalicelib.store.models import TableItem

    return list(TableItem.scan())


def _text(item) -> str:
    from chalicelib.store import privacy

    return json.dumps(privacy.plain(item), ensure_ascii=False, default=str)


def _order(api, member_id, order_id, amount_fen):
    return api.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
                                           "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})


def _busy_member(api, openid="privy", tag="a"):
    """A member with a profile, phone, points, an order and a refund of it, a hold, consents."""
    token = api.enrolled(openid, nickname="小隐私", birthday="1990-04-01")
    assert api.member("POST", "/v1/members/me/phone", token, {"phone_code": f"phone-{PHONE}"}).status_code == 200
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    assert _order(api, member_id, f"{tag}-o1", 50_000).status_code == 201
    refund = api.till("POST", f"/v1/orders/{tag}-o1/refunds", {"refund_id": "r1", "amount_fen": 10_000})
    assert refund.status_code == 201, refund.body
    assert api.member("POST", "/v1/members/me/checkin", token).status_code in (200, 201)
    assert api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points"]}).status_code == 200
    hold = api.till("POST", "/v1/points/holds", {"hold_id": f"{tag}-h1", "member_id": member_id, "order_id": "sale-9",
                                          "points": 10, "order_amount_fen": 10_000})
    assert hold.status_code == 201, hold.body
    return token, member_id


def kind_of(item):
    from chalicelib.store import privacy

    return privacy.kind_of(item)


def _members_items(member_id, openid):
    """What a scan of the whole table says is the member's."""
    from chalicelib.store import keys

    from chalicelib.store.models import OrderItem

    pk = keys.member_pk("demo", member_id)
    everything = _scan()
    orders = {i.pk for i in everything if isinstance(i, OrderItem) and i.member_id == member_id}
    return [item for item in everything if getattr(item, "member_id", None) == member_id or item.pk.startswith(pk)
            or getattr(item, "openid", None) == openid or item.pk in orders]


def test_free_text_with_control_or_bidi_characters_is_refused_naming_the_field(api):
    token = api.login("sneaky")["token"]
    for bad in ("a\x00b", "evil\u202etxt.exe", "\u2066x\u2069"):
        answer = api.member("POST", "/v1/members", token, {"nickname": bad})
        assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_request"
        assert "nickname" in answer.json["error"]["message"]
    token = api.enrolled("sneaky", nickname="ok")
    answer = api.member("PATCH", "/v1/members/me", token, {"nickname": "\u202dx"})
    assert answer.status_code == 400 and "nickname" in answer.json["error"]["message"]
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    adjust = api.staff("POST", f"/v1/admin/members/{member_id}/adjustments",
                       {"request_id": "adj-1", "points": 5, "reason": "bad\x1breason"})
    assert adjust.status_code == 400 and "reason" in adjust.json["error"]["message"]


def test_the_export_holds_every_item_the_table_has_of_the_member(api):
    from chalicelib.domain import privacy

    token, member_id = _busy_member(api)
    answer = api.member("GET", "/v1/members/me/export", token)
    assert answer.status_code == 200, answer.body
    document = answer.json
    assert document["profile"]["phone"] == PHONE and document["profile"]["nickname"] == "小隐私"
    assert document["profile"]["openid"] == "privy" and document["profile"]["birthday"] == "1990-04-01"
    exported = {(row["pk"], row["sk"]) for rows in document["items"].values() for row in rows}
    expected = {(i.pk, i.sk) for i in _members_items(member_id, "privy") if privacy.KINDS[kind_of(i)].exported}
    assert exported == expected
    assert {"order", "ledger", "lot", "hold", "subscription", "profile", "wechat_user", "identity"} <= set(document["items"])
    body = answer.body.decode()
    assert "session_key" not in body and "phone_enc" not in body and "request_hash" not in body
    from chalicelib.store.models import PrivacyLogItem

    [logged] = [i for i in _scan() if isinstance(i, PrivacyLogItem)]
    assert (logged.action, logged.by, logged.outcome, logged.member_id) == ("export", "member", "completed", member_id)
    assert PHONE not in _text(logged) and "小隐私" not in _text(logged)


def test_erasure_leaves_no_personal_data_keeps_the_money_records_and_ends_the_tokens(api):
    from chalicelib.store.models import LedgerItem, OrderItem, OrderTotalsItem

    token, member_id = _busy_member(api)
    answer = api.member("DELETE", "/v1/members/me", token)
    assert answer.status_code == 200, answer.body
    assert answer.json["status"] == "done" and answer.json["requested_by"] == "member"
    assert answer.json["summary"]["holds_released"] == 1 and answer.json["summary"]["points_forfeited"] > 0

    everything = _scan()
    for secret in ("privy", "u-privy", PHONE, "小隐私", "1990-04-01"):
        holders = [(kind_of(i), i.pk, i.sk) for i in everything if secret in _text(i)]
        assert holders == [], (secret, holders)
    orders = [i for i in everything if isinstance(i, OrderItem) and i.member_id == member_id]
    refunds = [i for i in everything if type(i) is LedgerItem and i.sk.startswith("REFUND#")]
    totals = [i for i in everything if isinstance(i, OrderTotalsItem)]
    assert len(orders) == 1 and len(refunds) == 1 and len(totals) == 1
    assert totals[0].refund_count == 1 and totals[0].refunded_fen == 10_000
    assert -refunds[0].points == totals[0].points_reversed
    ledger = [i for i in everything if isinstance(i, LedgerItem) and i.member_id == member_id]
    assert sum(int(i.points) for i in ledger) == 0  # forfeited: the kept ledger still adds up

    gone = api.member("GET", "/v1/members/me", token)
    assert gone.status_code == 401
    again = api.login("privy")
    assert again["enrolled"] is False and again["member_id"] is None
    assert api.member("GET", "/v1/members/me", again["token"]).json["error"]["code"] == "not_enrolled"
    # Staff asking later for the same member: the erasure's record, nothing more to do.
    staff = api.staff("DELETE", f"/v1/admin/members/{member_id}")
    assert staff.status_code == 200 and staff.json["status"] == "done" and staff.json["requested_by"] == "member"
    log = api.staff("GET", "/v1/admin/privacy-log").json["items"]
    assert [(e["action"], e["member_id"], e["by"], e["outcome"]) for e in log] == [
        ("erasure", member_id, "member", "completed")]
    assert "小隐私" not in json.dumps(log, ensure_ascii=False) and PHONE not in json.dumps(log)


def test_a_member_token_is_refused_once_erased_by_staff(api):
    token = api.enrolled("stafferased", nickname="n")
    again = api.login("stafferased")  # a token carrying the member id
    member_id = again["member_id"]
    answer = api.staff("DELETE", f"/v1/admin/members/{member_id}")
    assert answer.status_code == 200 and answer.json["requested_by"].startswith("staff:")
    assert api.member("GET", "/v1/members/me", again["token"]).status_code == 401
    assert api.member("GET", "/v1/members/me", token).status_code == 401
    assert api.staff("DELETE", "/v1/admin/members/nobody").status_code == 404


def test_erasure_with_stored_value_left_is_409_and_changes_nothing(api, wechat):
    token = api.enrolled("saver2", nickname="存钱")
    top_up = api.member("POST", "/v1/members/me/top-ups", token, {"plan_id": "sv-100", "request_id": "t1"})
    assert top_up.status_code == 201
    headers, body, _ = wechat.pay.payment_notification(top_up.json["top_up_id"], "ok")
    assert api.request("POST", "/v1/payments/wechat/notify", headers=headers, raw=body).status_code == 200
    refused = api.member("DELETE", "/v1/members/me", token)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "stored_value_not_settled"
    [logged] = api.staff("GET", "/v1/admin/privacy-log").json["items"]
    assert (logged["action"], logged["outcome"]) == ("erasure", "refused:stored_value_not_settled")
    card = api.member("GET", "/v1/members/me", token)
    assert card.status_code == 200 and card.json["nickname"] == "存钱"


def test_a_pending_top_up_is_closed_and_left_bonus_forfeited(api, wechat):
    token = api.enrolled("pender")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    pending = api.member("POST", "/v1/members/me/top-ups", token, {"plan_id": "sv-100", "request_id": "t1"})
    assert pending.status_code == 201
    answer = api.member("DELETE", "/v1/members/me", token)
    assert answer.status_code == 200, answer.body
    assert answer.json["summary"]["pay_orders_settled"] == 1
    from chalicelib.store.models import PayOrderItem

    [order] = [i for i in _scan() if isinstance(i, PayOrderItem)]
    assert order.status == "closed" and order.openid == "" and order.member_id == member_id


def test_an_erasure_interrupted_half_way_finishes_when_asked_again(api, monkeypatch):
    from chalicelib.store import privacy as store

    token, member_id = _busy_member(api, "crashy", "b")
    real, calls = store.delete, []

    def crash_after_three(item):
        calls.append(item.pk)
        if len(calls) > 3:
            raise RuntimeError("the Lambda died")
        real(item)

    monkeypatch.setattr(store, "delete", crash_after_three)
    assert api.member("DELETE", "/v1/members/me", token).status_code == 500
    monkeypatch.setattr(store, "delete", real)
    # Tokens are refused from the first erasing step; staff finish it.
    assert api.member("GET", "/v1/members/me", token).status_code in (401,)
    answer = api.staff("DELETE", f"/v1/admin/members/{member_id}")
    assert answer.status_code == 200 and answer.json["status"] == "done"
    for secret in ("crashy", PHONE, "小隐私"):
        assert [kind_of(i) for i in _scan() if secret in _text(i)] == []


def test_withdrawn_consent_means_no_message(api, standin):
    token = api.enrolled("quiet")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points", "tmpl-tier"]})
    answer = api.member("DELETE", "/v1/members/me/subscriptions/tmpl-points", token)
    assert answer.status_code == 200 and answer.json["credits"] == {"tmpl-tier": 1}
    feeder = StreamFeeder()
    pump(feeder)
    assert _order(api, member_id, "q-1", 12_300).status_code == 201
    pump(feeder)
    assert [m for m in standin.sent_messages() if m["touser"] == "quiet"] == []


def test_a_profile_change_reaching_webhooks_after_erasure_is_not_copied_out(api):
    from chalicelib.services import webhooks
    from chalicelib.settings import get_settings
    from chalicelib.store.models import WebhookEventItem

    hook = api.staff("PUT", "/v1/admin/webhooks/privacy-hook", {"url": "http://127.0.0.1:9/x",
                                                                "events": ["member.updated"]})
    assert hook.status_code == 200, hook.body
    tokens = {name: api.enrolled(name, nickname="before") for name in ("late-live", "late-gone")}
    ids = {name: api.member("GET", "/v1/members/me", token).json["member_id"] for name, token in tokens.items()}
    assert api.member("DELETE", "/v1/members/me", tokens["late-gone"]).status_code == 200

    def late_change(member_id):
        old = {"kind": "profile", "program_id": "demo", "member_id": member_id, "nickname": "before", "revision": 0}
        return webhooks.publish(get_settings(), "MODIFY", {**old, "nickname": "late secret", "revision": 1}, old)

    assert late_change(ids["late-live"]) == 1  # the control: a live member's change is an event
    assert late_change(ids["late-gone"]) == 0
    events = [i for i in _scan() if isinstance(i, WebhookEventItem)]
    assert [e.member_id for e in events] == [ids["late-live"]]
