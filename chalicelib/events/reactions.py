"""What the service does when the table changes (registered with `stream.reacts_to`)."""

from __future__ import annotations

from typing import Any

from chalicelib.events.stream import reacts_to
from chalicelib.store import members as member_store


@reacts_to("profile")
def credit_inviter(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A member who enrolled with an invite code counts once for the member who invited them."""
    if event_name != "INSERT" or not new.get("invited_by"):
        return
    member_store.record_referral(new["program_id"], new["invited_by"], new["member_id"], new["enrolled_at"])


@reacts_to("account")
def promote_on_growth(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Growth changed: move the member up at once if a threshold was crossed."""
    if event_name == "REMOVE" or new.get("growth_months") == old.get("growth_months"):
        return
    from chalicelib.services import tiers
    from chalicelib.settings import get_settings

    tiers.promote_if_due(get_settings(), new["program_id"], new["member_id"])


@reacts_to("profile")
def reward_completed_profile(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Nickname, birthday and phone all present for the first time: the profile task pays once."""
    def complete(image: dict[str, Any]) -> bool:
        return bool(image.get("nickname") and image.get("birthday") and image.get("phone_hash"))

    if event_name == "REMOVE" or not complete(new) or complete(old):
        return
    from chalicelib.services import checkins
    from chalicelib.settings import get_settings

    checkins.complete_task(get_settings(), new["program_id"], new["member_id"], "complete_profile")
