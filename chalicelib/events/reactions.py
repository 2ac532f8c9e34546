"""What the service does when the table changes. `wiring.py` says which item kinds each
reaction sees."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from chalicelib.store import members as member_store


def credit_inviter(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A member who enrolled with an invite code counts once for the member who invited them."""
    if event_name != "INSERT" or not new.get("invited_by"):
        return
    member_store.record_referral(new["program_id"], new["invited_by"], new["member_id"], new["enrolled_at"])


def promote_on_growth(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Growth changed: move the member up at once if a threshold was crossed."""
    if event_name == "REMOVE" or new.get("growth_months") == old.get("growth_months"):
        return
    from chalicelib.services import tiers
    from chalicelib.settings import get_settings

    tiers.promote_if_due(get_settings(), new["program_id"], new["member_id"])


def reward_completed_profile(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Nickname, birthday and phone all present for the first time: the profile task pays once."""
    def complete(image: dict[str, Any]) -> bool:
        return bool(image.get("nickname") and image.get("birthday") and image.get("phone_hash"))

    if event_name == "REMOVE" or not complete(new) or complete(old):
        return
    from chalicelib.services import checkins
    from chalicelib.settings import get_settings

    checkins.complete_task(get_settings(), new["program_id"], new["member_id"], "complete_profile")


# --- notifications: table changes -> notification jobs (sent by the second stream function) --

def _enqueue(new: dict[str, Any], event: str, dedupe_key: str, variables: dict[str, Any]) -> None:
    from chalicelib.services import notifications
    from chalicelib.settings import get_settings

    notifications.enqueue(get_settings(), new["program_id"], new["member_id"], event, dedupe_key, variables)


def _day(new: dict[str, Any], stamp_field: str = "created_at") -> str:
    from chalicelib.services.programs import program_config
    from chalicelib.settings import get_settings

    moment = dt.datetime.fromisoformat(new[stamp_field])
    return program_config(get_settings(), new["program_id"]).local_day(moment).isoformat()


def notify_points_changed(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    from chalicelib.domain import notifications as rules

    # A lottery draw's points (issue 14) are shown in the app at once: no subscribe message per draw.
    if str(new.get("ref") or "").startswith("lottery:"):
        return
    if event_name == "INSERT" and new.get("type") in rules.NOTIFIED_LEDGER_TYPES and int(new.get("points", 0)):
        _enqueue(new, rules.POINTS_CHANGED, f"points#{new['entry_id']}", {
            "type": new["type"], "points": int(new["points"]), "balance": int(new["balance_after"]),
            "reason": new["reason"], "date": _day(new)})


def notify_redemption_status(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A redemption made or cancelled: one message per status it reaches."""
    from chalicelib.domain import notifications as rules

    if event_name == "REMOVE":
        return
    status, before = new.get("status"), (old or {}).get("status")
    if status and status != before:
        _enqueue(new, rules.REDEMPTION_STATUS, f"redemption#{new['redemption_id']}#{status}", {
            "reward": f"redeemed {int(new['quantity'])} x {new['reward_name']}",
            "status": {"redeemed": "已兑换", "cancelled": "已取消"}.get(status, status),
            "points": int(new["points_spent"])})


def notify_tier_changed(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    from chalicelib.domain import notifications as rules
    from chalicelib.services.programs import program_config
    from chalicelib.settings import get_settings

    if event_name != "INSERT" or new["from_tier"] == new["to_tier"]:
        return
    config = program_config(get_settings(), new["program_id"])
    _enqueue(new, rules.TIER_CHANGED, f"tier#{new['sk']}", {
        "tier_name": config.tier(new["to_tier"]).name, "from_tier_name": config.tier(new["from_tier"]).name,
        "direction": new["direction"], "date": _day(new)})


def notify_points_expiring(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    from chalicelib.domain import notifications as rules

    if event_name != "INSERT":
        return
    lots = json.loads(new["lots"])
    soonest = min(lots, key=lambda lot: lot["date"])
    _enqueue(new, rules.POINTS_EXPIRING, f"expiring#{new['day']}", {
        "points": int(new["points"]), "expires_on": soonest["date"], "days_left": soonest["days_left"]})


def notify_winback(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    from chalicelib.domain import notifications as rules
    from chalicelib.store import keys
    from chalicelib.store import ledger as store
    from chalicelib.store.models import AccountItem

    if event_name != "INSERT":
        return
    account = store.get_item(AccountItem, keys.account(new["program_id"], new["member_id"]))
    _enqueue(new, rules.WINBACK, f"winback#{new['last_active']}", {
        "days_idle": int(new["days_idle"]), "points": int(account.points) if account else 0})


# --- automatic coupons (program rules: coupon_gifts) ------------------------------------------
# Each gift is issued once per member and cause (services/coupons.py `gift`), so a redelivered
# record issues nothing more.

def gift_coupons_on_enrol(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    if event_name != "INSERT":
        return
    from chalicelib.services import coupons
    from chalicelib.settings import get_settings

    coupons.gift_on_enrol(get_settings(), new["program_id"], new["member_id"])


def gift_coupons_on_tier(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Reaching a tier (an upgrade or a staff grant), not a review dropping to it."""
    if event_name != "INSERT" or new.get("direction") not in ("up", "grant") or new["from_tier"] == new["to_tier"]:
        return
    from chalicelib.services import coupons
    from chalicelib.settings import get_settings

    coupons.gift_on_tier(get_settings(), new["program_id"], new["member_id"], new["to_tier"])


def gift_coupons_on_redemption(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A points-mall reward that is a coupon: issued when the redemption is made."""
    if event_name != "INSERT" or new.get("status") != "redeemed":
        return
    from chalicelib.services import coupons
    from chalicelib.settings import get_settings

    coupons.gift_on_redemption(get_settings(), new["program_id"], new["member_id"], new["reward_id"],
                               new["redemption_id"])


# --- webhooks: table changes -> events and their deliveries (sent by the third stream function) --

def publish_webhook_events(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """The events this change makes (domain/webhooks.py's RULES), once, with their deliveries."""
    from chalicelib.services import webhooks
    from chalicelib.settings import get_settings

    webhooks.publish(get_settings(), event_name, new, old)


# --- paid membership and lotteries (issue 14) -------------------------------------------------

def membership_first_pack(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """An entitlement started: its first monthly coupon pack (once per entitlement)."""
    if event_name != "INSERT":
        return
    from chalicelib.services import membership
    from chalicelib.settings import get_settings

    membership.first_pack(get_settings(), new["program_id"], new["member_id"], new["source_id"])


def issue_draw_coupon(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A draw won a coupon: issued once per draw (coupons.gift guards per cause)."""
    if event_name != "INSERT" or new.get("prize_kind") != "coupon" or not new.get("template_id"):
        return
    from chalicelib.services import coupons
    from chalicelib.settings import get_settings

    coupons.gift(get_settings(), new["program_id"], new["member_id"], [new["template_id"]], f"draw:{new['draw_id']}")


# --- referral rewards (issue 14): enrolment, first paid order, a full refund of it -----------

def referral_on_enrolment(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    if event_name != "INSERT" or not new.get("invited_by"):
        return
    from chalicelib.services import referral
    from chalicelib.settings import get_settings

    referral.on_enrolment(get_settings(), new["program_id"], new["invited_by"], new["member_id"])


def referral_on_order(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    if event_name != "INSERT" or not new.get("ref"):
        return
    from chalicelib.services import referral
    from chalicelib.settings import get_settings

    referral.on_order(get_settings(), new["program_id"], new["member_id"], new["ref"])


def referral_on_refund(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A refund's `reverse` row names its order in `ref`."""
    ref = str(new.get("ref") or "")
    if event_name != "INSERT" or new.get("type") != "reverse" or not ref or ref.startswith("referral:"):
        return
    from chalicelib.services import referral
    from chalicelib.settings import get_settings

    referral.on_refund(get_settings(), new["program_id"], new["member_id"], ref)
