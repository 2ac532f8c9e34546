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
