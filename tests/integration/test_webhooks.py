"""Webhooks (issue 20): events from table changes, signed deliveries at a receiver stand-in,
redelivery makes nothing new, retries on the frequent job's clock, pausing, replays, SSRF."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import socket

import pytest

from tests.support import calls
from tests.support.stream import StreamFeeder, lambda_event


@pytest.fixture(scope="session")
def receiver_server():
    from devstack.webhook_receiver import WebhookReceiver

    with WebhookReceiver(port=0) as server:
        yield server


@pytest.fixture
def receiver(receiver_server):
    receiver_server.state.clear()
    yield receiver_server
    receiver_server.state.clear()


class Clock:
    """`chalicelib.clock.now`, moved by the test."""

    def __init__(self, monkeypatch):
        self.now = dt.datetime.now(dt.timezone.utc)
        from chalicelib import clock

        monkeypatch.setattr(clock, "now", lambda: self.now)

    def to(self, moment: dt.datetime) -> None:
        self.now = moment


def pump(feeder):
    """Every stream function over the new records until the stream is quiet, as Lambda runs them."""
    from app import deliver_webhooks, on_table_change, send_notifications

    answers = []
    for _ in range(20):
        records = feeder.read()
        if not records:
            break
        feeder.delivered += records
        for handler in (on_table_change, send_notifications, deliver_webhooks):
            for start in range(0, len(records), 100):
                answers.append(handler(lambda_event(records[start:start + 100]), None))
    assert all(a == {"batchItemFailures": []} for a in answers), answers
    return answers


def register(api, webhook_id, url, events=("points.changed",)):
    answer = api.staff("PUT", f"/v1/admin/webhooks/{webhook_id}", {"url": url, "events": list(events)})
    assert answer.status_code == 200, answer.body
    return answer.json


def enrolled(api, openid):
    token = api.enrolled(openid)
    return api.member("GET", "/v1/members/me", token).json["member_id"]


def accrue(api, member_id, order_id, amount_fen=1_000):
    answer = api.till("POST", "/v1/orders", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen,
                                             "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    assert answer.status_code == 201, answer.body


def verifies(secret: str, received: dict) -> bool:
    headers = received["headers"]
    signed = headers["X-Loyalty-Timestamp"].encode() + b"\n" + received["body"].encode()
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Loyalty-Signature"])


def events_of(member_id):
    from chalicelib.store.models import WebhookEventItem

    return [i for i in WebhookEventItem.scan() if isinstance(i, WebhookEventItem) and i.member_id == member_id]


# --- the "Done when" -----------------------------------------------------------------

def test_100_accruals_make_100_signed_deliveries_and_a_redelivery_makes_none(api, receiver):
    member_id = enrolled(api, "hook-hundred")
    feeder = StreamFeeder()
    pump(feeder)
    created = register(api, "crm", f"{receiver.url}/crm")
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["status"] == "active"
    for n in range(100):
        accrue(api, member_id, f"hook-o-{n}")
    pump(feeder)

    got = receiver.state.received()
    assert len(got) == 100
    assert all(verifies(secret, r) for r in got)
    bodies = [json.loads(r["body"]) for r in got]
    assert {b["type"] for b in bodies} == {"points.changed"}
    assert len({b["id"] for b in bodies}) == 100
    assert all(r["headers"]["X-Loyalty-Event-Id"] == json.loads(r["body"])["id"] for r in got)
    assert sorted(b["sequence"] for b in bodies) == list(range(1, 101))
    first = next(b for b in bodies if b["data"]["ledger"]["ref"] == "hook-o-0")
    assert first["member_id"] == member_id and first["data"]["ledger"]["points"] == 10
    assert set(first) == {"id", "type", "created_at", "member_id", "sequence", "data"}

    # A full redelivery of the stream, to every stream function, then the stream's own echoes.
    from app import deliver_webhooks, on_table_change, send_notifications

    for handler in (on_table_change, send_notifications, deliver_webhooks):
        for start in range(0, len(feeder.delivered), 100):
            assert handler(lambda_event(feeder.delivered[start:start + 100]), None) == {"batchItemFailures": []}
    pump(feeder)
    again = receiver.state.received()
    assert len({json.loads(r["body"])["id"] for r in again}) == 100  # duplicates only as the same ids
    assert len(again) == 100  # and in fact none: every delivery was acknowledged already
    assert len(events_of(member_id)) == 100

    listed = api.staff("GET", "/v1/admin/webhooks").json["items"]
    assert [(w["webhook_id"], w["counters"]["delivered"], w["status"]) for w in listed] == [("crm", 100, "active")]
    assert "secret" not in listed[0]


def test_failing_five_times_then_succeeding_is_delivered_once_after_five_recorded_attempts(api, receiver, monkeypatch):
    from chalicelib import jobs, wiring
    from chalicelib.domain import webhooks as rules
    from chalicelib.settings import get_settings

    clock = Clock(monkeypatch)
    member_id = enrolled(api, "hook-retry")
    feeder = StreamFeeder()
    pump(feeder)
    register(api, "erp", f"{receiver.url}/erp")
    receiver.state.fail(5, 503)
    accrue(api, member_id, "hook-retry-1")
    pump(feeder)  # the first attempt, from the stream, at once
    [event] = events_of(member_id)
    delivery_path = f"/v1/admin/webhooks/erp/deliveries/{event.event_id}"
    assert api.staff("GET", delivery_path).json["attempts"] == 1

    start = clock.now
    runs = 0
    while api.staff("GET", delivery_path).json["status"] == "pending":
        due = dt.datetime.fromisoformat(api.staff("GET", delivery_path).json["next_attempt_at"])
        clock.to(due + dt.timedelta(seconds=1))
        jobs.run_frequent(get_settings(), wiring.frequent_jobs())
        pump(feeder)  # the job's writes are stream records too; none of them sends again
        runs += 1
        assert runs <= 6

    delivery = api.staff("GET", delivery_path).json
    assert delivery["status"] == "delivered" and delivery["attempts"] == 6
    assert [a["status"] for a in delivery["log"]] == [503] * 5 + [200]
    assert [a["error"] for a in delivery["log"]][:5] == ["HTTP 503"] * 5
    got = receiver.state.received()
    assert [r["answered"] for r in got] == [503] * 5 + [200]
    assert {r["headers"]["X-Loyalty-Event-Id"] for r in got} == {event.event_id}
    # The retries follow the schedule: 1, 2, 4, 8, 16 minutes apart.
    moments = [dt.datetime.fromisoformat(a["at"]) for a in delivery["log"]]
    gaps = [later - earlier for earlier, later in zip(moments, moments[1:])]
    assert [round(g.total_seconds() / 60) for g in gaps] == [1, 2, 4, 8, 16]
    assert moments[-1] - start < sum(rules.RETRY_DELAYS[:5], dt.timedelta(minutes=1))
    [endpoint] = api.staff("GET", "/v1/admin/webhooks").json["items"]
    assert endpoint["counters"] == {"delivered": 1, "failed_attempts": 5, "parked": 0, "consecutive_failures": 0}
    assert endpoint["status"] == "active"


def fail_until_parked(api, receiver, clock, webhook_id):
    """An endpoint that always answers 500 and one accrual to it; the frequent job retries at each
    due time until the delivery leaves `pending`. Returns the member, the pump's feeder, the
    delivery's admin path, its last state and when the retries began."""
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    member_id = enrolled(api, f"hook-{webhook_id}")
    feeder = StreamFeeder()
    pump(feeder)
    register(api, webhook_id, f"{receiver.url}/{webhook_id}")
    receiver.state.fail(1000, 500)
    accrue(api, member_id, f"hook-{webhook_id}-1")
    pump(feeder)
    [event] = events_of(member_id)
    path = f"/v1/admin/webhooks/{webhook_id}/deliveries/{event.event_id}"
    start = clock.now
    while api.staff("GET", path).json["status"] == "pending":
        clock.to(dt.datetime.fromisoformat(api.staff("GET", path).json["next_attempt_at"]) + dt.timedelta(seconds=1))
        jobs.run_frequent(get_settings(), wiring.frequent_jobs())
    return member_id, feeder, path, api.staff("GET", path).json, start


def test_an_endpoint_that_keeps_failing_parks_is_paused_and_staff_replay(api, receiver, monkeypatch):
    from chalicelib.domain import webhooks as rules

    clock = Clock(monkeypatch)
    member_id, feeder, path, delivery, start = fail_until_parked(api, receiver, clock, "down")
    # Paused after 10 failures in a row over more than an hour: the delivery parks with it.
    [endpoint] = api.staff("GET", "/v1/admin/webhooks").json["items"]
    assert endpoint["status"] == "paused" and "10 attempts in a row failed" in endpoint["paused_reason"]
    assert delivery["status"] == "parked" and delivery["attempts"] == rules.PAUSE_AFTER_FAILURES

    # While paused, a new event parks at once (nothing is sent).
    sent_before = len(receiver.state.received())
    accrue(api, member_id, "hook-down-2")
    pump(feeder)
    assert len(receiver.state.received()) == sent_before
    parked = api.staff("GET", "/v1/admin/webhooks/down/parked-deliveries").json["items"]
    assert {p["park_reason"] for p in parked} == {"endpoint_paused"} and len(parked) == 2

    # Resumed, with the receiver healthy again: both go out (from the stream, at once).
    receiver.state.clear()
    resumed = api.staff("POST", "/v1/admin/webhooks/down/resume")
    assert resumed.status_code == 200 and resumed.json["status"] == "active" and resumed.json["requeued"] == 2
    pump(feeder)
    assert len(receiver.state.received()) == 2
    assert api.staff("GET", "/v1/admin/webhooks/down/parked-deliveries").json["items"] == []

    # Replays: one delivery, and a time range.
    replay = api.staff("POST", f"{path}/replay")
    assert replay.status_code == 200 and replay.json["status"] == "pending"
    pump(feeder)
    assert len(receiver.state.received()) == 3
    window = {"from": (start - dt.timedelta(minutes=5)).isoformat(), "to": (clock.now + dt.timedelta(days=1)).isoformat()}
    ranged = api.staff("POST", "/v1/admin/webhooks/down/replays", window)
    assert ranged.status_code == 200 and ranged.json == {"queued": 2, "complete": True, "resume_from": None}
    pump(feeder)
    assert len(receiver.state.received()) == 5
    assert len({r["headers"]["X-Loyalty-Event-Id"] for r in receiver.state.received()}) == 2


def test_a_delivery_out_of_retries_is_parked_after_more_than_24_hours(api, receiver, monkeypatch):
    from chalicelib.domain import webhooks as rules

    clock = Clock(monkeypatch)
    # Another endpoint keeps succeeding, so this one's failures never pause it first... they do not
    # need to: the pause rule counts per endpoint. Raise the bar for this test alone.
    monkeypatch.setattr(rules, "PAUSE_AFTER_FAILURES", 1000)
    _, _, _, delivery, start = fail_until_parked(api, receiver, clock, "park")
    assert delivery["status"] == "parked" and delivery["park_reason"] == "retries_exhausted"
    assert delivery["attempts"] == rules.MAX_ATTEMPTS
    assert dt.datetime.fromisoformat(delivery["parked_at"]) - start >= dt.timedelta(hours=24)
    [endpoint] = api.staff("GET", "/v1/admin/webhooks").json["items"]
    assert endpoint["status"] == "paused" and endpoint["counters"]["parked"] == 1


# --- SSRF ------------------------------------------------------------------------------------

@pytest.fixture
def outside_local(api, monkeypatch):
    """The API as a deployed stage sees it: real secrets, no dev admin key (a staff key of our own)."""
    from chalicelib.api import http
    from chalicelib.services import webhooks
    from chalicelib.settings import Settings
    from chalicelib.store import programs

    prod = Settings(stage="prod", token_secret="t" * 40, lookup_key="l" * 40,
                    data_key=base64.b64encode(os.urandom(32)).decode(), wechat_api_base="https://api.weixin.qq.com",
                    wechatpay_api_base="https://api.mch.weixin.qq.com")
    monkeypatch.setattr(http, "get_settings", lambda: prod)
    programs.save_admin_key("demo", "ops", "ops-key-for-the-ssrf-test")
    looked_up = []
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: looked_up.append(host) or {
        "hooks.merchant.example": ["93.184.216.34"], "rebind.merchant.example": ["10.1.2.3"],
        "mixed.merchant.example": ["93.184.216.34", "127.0.0.1"], "localhost": ["127.0.0.1"]}[host])

    def no_connections(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", no_connections)
    monkeypatch.setattr(socket.socket, "connect", no_connections)
    return prod, looked_up


@pytest.mark.parametrize("url", [
    "https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/hook", "https://127.0.0.1/hook",
    "https://[::1]/hook", "https://[::ffff:169.254.169.254]/x", "https://224.0.0.1/x", "https://0.0.0.0/x",
    "https://100.64.0.1/x", "https://240.0.0.1/x", "https://[fe80::1]/x", "https://192.168.1.1/x",
    "http://93.184.216.34/hook", "https://rebind.merchant.example/hook", "https://mixed.merchant.example/hook",
    "https://user:pw@93.184.216.34/hook", "ftp://93.184.216.34/", "https://localhost/hook",
])
def test_private_and_plain_http_urls_are_refused_outside_the_local_stage(api, outside_local, url):
    answer = api.request("PUT", "/v1/admin/webhooks/bad", {"url": url, "events": ["points.changed"]},
                         calls.bearer("ops-key-for-the-ssrf-test"))
    assert answer.status_code == 400, answer.body
    assert answer.json["error"]["code"] in ("url_refused", "invalid_request")
    listed = api.request("GET", "/v1/admin/webhooks", headers=calls.bearer("ops-key-for-the-ssrf-test"))
    assert listed.json["items"] == []


def test_a_public_https_url_is_accepted_outside_the_local_stage(api, outside_local):
    answer = api.request("PUT", "/v1/admin/webhooks/good", {"url": "https://hooks.merchant.example/in",
                                                            "events": ["tier.changed"]},
                         calls.bearer("ops-key-for-the-ssrf-test"))
    assert answer.status_code == 200, answer.body
    assert answer.json["secret"]


def test_a_host_that_rebinds_to_a_private_address_is_refused_at_delivery(api, outside_local, monkeypatch):
    """Checked again at every attempt, before any connection (DNS rebinding)."""
    from chalicelib.services import webhooks
    from chalicelib.store import keys
    from chalicelib.store.models import WebhookDeliveryItem, WebhookItem

    prod, looked_up = outside_local
    assert api.request("PUT", "/v1/admin/webhooks/flip", {"url": "https://hooks.merchant.example/in",
                                                          "events": ["points.changed"]},
                       calls.bearer("ops-key-for-the-ssrf-test")).status_code == 200
    endpoint = WebhookItem.get(*keys.webhook("demo", "flip"))
    endpoint.secret_enc = __import__("chalicelib.crypto", fromlist=["encrypt"]).encrypt(
        prod, "whsec_x", context=endpoint.pk)
    monkeypatch.setattr(webhooks, "resolve", lambda host, port: looked_up.append(host) or ["169.254.169.254"])
    delivery = WebhookDeliveryItem(*keys.webhook_delivery("demo", "evt_" + "0" * 32, "flip"), program_id="demo",
                                   event_id="evt_" + "0" * 32, webhook_id="flip", type="points.changed", body="{}",
                                   status="pending", created_at="2026-01-01T00:00:00.000+00:00", log=[])
    delivery.save()
    assert webhooks.attempt(prod, delivery, endpoint) == "pending"
    saved = WebhookDeliveryItem.get(*keys.webhook_delivery("demo", "evt_" + "0" * 32, "flip"))
    assert saved.log[-1]["status"] is None and "169.254.169.254 is a link-local address" in saved.log[-1]["error"]


def test_the_local_stage_sends_only_to_loopback(api):
    for url in ("http://10.0.0.1/x", "https://example.com/x", "http://169.254.169.254/"):
        answer = api.staff("PUT", "/v1/admin/webhooks/local", {"url": url, "events": ["points.changed"]})
        assert answer.status_code == 400 and answer.json["error"]["code"] == "url_refused", url
    assert api.staff("PUT", "/v1/admin/webhooks/local", {"url": "http://127.0.0.1:9/x",
                                                          "events": ["points.changed"]}).status_code == 200


# --- endpoints -------------------------------------------------------------------------------

def test_endpoints_secret_once_maximum_change_and_delete(api):
    from chalicelib.domain import webhooks as rules

    first = register(api, "a", "http://127.0.0.1:9/a", ["points.changed", "tier.changed"])
    again = register(api, "a", "http://127.0.0.1:9/a2", ["member.enrolled"])
    assert "secret" in first and "secret" not in again
    assert again["url"] == "http://127.0.0.1:9/a2" and again["events"] == ["member.enrolled"]
    rotated = api.staff("PUT", "/v1/admin/webhooks/a", {"url": "http://127.0.0.1:9/a2", "events": ["member.enrolled"],
                                                        "rotate_secret": True}).json
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != first["secret"]
    unknown = api.staff("PUT", "/v1/admin/webhooks/b", {"url": "http://127.0.0.1:9/b", "events": ["points.stolen"]})
    assert unknown.status_code == 400
    for n in range(1, rules.MAX_ENDPOINTS_PER_PROGRAM):
        register(api, f"n{n}", f"http://127.0.0.1:9/{n}")
    over = api.staff("PUT", "/v1/admin/webhooks/one-too-many", {"url": "http://127.0.0.1:9/x",
                                                                "events": ["points.changed"]})
    assert over.status_code == 409 and over.json["error"]["code"] == "too_many_webhooks"
    assert api.staff("DELETE", "/v1/admin/webhooks/a").json == {"webhook_id": "a", "deleted": True}
    assert api.staff("DELETE", "/v1/admin/webhooks/a").status_code == 404
    assert api.staff("GET", "/v1/admin/webhooks/a").status_code == 404
    register(api, "one-more", "http://127.0.0.1:9/x")
    assert len(api.staff("GET", "/v1/admin/webhooks").json["items"]) == rules.MAX_ENDPOINTS_PER_PROGRAM


def test_member_tier_and_redemption_events(api, receiver):
    feeder = StreamFeeder()
    created = register(api, "all", f"{receiver.url}/all", ["member.enrolled", "member.updated", "tier.changed",
                                                           "redemption.created", "redemption.cancelled"])
    token = api.enrolled("hook-events")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    pump(feeder)
    api.member("PATCH", "/v1/members/me", token, {"nickname": "A"})
    pump(feeder)
    api.member("PATCH", "/v1/members/me", token, {"nickname": "B"})
    pump(feeder)
    api.member("PATCH", "/v1/members/me", token, {"nickname": "A"})
    pump(feeder)
    accrue(api, member_id, "hook-big", 100_000)  # 1000 points: 银卡
    pump(feeder)
    redeemed = api.member("POST", "/v1/members/me/redemptions", token, {"reward_id": "demo-cup", "quantity": 1, "request_id": "r1"})
    assert redeemed.status_code == 201, redeemed.body
    pump(feeder)
    cancel = api.member("POST", f"/v1/members/me/redemptions/{redeemed.json['redemption_id']}/cancel", token)
    assert cancel.status_code == 200, cancel.body
    pump(feeder)
    got = [json.loads(r["body"]) for r in receiver.state.received()]
    assert all(verifies(created["secret"], r) for r in receiver.state.received())
    assert [b["type"] for b in got] == ["member.enrolled", "member.updated", "member.updated", "member.updated",
                                        "tier.changed", "redemption.created", "redemption.cancelled"]
    assert [b["data"].get("nickname") for b in got[1:4]] == ["A", "B", "A"]
    assert got[4]["data"]["to_tier"] != got[4]["data"]["from_tier"]
    assert [b["sequence"] for b in got] == list(range(1, 8))
    moments = [dt.datetime.fromisoformat(b["created_at"]) for b in got]
    assert moments[1] >= moments[0] and moments[3] >= moments[2] >= moments[1]  # updates: when they happened
    assert {b["member_id"] for b in got} == {member_id}


def test_a_range_replay_sends_past_events_to_an_endpoint_registered_later(api, receiver):
    member_id = enrolled(api, "hook-late")
    feeder = StreamFeeder()
    register(api, "first", f"{receiver.url}/first")
    accrue(api, member_id, "hook-late-1")
    accrue(api, member_id, "hook-late-2")
    pump(feeder)
    late = register(api, "late", f"{receiver.url}/late")
    window = {"from": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat(),
              "to": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).isoformat()}
    answer = api.staff("POST", "/v1/admin/webhooks/late/replays", window)
    assert answer.status_code == 200 and answer.json["queued"] == 2, answer.body
    pump(feeder)
    got = [r for r in receiver.state.received() if r["path"] == "/late"]
    assert len(got) == 2 and all(verifies(late["secret"], r) for r in got)
    bad = api.staff("POST", "/v1/admin/webhooks/late/replays", {"from": window["to"], "to": window["from"]})
    assert bad.status_code == 400
    naive = api.staff("POST", "/v1/admin/webhooks/late/replays", {"from": "2026-01-01T00:00:00", "to": window["to"]})
    assert naive.status_code == 400


def test_a_slow_receiver_times_out_and_the_retry_carries_the_same_event_id(api, receiver, monkeypatch):
    from chalicelib import jobs, wiring
    from chalicelib.domain import webhooks as rules
    from chalicelib.settings import get_settings

    monkeypatch.setattr(rules, "READ_TIMEOUT_SECONDS", 0.3)
    clock = Clock(monkeypatch)
    member_id = enrolled(api, "hook-slow")
    feeder = StreamFeeder()
    pump(feeder)
    register(api, "slow", f"{receiver.url}/slow")
    receiver.state.slow(1, 1.0)
    accrue(api, member_id, "hook-slow-1")
    pump(feeder)
    [event] = events_of(member_id)
    path = f"/v1/admin/webhooks/slow/deliveries/{event.event_id}"
    first = api.staff("GET", path).json
    assert first["status"] == "pending" and first["log"][0]["status"] is None
    assert "Timeout" in first["log"][0]["error"] or "timed out" in first["log"][0]["error"]
    clock.to(dt.datetime.fromisoformat(first["next_attempt_at"]) + dt.timedelta(seconds=1))
    jobs.run_frequent(get_settings(), wiring.frequent_jobs())
    assert api.staff("GET", path).json["status"] == "delivered"
    import time

    time.sleep(1.0)  # the slow answer's request is recorded once it finishes sleeping
    got = receiver.state.received()
    assert len(got) == 2 and {r["headers"]["X-Loyalty-Event-Id"] for r in got} == {event.event_id}


def retry_run(result):
    """The retry-webhooks job's summary in a frequent run."""
    (run,) = [run for run in result["runs"] if run["job"] == "retry-webhooks"]
    return run


@pytest.mark.parametrize("job_first", [True, False])
def test_a_late_stream_record_and_the_frequent_job_send_a_delivery_once(api, receiver, monkeypatch, job_first):
    from app import deliver_webhooks
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    clock = Clock(monkeypatch)
    member_id = enrolled(api, f"hook-late-{job_first}")
    feeder = StreamFeeder()
    pump(feeder)
    register(api, "race", f"{receiver.url}/race")
    accrue(api, member_id, f"hook-late-{job_first}")
    feeder.pump()  # the first stream function only: the event and its delivery are written
    clock.to(clock.now + dt.timedelta(minutes=3))  # the sender's record arrives after the delivery came due
    if job_first:
        assert retry_run(jobs.run_frequent(get_settings(), wiring.frequent_jobs()))["delivered"] == 1
    records = feeder.read()
    feeder.delivered += records
    assert deliver_webhooks(lambda_event(records), None) == {"batchItemFailures": []}
    jobs.run_frequent(get_settings(), wiring.frequent_jobs())
    pump(feeder)
    assert len(receiver.state.received()) == 1
