"""Seeds the local stack's `demo` program with the published dev defaults (../shared/API.md).

Refused outside the local stage: these keys are public knowledge."""

from __future__ import annotations

import functools

from chalicelib.auth.staff import DEV_ADMIN_KEY
from chalicelib.auth.till import DEV_TILL_KEY_ID
from chalicelib.domain.program import demo_program
from chalicelib.settings import get_settings
from chalicelib.services import coupons, rewards, staff
from chalicelib.services.staff import DEV_OWNER_PASSWORD, DEV_OWNER_USERNAME
from chalicelib.store import credentials
from chalicelib.store import keys, programs
from chalicelib.store import ledger as store_ledger
from chalicelib.store.models import CouponTemplateItem, RewardItem

DEV_TILL_SECRET = "dev-pos-secret"
DEV_WECHAT_SECRET = "dev-wechat-secret"


def seed_demo_program() -> None:
    settings = get_settings()
    if not settings.is_local:
        raise RuntimeError("the demo program is seeded only in the local stage")
    if programs.get_program(settings, "demo") is None:
        programs.save_program(settings, demo_program(), wechat_secret=DEV_WECHAT_SECRET)
    programs.save_admin_key("demo", "demo staff", DEV_ADMIN_KEY)
    programs.save_till_key(settings, "demo", DEV_TILL_KEY_ID, DEV_TILL_SECRET, store_id="demo-store-1")
    if store_ledger.get_item(RewardItem, keys.reward("demo", "demo-cup")) is None:
        rewards.put_reward("demo", "demo-cup", rewards.RewardIn(name="Demo cup", points_price=100, stock=1000))
    if store_ledger.get_item(CouponTemplateItem, keys.coupon_template("demo", "demo-10off")) is None:
        # 10 yuan off orders of 100 yuan or more, 30 days from issue, 100 in all, 1 per member, free.
        coupons.seed_template("demo", "demo-10off", coupons.TemplateIn(
            name="满100减10", kind="amount_off", threshold_fen=10_000, off_fen=1_000, valid_days=30, total=100,
            per_member_limit=1, claimable=True, points_price=0))
    # The demo's first staff account (owner / dev-owner-password): local only, like every dev default.
    staff.seed_owner("demo", DEV_OWNER_USERNAME, _dev_owner_hash())
    programs.clear_cache()
    from chalicelib.services import lottery_seeds  # issue 14: demo-wheel's seed commitment, published before it opens

    program = programs.get_program(settings, "demo", fresh=True)
    if program is not None:
        lottery_seeds.publish_seeds(settings, program.config)


@functools.lru_cache(maxsize=1)
def _dev_owner_hash() -> str:
    # argon2 is slow on purpose: hashed once per process (tests seed a fresh table each time).
    return credentials.hash_password(DEV_OWNER_PASSWORD)


def seed_demo_activity() -> list[str]:
    """Opt-in demo activity (the local stack runs it when LOYALTY_DEMO_ACTIVITY=1): three members
    enrolled and an order each, through the same services as the API, so the daily report and the
    console's charts show figures once the stream has counted them. Idempotent (same members and
    order ids every time). Returns the member ids."""
    import datetime as dt

    from chalicelib import clock
    from chalicelib.auth.principals import MemberPrincipal, TillPrincipal
    from chalicelib.errors import IdempotencyConflict
    from chalicelib.services import ledger, members
    from chalicelib.store import members as member_store

    settings = get_settings()
    if not settings.is_local:
        raise RuntimeError("demo activity is seeded only in the local stage")
    till = TillPrincipal(program_id="demo", key_id=DEV_TILL_KEY_ID, store_id="demo-store-1")
    member_ids = []
    for n, amount_fen in enumerate((12_800, 35_600, 8_800)):
        openid = f"demo-seed-{n}"
        member_store.record_login("demo", openid, None, "", clock.stamp(clock.now()))
        card, _ = members.enroll(settings, MemberPrincipal(program_id="demo", openid=openid, member_id=None),
                                 members.EnrollIn(nickname=f"演示会员{n + 1}"))
        member_id = str(card["member_id"])
        try:
            ledger.accrue_order(settings, till, ledger.OrderIn(
                order_id=f"demo-seed-order-{n}", member_id=member_id, amount_fen=amount_fen,
                paid_at=clock.now() - dt.timedelta(minutes=1)))
        except IdempotencyConflict:
            pass  # recorded by an earlier start (with its own paid_at)
        member_ids.append(member_id)
    return member_ids


if __name__ == "__main__":
    seed_demo_program()
