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


# --- computed tags (insight, second pass) --------------------------------------------------------

def computed_tags_step(ctx: Any) -> Any:
    """`computed-tags` (after `rfm`, before `segments`): each member's computed tags (domain/tagging.py)
    from the account, profile and RFM scores (one BatchGetItem per 25 members), written only where
    they changed (SET computed; the manual tags are never touched): a rerun writes nothing."""
    import datetime as dt

    from chalicelib.domain import tagging
    from chalicelib.jobs import Step
    from chalicelib.services.programs import program_config
    from chalicelib.services.rfm import member_ids
    from chalicelib.store.models import AccountItem, ProfileItem, RfmItem

    config = program_config(ctx.settings, ctx.program_id)
    program_id, today = ctx.program_id, ctx.as_of
    everyone = sorted(member_ids(program_id))
    changed = 0
    counts: dict[str, int] = {}
    now = clock.stamp(clock.now())
    for start in range(0, len(everyone), 25):
        batch = everyone[start:start + 25]
        wanted = [k for m in batch for k in (keys.account(program_id, m), keys.profile(program_id, m),
                                             keys.rfm(program_id, m), keys.member_tags(program_id, m))]
        found = store.read_items(wanted)
        for member_id in batch:
            account = found.get(keys.account(program_id, member_id))
            profile = found.get(keys.profile(program_id, member_id))
            if not isinstance(account, AccountItem) or not isinstance(profile, ProfileItem):
                continue
            scores = found.get(keys.rfm(program_id, member_id))
            held = found.get(keys.member_tags(program_id, member_id))
            tags = tagging.computed_tags(
                today, config.local_day(dt.datetime.fromisoformat(str(profile.enrolled_at))),
                dt.date.fromisoformat(account.last_active_on) if account.last_active_on else None,
                scores.segment if isinstance(scores, RfmItem) else None,
                int(scores.frequency) if isinstance(scores, RfmItem) else None)
            for tag in tags:
                counts[tag] = counts.get(tag, 0) + 1
            before = frozenset(held.computed or ()) if isinstance(held, TagsItem) else frozenset()
            if tags == before:
                continue
            TagsItem(*keys.member_tags(program_id, member_id)).update(actions=[
                TagsItem.kind.set(TagsItem), TagsItem.program_id.set(program_id), TagsItem.member_id.set(member_id),
                TagsItem.computed.set(set(tags)) if tags else TagsItem.computed.remove(),
                TagsItem.updated_at.set(now)])
            changed += 1
    return Step(done=True, summary={"members": len(everyone), "tags_changed": changed, "tagged": counts})
