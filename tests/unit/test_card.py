"""The member card as API.md fixes it ("member card")."""

from __future__ import annotations

import pytest

from chalicelib.domain.card import build_card
from chalicelib.domain.program import demo_program
from tests.unit.builders import card_facts, d, lots_of

DEMO = demo_program()
TODAY = d("2025-06-15")
CONTRACT_KEYS = {"member_id", "nickname", "tier", "growth", "next_tier", "points", "stored_value_fen", "invite_code",
                 "phone", "benefits"}


def assert_has(actual: dict, expected: dict) -> None:
    """The contract fixes these keys and values; the card may carry more (it only grows)."""
    assert {key: actual.get(key) for key in expected} == expected


def test_card_has_every_field_the_contract_names_with_the_right_shapes():
    card = build_card(DEMO, card_facts(tier_code="silver", growth=1200, held=5, stored_value_fen=8800,
                                       phone_masked="138****0000", lots=lots_of({"2026-05-31": 40})), TODAY)
    assert CONTRACT_KEYS <= set(card)
    assert card["member_id"] == "m-1"
    assert card["nickname"] == "小明"
    assert_has(card["tier"], {"code": "silver", "name": "银卡", "level": 1})
    assert card["growth"] == 1200
    assert_has(card["next_tier"], {"code": "gold", "growth_needed": 3800})
    assert {"available", "held", "expiring"} <= set(card["points"])
    assert card["points"]["available"] == 40
    assert card["points"]["held"] == 5
    assert card["points"]["expiring"] == [{"date": "2026-05-31", "points": 40}]
    assert card["stored_value_fen"] == 8800
    assert card["invite_code"] == "INV123"
    assert card["phone"] == "138****0000"
    assert card["benefits"] == [{"code": "points_x1.2", "description": "积分1.2倍"},
                                {"code": "discount_98", "description": "消费98折"}]


def test_card_values_are_json_plain_integers_and_strings():
    card = build_card(DEMO, card_facts(lots=lots_of({"2026-05-31": 40})), TODAY)
    assert all(type(v) is int for v in (card["growth"], card["points"]["available"], card["points"]["held"],
                                        card["stored_value_fen"]))
    assert all(type(e["date"]) is str and type(e["points"]) is int for e in card["points"]["expiring"])


@pytest.mark.parametrize(("spec", "debt", "available", "expiring"), [
    pytest.param({}, 0, 0, [], id="no-lots"),
    pytest.param({"2025-09-30": 50, "2025-06-30": 20}, 0, 70, [("2025-06-30", 20), ("2025-09-30", 50)],
                 id="soonest-first-whatever-the-input-order"),
    pytest.param({"2025-06-14": 500, "2025-06-30": 20}, 0, 20, [("2025-06-30", 20)],
                 id="expired-lot-still-present-is-not-counted"),
    pytest.param({"2025-06-15": 8}, 0, 8, [("2025-06-15", 8)], id="lot-expiring-today-counts"),
    pytest.param({"2025-06-30": 0, "2025-09-30": 3}, 0, 3, [("2025-09-30", 3)], id="empty-lot-not-listed"),
    pytest.param({"2025-06-30": 20}, 5, 15, [("2025-06-30", 20)], id="available-is-live-lots-minus-debt"),
    pytest.param({"2025-06-14": 100}, 30, -30, [], id="debt-with-only-expired-lots-shows-negative"),
])
def test_available_is_live_lots_minus_debt_and_expiring_lists_live_lots(spec, debt, available, expiring):
    card = build_card(DEMO, card_facts(lots=lots_of(spec), debt=debt), TODAY)
    assert card["points"]["available"] == available
    assert card["points"]["expiring"] == [{"date": day, "points": n} for day, n in expiring]


@pytest.mark.parametrize(("tier_code", "growth", "tier", "following", "benefit_codes"), [
    pytest.param("normal", 0, ("normal", "普通", 0), {"code": "silver", "growth_needed": 1000}, ["earn_points"],
                 id="normal"),
    pytest.param("silver", 4999, ("silver", "银卡", 1), {"code": "gold", "growth_needed": 1},
                 ["points_x1.2", "discount_98"], id="silver"),
    pytest.param("gold", 5000, ("gold", "金卡", 2), None, ["points_x1.5", "discount_95", "birthday_gift"],
                 id="gold-top-has-no-next-tier"),
])
def test_tier_next_tier_and_benefits_follow_the_members_tier(tier_code, growth, tier, following, benefit_codes):
    card = build_card(DEMO, card_facts(tier_code=tier_code, growth=growth), TODAY)
    assert_has(card["tier"], dict(zip(("code", "name", "level"), tier)))
    if following is None:
        assert card["next_tier"] is None
    else:
        assert_has(card["next_tier"], following)
    assert [b["code"] for b in card["benefits"]] == benefit_codes
    assert all(set(b) == {"code", "description"} and b["description"] for b in card["benefits"])


def test_tier_on_the_card_is_the_stored_tier_not_recomputed_from_growth():
    """Tiers change at review (保级), so a silver member with 6000 growth stays silver until then."""
    card = build_card(DEMO, card_facts(tier_code="silver", growth=6000), TODAY)
    assert card["tier"]["code"] == "silver"
    assert_has(card["next_tier"], {"code": "gold", "growth_needed": 0})


def test_unknown_stored_tier_code_falls_back_to_the_base_tier():
    assert build_card(DEMO, card_facts(tier_code="platinum"), TODAY)["tier"]["code"] == "normal"


def test_phone_is_null_until_bound():
    assert build_card(DEMO, card_facts(), TODAY)["phone"] is None
