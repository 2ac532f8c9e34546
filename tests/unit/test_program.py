"""Program rules as validated data: what staff may and may not configure."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from chalicelib.domain.program import Campaign, ExpiryPolicy, HoldPolicy, ProgramConfig, Tier, demo_program
from tests.unit.builders import campaign, d, program, tier_spec


def test_demo_program_matches_the_contract_defaults():
    demo = demo_program()
    assert (demo.program_id, demo.appid, demo.timezone) == ("demo", "wxdemo0000000000", "Asia/Shanghai")
    assert (demo.earning.points_per_yuan, demo.earning.growth_per_yuan, demo.earning.campaigns) == (1, 1, [])
    assert demo.expiry.months_after == 12
    assert {event: t.template_id for event, t in demo.templates.items()} == {
        "tier_changed": "tmpl-tier", "points_changed": "tmpl-points", "points_expiring": "tmpl-expiring",
        "coupon_expiring": "tmpl-coupon", "membership_expiring": "tmpl-membership",
        "campaign": "tmpl-campaign"}
    assert demo.base_tier.code == "normal"
    assert [(p.plan_id, p.days, p.price_fen, p.trial) for p in demo.membership.plans] == [
        ("svip-month", 30, 1990, False), ("svip-trial", 7, 0, True)]
    wheel = demo.lottery("demo-wheel")
    assert wheel is not None and (wheel.cost_points, wheel.daily_limit) == (10, 5)


def test_demo_program_survives_a_round_trip_through_json():
    demo = demo_program()
    assert ProgramConfig.model_validate_json(demo.model_dump_json()) == demo


# --- tier ladder ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("tiers", "message"), [
    pytest.param([tier_spec("only", 0, 0)], "2 to 10 tiers", id="one-tier"),
    pytest.param([tier_spec(f"t{i}", i, i * 100) for i in range(11)], "2 to 10 tiers", id="eleven-tiers"),
    pytest.param([tier_spec("a", 0, 10), tier_spec("b", 1, 100)], "lowest tier must have threshold 0",
                 id="lowest-threshold-not-zero"),
    pytest.param([tier_spec("a", 0, 0), tier_spec("b", 1, 0)], "rising thresholds", id="equal-thresholds"),
    pytest.param([tier_spec("a", 0, 0), tier_spec("b", 1, 500), tier_spec("c", 2, 400)], "rising thresholds",
                 id="falling-threshold"),
    pytest.param([tier_spec("a", 0, 0), tier_spec("b", 1, 100), tier_spec("c", 1, 200)], "distinct levels",
                 id="same-level-twice"),
    pytest.param([tier_spec("a", 0, 0), tier_spec("a", 1, 100)], "tier codes must be unique", id="duplicate-codes"),
    pytest.param([tier_spec("a", 0, 0), tier_spec("b", 1, 100, points_multiplier_pct=99)], "greater than or equal",
                 id="multiplier-below-x1"),
    pytest.param([tier_spec("a", 0, 0), tier_spec("B", 1, 100)], "pattern", id="uppercase-code"),
    pytest.param([tier_spec("a", 0, 0), tier_spec("b", 1, 100, discount_pct=0)], "greater than or equal",
                 id="discount-zero"),
])
def test_tier_ladder_rules(tiers, message):
    with pytest.raises(ValidationError, match=message):
        program(tiers=tiers)


@pytest.mark.parametrize("count", [2, 10], ids=["two-tiers", "ten-tiers"])
def test_ladders_of_two_to_ten_tiers_are_accepted(count):
    config = program(tiers=[tier_spec(f"t{i}", i, i * 100) for i in range(count)])
    assert [t.level for t in config.tiers] == list(range(count))


def test_levels_and_thresholds_need_only_rise_not_be_contiguous():
    config = program(tiers=[tier_spec("a", 0, 0), tier_spec("b", 7, 1), tier_spec("c", 99, 10**9)])
    assert [t.code for t in config.tiers] == ["a", "b", "c"]


def test_retention_defaults_to_the_threshold():
    assert Tier(code="x", name="X", level=1, threshold=1000).retention_growth == 1000
    assert Tier(code="x", name="X", level=1, threshold=1000, retention=600).retention_growth == 600


def test_tier_lookup_by_code_falls_back_to_the_base_tier():
    demo = demo_program()
    assert demo.tier("gold").name == "金卡"
    assert demo.tier("no-such-tier") == demo.base_tier


# --- time zone ------------------------------------------------------------------------------------

@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "/etc/localtime", "Asia/shanghai "],
                         ids=["unknown", "empty", "path-escape", "absolute-path", "trailing-space"])
def test_unknown_time_zone_is_refused(zone):
    with pytest.raises(ValidationError, match="unknown time zone"):
        program(timezone=zone)


@pytest.mark.parametrize(("zone", "moment", "local_day"), [
    pytest.param("Asia/Shanghai", "2024-12-31T16:00:00+00:00", "2025-01-01", id="shanghai-midnight-new-year"),
    pytest.param("Asia/Shanghai", "2024-12-31T15:59:59+00:00", "2024-12-31", id="shanghai-one-second-before"),
    pytest.param("America/Los_Angeles", "2025-01-01T07:59:59+00:00", "2024-12-31", id="los-angeles-behind-utc"),
    pytest.param("UTC", "2025-03-01T00:00:00+08:00", "2025-02-28", id="utc-from-an-offset-time"),
])
def test_today_is_the_calendar_day_in_the_programs_time_zone(zone, moment, local_day):
    config = program(timezone=zone)
    when = dt.datetime.fromisoformat(moment)
    assert config.today(when) == config.local_day(when) == d(local_day)


# --- campaigns ------------------------------------------------------------------------------------

def test_campaign_ending_before_it_starts_is_refused():
    with pytest.raises(ValidationError, match="ends_on is before starts_on"):
        campaign("back", "2025-06-02", "2025-06-01")


def test_one_day_campaign_is_accepted():
    assert campaign("day", "2025-06-01", "2025-06-01").active_on(d("2025-06-01"))


@pytest.mark.parametrize(("threshold", "points", "ok"), [
    pytest.param(None, 0, True, id="no-bonus"),
    pytest.param(10_000, 50, True, id="threshold-and-points"),
    pytest.param(10_000, 0, False, id="threshold-without-points"),
    pytest.param(None, 50, False, id="points-without-threshold"),
])
def test_bonus_threshold_and_bonus_points_go_together(threshold, points, ok):
    build = lambda: campaign("b", bonus_threshold_fen=threshold, bonus_points=points)  # noqa: E731
    if ok:
        assert build().bonus_points == points
    else:
        with pytest.raises(ValidationError, match="go together"):
            build()


@pytest.mark.parametrize("fields", [
    pytest.param({"multiplier_pct": 99}, id="multiplier-below-x1"),
    pytest.param({"multiplier_pct": 1001}, id="multiplier-above-x10"),
    pytest.param({"bonus_threshold_fen": 0, "bonus_points": 5}, id="threshold-zero"),
    pytest.param({"bonus_threshold_fen": 100, "bonus_points": -5}, id="negative-bonus"),
    pytest.param({"multiplier_pct": 1.5}, id="float-multiplier"),
])
def test_campaign_field_bounds(fields):
    with pytest.raises(ValidationError):
        Campaign(code="c", name="c", starts_on=d("2025-06-01"), ends_on=d("2025-06-30"), **fields)


def test_invalid_campaign_inside_a_program_is_refused():
    data = {"code": "x", "name": "x", "starts_on": "2025-06-30", "ends_on": "2025-06-01"}
    with pytest.raises(ValidationError, match="ends_on is before starts_on"):
        program(earning={"campaigns": [data]})


# --- extra fields and bounds ----------------------------------------------------------------------

@pytest.mark.parametrize("build", [
    pytest.param(lambda: program(surprise=1), id="program"),
    pytest.param(lambda: program(earning={"points_per_yuan": 1, "bonus": 2}), id="earning-rules"),
    pytest.param(lambda: program(tiers=[tier_spec("a", 0, 0), tier_spec("b", 1, 9, colour="red")]), id="tier"),
    pytest.param(lambda: Campaign(code="c", name="c", starts_on=d("2025-06-01"), ends_on=d("2025-06-30"), stack=True),
                 id="campaign"),
    pytest.param(lambda: ExpiryPolicy(months_after=12, grace_days=3), id="expiry-policy"),
    pytest.param(lambda: HoldPolicy(points_per_yuan=10, share=50), id="hold-policy"),
])
def test_extra_fields_are_forbidden_at_every_level(build):
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        build()


@pytest.mark.parametrize(("overrides", "field"), [
    pytest.param({"program_id": "Demo"}, "program_id", id="uppercase-program-id"),
    pytest.param({"appid": "demo0000000000000"}, "appid", id="appid-without-wx"),
    pytest.param({"expiry": {"months_after": 0}}, "months_after", id="expiry-zero-months"),
    pytest.param({"expiry": {"months_after": 121}}, "months_after", id="expiry-over-ten-years"),
    pytest.param({"earning": {"points_per_yuan": -1}}, "points_per_yuan", id="negative-earning-rate"),
    pytest.param({"holds": {"max_share_pct": 101}}, "max_share_pct", id="hold-share-over-100"),
])
def test_out_of_range_program_fields_are_refused(overrides, field):
    with pytest.raises(ValidationError, match=field):
        program(**overrides)


def test_config_is_frozen():
    demo = demo_program()
    with pytest.raises(ValidationError):
        demo.timezone = "UTC"


def test_templates_accept_an_id_or_a_full_spec_and_only_known_events():
    from pydantic import ValidationError

    from tests.unit.builders import program

    config = program(templates={"winback": "tmpl-w", "tier_changed": {"template_id": "t", "fields": {"thing1": "{tier_name}"},
                                                                      "page": "p"}})
    assert config.templates["winback"].template_id == "tmpl-w" and config.templates["tier_changed"].page == "p"
    assert config.template_for("t") == "tier_changed" and config.template_for("x") is None
    with pytest.raises(ValidationError, match="unknown notification events"):
        program(templates={"birthday_party": "t"})


def test_rendering_fills_fields_and_respects_wechat_lengths():
    from chalicelib.domain import notifications as rules

    template = rules.NotificationTemplate(template_id="t")
    message = rules.render(rules.POINTS_CHANGED, template, {"reason": "一个很长很长很长很长很长很长很长的原因说明文字", "points": 5,
                                                             "balance": 10, "date": "2026-11-23"})
    assert message.data["number2"] == {"value": "5"} and message.data["date4"] == {"value": "2026-11-23"}
    assert len(message.data["thing1"]["value"]) == 20 and message.data["thing1"]["value"].endswith("…")
    assert message.page == "pages/member/index"
    custom = rules.NotificationTemplate(template_id="t", fields={"thing9": "{missing}!"})
    assert rules.render(rules.WINBACK, custom, {}).data == {"thing9": {"value": "!"}}


@pytest.mark.parametrize("pattern", ["{x:>999999999}", "{0}", "{x!r}", "{", "{a.b}"])
def test_template_fields_take_plain_placeholders_only(pattern):
    from pydantic import ValidationError

    from chalicelib.domain.notifications import NotificationTemplate

    with pytest.raises(ValidationError):
        NotificationTemplate(template_id="t", fields={"thing1": pattern})
