"""Segments over seeded members, and a coupon campaign to 1,000 of them: once, and a rerun grants
nothing more."""

from __future__ import annotations

import datetime as dt
import json

from chalicelib import clock
from chalicelib.store import keys

NOW = dt.datetime(2026, 7, 1, 4, 0, tzinfo=dt.timezone.utc)  # 12:00 in Shanghai


def _seed(members: int) -> None:
    from chalicelib.store.models import AccountItem, ProfileItem, TagsItem

    with ProfileItem.batch_write() as batch:
        for n in range(members):
            member_id = f"seg{n:05d}"
            gsi1pk, gsi1sk = keys.members_list("demo", member_id)
            batch.save(ProfileItem(*keys.profile("demo", member_id), program_id="demo", member_id=member_id,
                                   openid=f"o{n}", invite_code=f"S{n:06d}", enrolled_at="2026-01-01T00:00:00+00:00",
                                   birthday=f"1990-{n % 12 + 1:02d}-15", gsi1pk=gsi1pk, gsi1sk=gsi1sk))
            paid = {"membership_until": "2026-12-31T15:59:59+00:00", "membership_plan_id": "year"} if n % 4 == 0 else {}
            batch.save(AccountItem(*keys.account("demo", member_id), program_id="demo", member_id=member_id,
                                   tier="normal", points=n, updated_at="2026-01-01T00:00:00+00:00", **paid))
            if n % 6 != 5:  # 1,000 of 1,200 tagged
                batch.save(TagsItem(*keys.member_tags("demo", member_id), program_id="demo", member_id=member_id,
                                    manual={"vip"}, updated_at="2026-01-01T00:00:00+00:00"))


def _ok(answer, status=200):
    assert answer.status_code == status, answer.body
    return json.loads(answer.body)


def test_segment_rules_read_tags_points_birthday_and_paid_membership(api, monkeypatch):
    from chalicelib.domain.segments import SegmentRules
    from chalicelib.services import campaigns
    from chalicelib.settings import get_settings

    monkeypatch.setattr(clock, "now", lambda: NOW)
    _seed(48)

    def members(**rules):
        return campaigns.evaluate(get_settings(), "demo", SegmentRules(**rules))

    assert len(members(tags_any=["vip"])) == 40
    assert members(points_min=45) == ["seg00045", "seg00046", "seg00047"]
    assert members(birthday_month=3) == ["seg00002", "seg00014", "seg00026", "seg00038"]
    assert members(paid_member=True) == [f"seg{n:05d}" for n in range(0, 48, 4)]
    assert len(members(paid_member=False)) == 36

    # The nightly job records each segment's size.
    from tests.support import calls

    headers = calls.bearer(calls.ADMIN_KEY)
    api.request("PUT", "/v1/admin/segments/paying", {"name": "付费会员", "rules": {"paid_member": True}}, headers)
    _ok(api.staff("POST", "/v1/admin/jobs/segments/runs", {"as_of": "2026-07-01"}))
    listed = _ok(api.staff("GET", "/v1/admin/segments"))["items"]
    assert listed == [{"segment_id": "paying", "name": "付费会员", "rules": {"paid_member": True}, "members_count": 12,
                       "evaluated_on": "2026-07-01"}]
    assert members(paid_member=True, points_max=8, tags_any=["vip"]) == ["seg00000", "seg00004", "seg00008"]


def test_a_campaign_to_a_thousand_members_grants_a_thousand_coupons_once(api, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)
    _seed(1_200)
    _ok(api.staff("PUT", "/v1/admin/coupon-templates/winback", {
        "name": "回归礼", "kind": "amount_off", "off_fen": 500, "valid_days": 30, "claimable": False}))
    _ok(api.staff("PUT", "/v1/admin/segments/vips", {"name": "VIP", "rules": {"tags_any": ["vip"]}}))
    body = {"segment_id": "vips", "template_id": "winback"}
    first = _ok(api.staff("POST", "/v1/admin/campaigns/spring/runs", body))
    assert (first["members"], first["sent"], first["skipped"]) == (1_000, 1_000, {})
    assert first["action"] == {"type": "coupon", "template_id": "winback"}
    assert _ok(api.staff("GET", "/v1/admin/coupon-templates/winback"))["issued"] == 1_000

    # More members join the segment later: the campaign keeps its snapshot; a rerun grants nothing more.
    from chalicelib.store.models import TagsItem

    TagsItem(*keys.member_tags("demo", "seg00005")).update(actions=[TagsItem.manual.add({"vip"})])
    again = _ok(api.staff("POST", "/v1/admin/campaigns/spring/runs", body))
    assert (again["members"], again["sent"]) == (1_000, 1_000)
    assert _ok(api.staff("GET", "/v1/admin/coupon-templates/winback"))["issued"] == 1_000
    assert api.staff("POST", "/v1/admin/campaigns/spring/runs",
                     {"segment_id": "vips", "template_id": "demo-10off"}).status_code == 409
    assert api.staff("POST", "/v1/admin/campaigns/other/runs",
                     {"segment_id": "nope", "template_id": "winback"}).status_code == 404


def test_a_points_bonus_campaign_pays_each_member_once(api, monkeypatch):
    from chalicelib.store.models import AccountItem

    monkeypatch.setattr(clock, "now", lambda: NOW)
    _seed(12)
    _ok(api.staff("PUT", "/v1/admin/segments/rich", {"name": "rich", "rules": {"points_min": 9}}))
    body = {"segment_id": "rich", "points": 50}
    for _ in range(2):
        answer = _ok(api.staff("POST", "/v1/admin/campaigns/bonus/runs", body))
        assert (answer["members"], answer["sent"], answer["action"]) == (3, 3, {"type": "points", "points": 50})
    points = {m: int(AccountItem.get(*keys.account("demo", m)).points) for m in ("seg00009", "seg00011", "seg00008")}
    assert points == {"seg00009": 59, "seg00011": 61, "seg00008": 8}
    assert api.staff("POST", "/v1/admin/campaigns/x/runs", {"segment_id": "rich"}).status_code == 400
