"""A subscribe-message campaign to a segment: consent credits respected (no credit: skipped,
no_consent; one credit spent per message), at most `daily_limit` messages queued per program day
(the next day's run continues), once per member per campaign (a rerun sends nothing more)."""

from __future__ import annotations

import datetime as dt
import json

from chalicelib import clock
from tests.integration.test_notifications import enrolled, pump
from tests.support.stream import StreamFeeder


def _ok(answer, status=200):
    assert answer.status_code == status, answer.body
    return json.loads(answer.body)


def test_a_message_campaign_sends_once_to_consenting_members_within_the_daily_limit(api, standin, monkeypatch):
    from chalicelib.services import notifications
    from chalicelib.store import keys
    from chalicelib.store.models import NotificationItem

    members = {}
    for n in range(6):
        token, member_id = enrolled(api, f"cmp-user-{n}")
        members[member_id] = (n, token)
        _ok(api.staff("PUT", f"/v1/admin/members/{member_id}/tags/spring"))
        if n < 4:  # four consent to the campaign template; n == 0 twice (two credits)
            for _ in range(2 if n == 0 else 1):
                api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-campaign"]})
    consenting = {m for m, (n, _) in members.items() if n < 4}
    _ok(api.staff("PUT", "/v1/admin/segments/spring", {"name": "春季", "rules": {"tags_any": ["spring"]}}))
    feeder = StreamFeeder()
    pump(feeder)
    standin.clear_sent()

    body = {"segment_id": "spring", "message": {"title": "春季上新", "text": "到店领双倍积分"}, "daily_limit": 3}
    first = _ok(api.staff("POST", "/v1/admin/campaigns/spring-msg/runs", body))
    assert first["action"] == {"type": "message", "title": "春季上新", "text": "到店领双倍积分"}
    assert first["members"] == 6 and first["sent"] == 3
    assert first["remaining"] == 6 - 3 - first["skipped"].get("no_consent", 0)
    # Today's limit is reached: a second run the same day queues nothing.
    same_day = _ok(api.staff("POST", "/v1/admin/campaigns/spring-msg/runs", body))
    assert (same_day["sent"], same_day["remaining"]) == (3, first["remaining"])
    pump(feeder)
    assert len([m for m in standin.sent_messages() if m["template_id"] == "tmpl-campaign"]) == 3

    # The next program day, the run continues where it stopped.
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + dt.timedelta(days=1))
    second = _ok(api.staff("POST", "/v1/admin/campaigns/spring-msg/runs", body))
    assert (second["sent"], second["skipped"], second["remaining"]) == (4, {"no_consent": 2}, 0)
    pump(feeder)
    again = _ok(api.staff("POST", "/v1/admin/campaigns/spring-msg/runs", body))
    assert (again["sent"], again["skipped"], again["remaining"]) == (4, {"no_consent": 2}, 0)
    pump(feeder)

    sent = [m for m in standin.sent_messages() if m["template_id"] == "tmpl-campaign"]
    assert sorted(m["touser"] for m in sent) == sorted(f"cmp-user-{members[m][0]}" for m in consenting)
    assert sent[0]["data"] == {"thing1": {"value": "春季上新"}, "thing2": {"value": "到店领双倍积分"}}
    # One credit spent per message; members without credits got no job at all.
    for member_id, (n, _) in members.items():
        credit = notifications.credits("demo", member_id).get("tmpl-campaign")
        assert credit == ({0: 1}.get(n, 0) if n < 4 else None)
        jobs = [j.status for j in NotificationItem.query(keys.member_pk("demo", member_id),
                                                         NotificationItem.sk.startswith("NOTIFY#cmp#"))]
        assert jobs == (["sent"] if n < 4 else [])

    # Redelivering every stream record sends nothing more.
    from app import send_notifications
    from tests.support.stream import lambda_event

    send_notifications(lambda_event(feeder.delivered), None)
    assert len([m for m in standin.sent_messages() if m["template_id"] == "tmpl-campaign"]) == 4
    # The same campaign id with another message: 409; bad bodies: 400.
    assert api.staff("POST", "/v1/admin/campaigns/spring-msg/runs",
                     {**body, "message": {"title": "别的"}}).status_code == 409
    assert api.staff("POST", "/v1/admin/campaigns/x/runs",
                     {"segment_id": "spring", "points": 5, "message": {"title": "t"}}).status_code == 400
    assert api.staff("POST", "/v1/admin/campaigns/x/runs",
                     {"segment_id": "spring", "message": {"title": "t" * 21}}).status_code == 400
