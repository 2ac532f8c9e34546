"""Computed tags: the nightly `computed-tags` job writes each member's computed tags apart from
staff's manual ones, only where they changed (a rerun writes nothing); the tags route shows both."""

from __future__ import annotations

import datetime as dt
import json

from chalicelib import clock
from chalicelib.store import keys

NOW = dt.datetime(2026, 7, 1, 4, 0, tzinfo=dt.timezone.utc)  # 12:00 in Shanghai


def _ok(answer, status=200):
    assert answer.status_code == status, answer.body
    return json.loads(answer.body)


def test_computed_tags_are_written_once_and_kept_apart_from_manual_ones(api, monkeypatch):
    from chalicelib.store.models import AccountItem, ProfileItem, RfmItem, TagsItem

    monkeypatch.setattr(clock, "now", lambda: NOW)
    # new: enrolled 10 days ago; dormant: active 100 days ago; loyal: active yesterday, scored 555 with 6 orders.
    facts = {"tg-new": ("2026-06-21T02:00:00+00:00", None, None),
             "tg-dormant": ("2025-01-01T02:00:00+00:00", "2026-03-23", None),
             "tg-loyal": ("2025-01-01T02:00:00+00:00", "2026-06-30", ("重要价值", 6))}
    for member_id, (enrolled_at, active, scores) in facts.items():
        gsi1pk, gsi1sk = keys.members_list("demo", member_id)
        ProfileItem(*keys.profile("demo", member_id), program_id="demo", member_id=member_id, openid=member_id,
                    invite_code=member_id.upper(), enrolled_at=enrolled_at, gsi1pk=gsi1pk, gsi1sk=gsi1sk).save()
        AccountItem(*keys.account("demo", member_id), program_id="demo", member_id=member_id, tier="normal",
                    points=0, updated_at=enrolled_at, last_active_on=active).save()
        if scores:
            RfmItem(*keys.rfm("demo", member_id), program_id="demo", member_id=member_id, as_of="2026-06-30", r=5,
                    f=5, m=5, segment=scores[0], recency_days=1, frequency=scores[1], monetary_fen=90_000).save()
    _ok(api.staff("PUT", "/v1/admin/members/tg-loyal/tags/vip"))

    first = _ok(api.staff("POST", "/v1/admin/jobs/computed-tags/runs", {"as_of": "2026-07-01"}))
    assert first["tags_changed"] == 3
    assert first["tagged"] == {"new_member": 1, "dormant": 1, "rfm:重要价值": 1, "repeat_buyer": 1}
    assert _ok(api.staff("GET", "/v1/admin/members/tg-loyal/tags")) == {
        "member_id": "tg-loyal", "manual": ["vip"], "computed": ["repeat_buyer", "rfm:重要价值"]}
    assert _ok(api.staff("GET", "/v1/admin/members/tg-new/tags"))["computed"] == ["new_member"]
    assert _ok(api.staff("GET", "/v1/admin/members/tg-dormant/tags")) == {
        "member_id": "tg-dormant", "manual": [], "computed": ["dormant"]}

    # Again (the next day: a job runs once per day): nothing written. Staff tags never touch the computed ones, nor the job the manual ones.
    before = {m: TagsItem.get(*keys.member_tags("demo", m)).updated_at for m in facts}
    assert _ok(api.staff("POST", "/v1/admin/jobs/computed-tags/runs", {"as_of": "2026-07-02"}))["tags_changed"] == 0
    assert {m: TagsItem.get(*keys.member_tags("demo", m)).updated_at for m in facts} == before
    _ok(api.staff("DELETE", "/v1/admin/members/tg-loyal/tags/rfm:重要价值"))  # not a manual tag: nothing
    assert _ok(api.staff("GET", "/v1/admin/members/tg-loyal/tags"))["computed"] == ["repeat_buyer", "rfm:重要价值"]

    # The dormant member comes back; the new member is no longer new a month later.
    AccountItem(*keys.account("demo", "tg-dormant")).update(actions=[AccountItem.last_active_on.set("2026-07-25")])
    later = _ok(api.staff("POST", "/v1/admin/jobs/computed-tags/runs", {"as_of": "2026-07-26"}))
    assert later["tags_changed"] == 2
    assert _ok(api.staff("GET", "/v1/admin/members/tg-dormant/tags"))["computed"] == []
    assert _ok(api.staff("GET", "/v1/admin/members/tg-new/tags"))["computed"] == []
    assert _ok(api.staff("GET", "/v1/admin/members/tg-loyal/tags"))["manual"] == ["vip"]

    # Segments read computed tags like manual ones.
    from chalicelib.domain.segments import SegmentRules
    from chalicelib.services import campaigns
    from chalicelib.settings import get_settings

    assert campaigns.evaluate(get_settings(), "demo", SegmentRules(tags_any=["repeat_buyer"])) == ["tg-loyal"]
