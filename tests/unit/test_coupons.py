"""Coupon rules: validation naming the field, windows in calendar days, discounts, codes. Pure."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.domain import coupons as c
from chalicelib.errors import Conflict, InvalidRequest

D = dt.date.fromisoformat


def rules(**fields):
    base = {"name": "t", "kind": "amount_off", "threshold_fen": 10_000, "off_fen": 1_000, "valid_days": 30}
    return c.CouponRules(**{**base, **fields})


@pytest.mark.parametrize(("fields", "named"), [
    ({"kind": "percent_off", "off_fen": None, "percent": 0}, "percent"),
    ({"kind": "percent_off", "off_fen": None, "percent": 100}, "percent"),
    ({"kind": "percent_off", "off_fen": None}, "percent"),
    ({"threshold_fen": -1}, "threshold_fen"),
    ({"off_fen": -5}, "off_fen"),
    ({"off_fen": 10_000}, "off_fen"),  # 满100减100: the order would cost nothing
    ({"off_fen": None}, "off_fen"),
    ({"max_off_fen": 100}, "max_off_fen"),
    ({"valid_days": None}, "valid_days"),
    ({"valid_days": 0}, "valid_days"),
    ({"valid_from": D("2026-01-01"), "valid_until": D("2026-01-31")}, "valid_days"),
    ({"valid_days": None, "valid_from": D("2026-02-01"), "valid_until": D("2026-01-31")}, "valid_until"),
    ({"valid_days": None, "valid_until": D("2026-01-31")}, "valid_from"),
    ({"kind": "gift", "off_fen": 100}, "off_fen"),
    ({"store_ids": []}, "store_ids"),
])
def test_bad_templates_are_refused_naming_the_field(fields, named):
    with pytest.raises(InvalidRequest) as refused:
        c.check_rules(rules(**fields))
    assert refused.value.message.startswith(f"{named}:")


def test_good_templates_pass():
    c.check_rules(rules())
    c.check_rules(rules(threshold_fen=0, off_fen=500))
    c.check_rules(rules(kind="percent_off", off_fen=None, percent=80, max_off_fen=2_000))
    c.check_rules(rules(kind="gift", off_fen=None, gift_item="cup", valid_days=None,
                        valid_from=D("2026-01-01"), valid_until=D("2026-01-01")))  # one day is a window


def test_valid_days_count_the_day_of_issue():
    assert c.window_for(rules(valid_days=30), D("2026-01-31")) == (D("2026-01-31"), D("2026-03-01"))
    assert c.window_for(rules(valid_days=1), D("2026-01-31")) == (D("2026-01-31"), D("2026-01-31"))
    fixed = rules(valid_days=None, valid_from=D("2026-05-01"), valid_until=D("2026-05-07"))
    assert c.window_for(fixed, D("2026-04-01")) == (D("2026-05-01"), D("2026-05-07"))
    assert c.can_issue(fixed, D("2026-05-07")) and not c.can_issue(fixed, D("2026-05-08"))


def test_amount_off_needs_the_threshold_and_never_exceeds_the_order():
    assert c.discount_for(rules(), c.Order(10_000, None)) == 1_000
    with pytest.raises(Conflict) as refused:
        c.discount_for(rules(), c.Order(9_999, None))
    assert refused.value.code == "threshold_not_met"
    assert c.discount_for(rules(threshold_fen=0, off_fen=5_000), c.Order(3_000, None)) == 3_000


def test_percent_off_rounds_down_and_respects_its_cap():
    eighty = rules(kind="percent_off", off_fen=None, threshold_fen=0, percent=80)
    assert c.discount_for(eighty, c.Order(10_000, None)) == 2_000
    assert c.discount_for(eighty, c.Order(999, None)) == 199  # 199.8 fen: rounded down
    capped = rules(kind="percent_off", off_fen=None, threshold_fen=0, percent=80, max_off_fen=500)
    assert c.discount_for(capped, c.Order(10_000, None)) == 500
    assert c.discount_for(capped, c.Order(1_000, None)) == 200


def test_gifts_take_nothing_off_and_stores_are_checked():
    gift = rules(kind="gift", off_fen=None, threshold_fen=0, gift_item="cup")
    assert c.discount_for(gift, c.Order(100, None)) == 0
    limited = rules(store_ids=["s1"])
    assert c.discount_for(limited, c.Order(10_000, "s1")) == 1_000
    for store in ("s2", None):
        with pytest.raises(Conflict) as refused:
            c.discount_for(limited, c.Order(10_000, store))
        assert refused.value.code == "store_not_allowed"


@pytest.mark.parametrize(("status", "today", "code"), [
    ("used", "2026-01-10", "coupon_used"),
    ("expired", "2026-01-10", "coupon_expired"),
    ("unused", "2026-02-01", "coupon_expired"),  # past its window, whether or not the job ran
    ("unused", "2026-01-04", "coupon_not_yet_valid"),
])
def test_usable_on_refuses_with_the_contract_codes(status, today, code):
    with pytest.raises(Conflict) as refused:
        c.usable_on(status, D("2026-01-05"), D("2026-01-31"), D(today), "2026-01-09T10:00:00.000+00:00")
    assert refused.value.code == code


def test_usable_through_the_last_day_and_shown_expired_the_day_after():
    c.usable_on("unused", D("2026-01-05"), D("2026-01-31"), D("2026-01-31"), None)
    assert c.shown_status("unused", D("2026-01-31"), D("2026-01-31")) == "unused"
    assert c.shown_status("unused", D("2026-01-31"), D("2026-02-01")) == "expired"
    assert c.after_void(D("2026-01-31"), D("2026-01-31")) == "unused"
    assert c.after_void(D("2026-01-31"), D("2026-02-01")) == "expired"


def test_codes_are_unguessable_and_unambiguous():
    import math

    assert c.CODE_LENGTH * math.log2(len(c.CODE_ALPHABET)) >= 40
    assert not set("01OIL") & set(c.CODE_ALPHABET)
    codes = {c.new_code() for _ in range(2_000)}
    assert len(codes) == 2_000 and all(len(x) == c.CODE_LENGTH for x in codes)
    code = next(iter(codes))
    assert c.normalise_code(f" {code[:4].lower()}-{code[4:]} ") == code
    assert c.normalise_code("0" * c.CODE_LENGTH) is None and c.normalise_code("AB") is None
