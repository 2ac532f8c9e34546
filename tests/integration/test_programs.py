"""Program rules through the admin API, and isolation between programs."""

from __future__ import annotations

import pytest


def test_staff_change_earning_rules_and_the_next_order_uses_them(api):
    current = api.staff("GET", "/v1/admin/program").json
    assert current["program_id"] == "demo" and "wechat_secret" not in str(current)
    rules = {k: v for k, v in current.items() if k not in ("program_id", "appid")}
    rules["earning"]["campaigns"] = [{"code": "double", "name": "Double days", "starts_on": "2026-01-01",
                                      "ends_on": "2030-12-31", "multiplier_pct": 200,
                                      "bonus_threshold_fen": 50_000, "bonus_points": 88}]
    changed = api.staff("PUT", "/v1/admin/program", rules)
    assert changed.status_code == 200 and changed.json["version"] == current["version"] + 1
    stale = api.staff("PUT", "/v1/admin/program", rules)
    assert stale.status_code == 409 and stale.json["error"]["code"] == "version_conflict"
    bad = api.staff("PUT", "/v1/admin/program", {**rules, "version": changed.json["version"], "tiers": []})
    assert bad.status_code == 400

    token = api.enrolled("camp")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    answer = api.till("POST", "/v1/orders", {"order_id": "o-1", "member_id": member_id, "amount_fen": 60_000,
                                             "paid_at": "2026-11-20T12:00:00+08:00"})
    assert answer.json["points_awarded"] == 600 * 2 + 88 and answer.json["growth_awarded"] == 600


@pytest.fixture
def other_program(aws):
    from chalicelib.domain.program import demo_program
    from chalicelib.settings import get_settings
    from chalicelib.store import programs

    settings = get_settings()
    config = demo_program().model_copy(update={"program_id": "other", "appid": "wxother000000000000"})
    programs.save_program(settings, config, wechat_secret="dev-wechat-secret")
    programs.save_admin_key("other", "other staff", "other-admin-key")
    programs.save_till_key(settings, "other", "other-pos", "other-pos-secret")
    return config


def test_one_program_never_reaches_another(api, other_program):
    demo_token = api.enrolled("shared-openid")
    demo_member = api.member("GET", "/v1/members/me", demo_token).json["member_id"]

    # The other program's till cannot touch a demo member, nor refund a demo order.
    order = {"order_id": "o-x", "member_id": demo_member, "amount_fen": 10_000, "paid_at": "2026-11-20T12:00:00+08:00"}
    assert api.till("POST", "/v1/orders", order).status_code == 201
    foreign = api.till("POST", "/v1/orders", {**order, "order_id": "o-y"}, key_id="other-pos", secret="other-pos-secret")
    assert foreign.status_code == 404
    refund = api.till("POST", "/v1/orders/o-x/refunds", {"refund_id": "r", "amount_fen": 1},
                      key_id="other-pos", secret="other-pos-secret")
    assert refund.status_code == 404
    # The other program's staff cannot adjust or read a demo member.
    other_staff = "other-admin-key"
    assert api.staff("POST", f"/v1/admin/members/{demo_member}/adjustments",
                     {"points": 5, "reason": "x", "request_id": "a"}, key=other_staff).status_code == 404
    history = api.staff("GET", f"/v1/admin/members/{demo_member}/points/history", key=other_staff)
    assert history.status_code == 404
    assert api.staff("GET", "/v1/admin/program", key=other_staff).json["program_id"] == "other"
