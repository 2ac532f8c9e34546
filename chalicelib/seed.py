"""Seeds the local stack's `demo` program with the published dev defaults (../shared/API.md).

Refused outside the local stage: these keys are public knowledge."""

from __future__ import annotations

from chalicelib.auth.staff import DEV_ADMIN_KEY
from chalicelib.auth.till import DEV_TILL_KEY_ID
from chalicelib.domain.program import demo_program
from chalicelib.settings import get_settings
from chalicelib.services import rewards
from chalicelib.store import keys, programs
from chalicelib.store import ledger as store_ledger
from chalicelib.store.models import RewardItem

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
    programs.clear_cache()


if __name__ == "__main__":
    seed_demo_program()
