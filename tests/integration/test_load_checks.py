"""The load run's post-run checks for coupons and stored value (bench/load/checks.py, points 6 and
7) pass on what the service wrote, and catch each kind of damage: a coupon used with no history
row, a template counter that does not match, one code answered to two 核销 requests, a wallet that
is not the sum of its history, a paid top-up never credited, a history row nothing explains."""

from __future__ import annotations

import pytest

from bench.load import checks

PROGRAM = "demo"
TEMPLATE = {"name": "满10减5", "kind": "amount_off", "threshold_fen": 1_000, "off_fen": 500, "valid_days": 30,
            "total": None, "per_member_limit": None, "claimable": True, "points_price": 0}


@pytest.fixture
def world(api):
    """A member with two claimed coupons (one used at a till) and a stored value of one top-up."""
    from chalicelib import clock
    from chalicelib.domain.stored_value import Wallet
    from chalicelib.store import stored_value as wallets
    from chalicelib.store.tx import Transaction

    assert api.staff("PUT", "/v1/admin/coupon-templates/load-5off", TEMPLATE).status_code in (200, 201)
    token = api.enrolled("checked")
    member = api.member("GET", "/v1/members/me", token).json["member_id"]
    effects = []
    for n in (1, 2):
        claimed = api.member("POST", "/v1/members/me/coupons", token, {"template_id": "load-5off", "request_id": f"c{n}"})
        assert claimed.status_code == 201
        effects.append({"op": "coupon_claim", "member": member, "key": f"c{n}", "ids": [], "answer": claimed.json})
    code = effects[0]["answer"]["code"]
    used = api.till("POST", "/v1/coupons/redeem", {"code": code, "order_id": "o-1", "order_amount_fen": 5_000,
                                                  "request_id": "u1"})
    assert used.status_code == 201
    effects.append({"op": "coupon_redeem", "member": member, "key": "u1", "ids": [], "answer": used.json})
    tx = Transaction()  # what a paid top-up of the demo plan writes to the wallet
    wallets.write(tx, PROGRAM, member, None, Wallet(10_000, 1_000), wallets.Entry("topup", "t1", "top_up", 10_000,
                                                                                   1_000, "t1"),
                  clock.stamp(clock.now()), "2026-11-30", "e1")
    tx.commit()
    paid = [{"member": member, "top_up_id": "t1", "fen": 11_000}]
    return member, effects, paid


def _check(member, effects, paid):
    facts = {member: checks._member_facts(PROGRAM, member)}
    return facts[member]["issues"], checks._coupons_and_money(PROGRAM, facts, effects, paid)


def test_what_the_service_wrote_passes(world):
    issues, problems = _check(*world)
    assert issues == [] and problems == {"coupons": [], "stored_value": []}


def test_a_coupon_marked_used_without_its_history_is_caught(world):
    from chalicelib.store import keys
    from chalicelib.store.models import CouponItem

    member, effects, paid = world
    code = effects[1]["answer"]["code"]
    CouponItem(*keys.coupon(PROGRAM, code)).update(actions=[CouponItem.status.set("used"),
                                                            CouponItem.gsi1pk.set(keys.member_coupons(PROGRAM, member, "used"))])
    issues, _ = _check(member, effects, paid)
    assert any(f"coupon {code}: used" in issue for issue in issues)
    assert any("unused coupons counted 1 != 0" in issue for issue in issues)


def test_a_template_counter_off_by_one_and_a_code_used_twice_are_caught(world):
    from chalicelib.store import keys
    from chalicelib.store.models import CouponTemplateItem

    member, effects, paid = world
    CouponTemplateItem(*keys.coupon_template(PROGRAM, "load-5off")).update(actions=[CouponTemplateItem.issued.add(1)])
    twice = effects + [{**effects[2], "key": "u2"}]
    _, problems = _check(member, twice, paid)
    assert problems["coupons"] == ["template load-5off: issued counter 3 != 2 coupons issued",
                                   f"coupon {effects[0]['answer']['code']} answered used by 2 requests"]


def test_a_wallet_apart_from_its_history_and_an_uncredited_top_up_are_caught(world):
    from chalicelib.store import keys
    from chalicelib.store.models import StoredValueItem

    member, effects, paid = world
    StoredValueItem(*keys.stored_value(PROGRAM, member)).update(actions=[StoredValueItem.principal.add(1)])
    issues, problems = _check(member, effects, paid + [{"member": member, "top_up_id": "t2", "fen": 11_000}])
    assert "stored value: principal 10001 / bonus 1000 != history 10000 / 1000" in issues
    assert problems["stored_value"] == ["top-up t2: history row None, paid 11000 fen"]
    _, unexplained = _check(member, effects, [])
    assert unexplained["stored_value"] == [f"{member}: top_up row SV#topup#t1 no paid top-up or answered payment "
                                           "explains"]
