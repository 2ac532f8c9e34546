"""Staff tags on members (manual), kept apart from the tags jobs compute. Adding a tag the member
has, or removing one they lack, changes nothing: set ADD/DELETE on one item, no read first."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib import clock
from chalicelib.services.ledger import require_member
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import TagsItem


def view(program_id: str, member_id: str) -> dict[str, Any]:
    require_member(program_id, member_id)
    item = store.get_item(TagsItem, keys.member_tags(program_id, member_id))
    return {"member_id": member_id,
            "manual": sorted(item.manual or ()) if item else [],
            "computed": sorted(item.computed or ()) if item else []}


def add(program_id: str, member_id: str, tag: str) -> dict[str, Any]:
    require_member(program_id, member_id)
    TagsItem(*keys.member_tags(program_id, member_id)).update(actions=[
        TagsItem.kind.set(TagsItem), TagsItem.program_id.set(program_id), TagsItem.member_id.set(member_id),
        TagsItem.manual.add({tag}), TagsItem.updated_at.set(clock.stamp(clock.now())),
    ])
    return view(program_id, member_id)


def remove(program_id: str, member_id: str, tag: str) -> dict[str, Any]:
    require_member(program_id, member_id)
    item = TagsItem(*keys.member_tags(program_id, member_id))
    try:
        item.update(actions=[TagsItem.manual.delete({tag}), TagsItem.updated_at.set(clock.stamp(clock.now()))],
                    condition=TagsItem.pk.exists())
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
    return view(program_id, member_id)
