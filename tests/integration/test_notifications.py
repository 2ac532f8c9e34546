"""Subscribe messages: consent credits, jobs from table changes, sending once, failures."""

from __future__ import annotations

import concurrent.futures
import datetime as dt

from tests.support.stream import StreamFeeder, lambda_event


def pump(feeder):
    """Both stream functions over the new records, until quiet (as Lambda would run them)."""
    from app import on_table_change, send_notifications

    answers = []
    for _ in range(10):
        records = feeder.read()
        if not records:
            break
        feeder.delivered += records
        answers.append(on_table_change(lambda_event(records), None))
        answers.append(send_notifications(lambda_event(records), None))
    return answers


def order(api, member_id, order_id, amount_fen):
    return api.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
                                           "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})


def enrolled(api, openid):
    token = api.enrolled(openid)
    return token, api.member("GET", "/v1/members/me", token).json["member_id"]


def test_subscriptions_add_credits(api):
    token, _ = enrolled(api, "sub")
    first = api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-tier", "tmpl-points"]})
    assert first.status_code == 200 and first.json == {"credits": {"tmpl-tier": 1, "tmpl-points": 1}}
    again = api.member("POST", "/v1/members/me/subscriptions", token,
                       {"template_ids": ["tmpl-tier"], "request_id": "s-1"})
    assert again.json["credits"]["tmpl-tier"] == 2
    replay = api.member("POST", "/v1/members/me/subscriptions", token,
                        {"template_ids": ["tmpl-tier"], "request_id": "s-1"})
    assert replay.json["credits"]["tmpl-tier"] == 2
    unknown = api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-nope"]})
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "unknown_template"


def test_tier_message_only_to_the_consenting_member_and_once(api, standin):
    yes_token, yes = enrolled(api, "consents")
    _, no = enrolled(api, "declines")
    api.member("POST", "/v1/members/me/subscriptions", yes_token, {"template_ids": ["tmpl-tier"]})
    feeder = StreamFeeder()
    pump(feeder)
    order(api, yes, "o-yes", 100_000)
    order(api, no, "o-no", 100_000)
    answers = pump(feeder)
    assert all(a == {"batchItemFailures": []} for a in answers)

    sent = [m for m in standin.sent_messages() if m["template_id"] == "tmpl-tier"]
    assert len(sent) == 1 and sent[0]["touser"] == "consents"
    assert sent[0]["data"]["thing1"]["value"] == "银卡" and sent[0]["page"] == "pages/member/index"

    from chalicelib.services import notifications

    assert notifications.credits("demo", yes)["tmpl-tier"] == 0

    from app import on_table_change, send_notifications

    on_table_change(lambda_event(feeder.delivered), None)
    send_notifications(lambda_event(feeder.delivered), None)
    pump(feeder)
    assert len([m for m in standin.sent_messages() if m["template_id"] == "tmpl-tier"]) == 1

    from chalicelib.store import keys
    from chalicelib.store.models import NotificationItem

    declined = [n for n in NotificationItem.query(keys.member_pk("demo", no), NotificationItem.sk.startswith("NOTIFY#"))
                if n.event == "tier_changed"]
    assert [(n.status, n.reason) for n in declined] == [("dropped", "no_consent")]


def test_points_message_says_what_changed(api, standin):
    token, member_id = enrolled(api, "pointy")
    api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points"]})
    feeder = StreamFeeder()
    pump(feeder)
    order(api, member_id, "o-pts", 12_300)
    pump(feeder)
    [message] = [m for m in standin.sent_messages() if m["template_id"] == "tmpl-points"]
    assert message["data"]["number2"]["value"] == "123" and message["data"]["number3"]["value"] == "123"
    assert message["data"]["thing1"]["value"] == "order o-pts"


def test_a_refusing_user_is_dropped_not_retried(api, standin):
    token, member_id = enrolled(api, "refuser")
    api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points"]})
    standin.refuse("refuser")
    feeder = StreamFeeder()
    pump(feeder)
    order(api, member_id, "o-ref", 10_000)
    assert all(a == {"batchItemFailures": []} for a in pump(feeder))
    from chalicelib.store import keys
    from chalicelib.store.models import NotificationItem

    jobs = list(NotificationItem.query(keys.member_pk("demo", member_id), NotificationItem.sk.startswith("NOTIFY#")))
    assert [(j.status, j.reason) for j in jobs] == [("dropped", "user_refused")]


def test_a_failing_send_fails_alone_and_keeps_its_credit(api, standin, monkeypatch):
    token_a, a = enrolled(api, "poison")
    token_b, b = enrolled(api, "healthy")
    for token in (token_a, token_b):
        api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points"]})
    feeder = StreamFeeder()
    pump(feeder)
    order(api, a, "o-a", 10_000)
    order(api, b, "o-b", 10_000)
    from app import on_table_change, send_notifications
    from chalicelib.services import notifications
    from chalicelib.wechat import gateway

    on_table_change(lambda_event(feeder.read()), None)
    jobs = feeder.read()
    real = gateway.WechatGateway.send_subscribe_message

    def flaky(self, openid, *args, **kwargs):
        if openid == "poison":
            raise gateway.WechatError(-1, "system busy")
        return real(self, openid, *args, **kwargs)

    monkeypatch.setattr(gateway.WechatGateway, "send_subscribe_message", flaky)
    monkeypatch.setattr(notifications.time, "sleep", lambda _: None)
    answer = send_notifications(lambda_event(jobs), None)
    poisoned = [r["dynamodb"]["SequenceNumber"] for r in jobs
                if r["dynamodb"].get("NewImage", {}).get("kind", {}).get("S") == "notification"
                and r["dynamodb"]["NewImage"]["member_id"]["S"] == a]
    assert len(poisoned) == 1
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == poisoned
    assert [m["touser"] for m in standin.sent_messages()] == ["healthy"]
    assert notifications.credits("demo", a)["tmpl-points"] == 1  # given back for the retry
    monkeypatch.setattr(gateway.WechatGateway, "send_subscribe_message", real)
    retry = send_notifications(lambda_event([r for r in jobs if r["dynamodb"]["SequenceNumber"] in poisoned]), None)
    assert retry == {"batchItemFailures": []}
    assert sorted(m["touser"] for m in standin.sent_messages()) == ["healthy", "poison"]


def test_twenty_concurrent_senders_with_an_expired_token_fetch_it_once(api, standin):
    from chalicelib.seed import DEV_WECHAT_SECRET
    from chalicelib.settings import get_settings
    from chalicelib.wechat.gateway import WechatGateway

    settings = get_settings()
    WechatGateway(settings, "wxdemo0000000000", DEV_WECHAT_SECRET).access_token()
    standin.expire_tokens()
    before = standin.stats()["token_minted"]

    def send(n):
        gateway = WechatGateway(settings, "wxdemo0000000000", DEV_WECHAT_SECRET)
        gateway.send_subscribe_message(f"user-{n}", "tmpl-points", {"thing1": {"value": "hi"}})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(send, range(20)))
    assert standin.stats()["token_minted"] - before == 1
    assert len(standin.sent_messages()) == 20
