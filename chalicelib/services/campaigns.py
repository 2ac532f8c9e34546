"""Segments and targeted coupon campaigns.

A campaign's first run evaluates its segment over every member (account, tags, RFM and profile:
one BatchGetItem per 25 members) and snapshots the matching members on the campaign item; every
run then grants the template to the snapshot in chunks of 100 through the coupons service, with
request ids derived from the campaign, so a rerun (or a resumed crash) issues nothing more.

A subscribe-message campaign (`message`) queues one notification job per snapshotted member through
the notifications service (job keyed `NOTIFY#cmp#<campaign>`, so a member gets it once, ever); a
member without a send credit for the program's `campaign` template is skipped (`no_consent`), and
the stream sender spends one credit per message it sends. Rate: at most `daily_limit` messages are
queued per campaign per program day (default 1,000); a run that reaches it stops, reports
`remaining`, and the next run on a later day continues from where it stopped.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib import clock, ids
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.domain.segments import MemberFacts, SegmentRules, matches
from chalicelib.errors import Conflict, NotFound
from chalicelib.domain import notifications as notify_rules
from chalicelib.errors import InvalidRequest
from chalicelib.services import coupons, ledger, notifications
from chalicelib.services.programs import program_config
from chalicelib.services.rfm import member_ids
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.jobs import JobContext, Step
from chalicelib.store.models import (
    AccountItem,
    CampaignItem,
    ProfileItem,
    RfmItem,
    SegmentItem,
    SubscriptionItem,
    TableItem,
    TagsItem,
)

CHUNK = 100
# The snapshot lives on the campaign item (400 KB): about 15,000 member ids.
MAX_CAMPAIGN_MEMBERS = 15_000
# Subscribe messages queued per campaign per program day unless the run says otherwise.
DEFAULT_DAILY_MESSAGES = 1_000


class CampaignMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: str = Field(min_length=1, max_length=20, description="The template's thing1 (20 characters).")
    text: str = Field(default="", max_length=20, description="The template's thing2 (20 characters).")


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=64)
    rules: SegmentRules


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    segment_id: str = Field(pattern=ids.ID_PATTERN)
    template_id: str | None = Field(default=None, pattern=ids.ID_PATTERN,
                                    description="A coupon campaign: the template granted to each member.")
    points: int | None = Field(default=None, ge=1, le=1_000_000,
                               description="A points bonus: added to each member (a staff adjustment, ledger row).")
    message: CampaignMessage | None = Field(
        default=None, description="A subscribe message through the program's `campaign` template, to members "
                                  "holding a send credit for it (others are skipped: no_consent).")
    daily_limit: int = Field(default=DEFAULT_DAILY_MESSAGES, ge=1, le=100_000,
                             description="Message campaigns: at most this many messages queued per program day; "
                                         "the next day's run continues.")

    @model_validator(mode="after")
    def _one_action(self) -> "CampaignIn":
        if [self.template_id, self.points, self.message].count(None) != 2:
            raise ValueError("give one of template_id (a coupon), points (a bonus) or message (a subscribe message)")
        return self

    def action(self) -> dict[str, Any]:
        if self.template_id is not None:
            return {"type": "coupon", "template_id": self.template_id}
        if self.message is not None:
            return {"type": "message", "title": self.message.title, "text": self.message.text}
        return {"type": "points", "points": self.points}


def put_segment(program_id: str, segment_id: str, body: SegmentIn) -> dict[str, Any]:
    SegmentItem(*keys.segment(program_id, segment_id), program_id=program_id, segment_id=segment_id,
                rules={"name": body.name, **body.rules.model_dump(mode="json", exclude_none=True)},
                updated_at=clock.stamp(clock.now())).save()
    return {"segment_id": segment_id, "name": body.name, "rules": body.rules.model_dump(mode="json", exclude_none=True)}


def _rules(program_id: str, segment_id: str) -> SegmentRules:
    item = store.get_item(SegmentItem, keys.segment(program_id, segment_id))
    if not isinstance(item, SegmentItem):
        raise NotFound("no such segment", code="segment_not_found")
    return SegmentRules.model_validate({k: v for k, v in dict(item.rules).items() if k != "name"})


def evaluate(settings: Settings, program_id: str, rules: SegmentRules) -> list[str]:
    """The members the rules match today, in member id order."""
    today = program_config(settings, program_id).today(clock.now())
    everyone = sorted(member_ids(program_id))
    matched = []
    for start in range(0, len(everyone), 25):
        batch = everyone[start:start + 25]
        wanted = [k for m in batch for k in (keys.account(program_id, m), keys.member_tags(program_id, m),
                                             keys.rfm(program_id, m), keys.profile(program_id, m))]
        found = store.read_items(wanted)
        for member_id in batch:
            account = found.get(keys.account(program_id, member_id))
            if not isinstance(account, AccountItem):
                continue
            tags = found.get(keys.member_tags(program_id, member_id))
            scores = found.get(keys.rfm(program_id, member_id))
            profile = found.get(keys.profile(program_id, member_id))
            facts = MemberFacts(
                member_id=member_id, tier=str(account.tier), points=int(account.points),
                last_active_on=account.last_active_on,
                birthday=profile.birthday if isinstance(profile, ProfileItem) else None,
                tags=frozenset((tags.manual or set()) | (tags.computed or set())) if isinstance(tags, TagsItem)
                else frozenset(),
                rfm_segment=scores.segment if isinstance(scores, RfmItem) else None,
                membership_until=account.membership_until)
            if matches(rules, facts, today):
                matched.append(member_id)
    return matched


def segments_of(program_id: str) -> list[SegmentItem]:
    return [item for item in TableItem.query(keys.segments_partition(program_id)) if isinstance(item, SegmentItem)]


def list_segments(program_id: str) -> dict[str, Any]:
    return {"items": [{"segment_id": item.segment_id, "name": str(dict(item.rules).get("name", "")),
                       "rules": {k: v for k, v in dict(item.rules).items() if k != "name"},
                       "members_count": None if item.members_count is None else int(item.members_count),
                       "evaluated_on": item.evaluated_on} for item in segments_of(program_id)]}


def segments_step(ctx: JobContext) -> Step:
    """`segments`: evaluate every segment of the program and record its size and day."""
    sizes = {}
    for item in segments_of(ctx.program_id):
        rules = SegmentRules.model_validate({k: v for k, v in dict(item.rules).items() if k != "name"})
        sizes[str(item.segment_id)] = len(evaluate(ctx.settings, ctx.program_id, rules))
        SegmentItem(item.pk, item.sk).update(actions=[SegmentItem.members_count.set(sizes[str(item.segment_id)]),
                                                      SegmentItem.evaluated_on.set(ctx.as_of.isoformat())])
    return Step(done=True, summary={"segments": sizes})


def run_campaign(settings: Settings, staff: StaffPrincipal, campaign_id: str, body: CampaignIn) -> dict[str, Any]:
    program_id = staff.program_id
    key = keys.campaign(program_id, campaign_id)
    item = store.get_item(CampaignItem, key)
    action = body.action()
    if isinstance(item, CampaignItem):
        if item.segment_id != body.segment_id or dict(item.action) != action:
            raise Conflict("this campaign_id was already used for another segment or action",
                           code="idempotency_conflict")
    else:
        if body.message is not None and program_config(settings, program_id).templates.get(notify_rules.CAMPAIGN) is None:
            raise InvalidRequest("the program has no subscribe template for the `campaign` event",
                                 code="no_campaign_template")
        members = evaluate(settings, program_id, _rules(program_id, body.segment_id))
        if len(members) > MAX_CAMPAIGN_MEMBERS:
            raise Conflict(f"the segment has {len(members)} members; a campaign takes at most "
                           f"{MAX_CAMPAIGN_MEMBERS}", code="segment_too_large")
        item = CampaignItem(*key, program_id=program_id, campaign_id=campaign_id, segment_id=body.segment_id,
                            action=action, members=members, created_at=clock.stamp(clock.now()))
        try:
            item.save(condition=CampaignItem.pk.does_not_exist())
        except PutError as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
            item = store.get_item(CampaignItem, key)  # a concurrent first run snapshotted first: its snapshot
    members = list(item.members)
    if body.message is not None:
        return _send_messages(settings, item, body)
    sent, skipped = 0, dict[str, int]()
    if body.template_id is not None:
        for n in range(0, len(members), CHUNK):
            answer, _ = coupons.grant(settings, staff, body.template_id, coupons.GrantIn(
                member_ids=members[n:n + CHUNK], request_id=f"cmp-{campaign_id}-{n // CHUNK}"))
            sent += int(answer["granted"])
            for refusal in answer["refused"]:
                skipped[refusal["code"]] = skipped.get(refusal["code"], 0) + 1
    else:
        assert body.points is not None
        bonus = ledger.AdjustmentIn(points=body.points, reason=f"campaign {campaign_id}", request_id=f"cmp-{campaign_id}")
        for member_id in members:
            try:  # keyed per member by the campaign: a rerun replays
                ledger.adjust(settings, staff, member_id, bonus)
                sent += 1
            except NotFound:
                skipped["member_not_found"] = skipped.get("member_not_found", 0) + 1
    summary = {"campaign_id": campaign_id, "segment_id": body.segment_id, "action": action,
               "members": len(members), "sent": sent, "skipped": skipped, "snapshot_at": item.created_at,
               "remaining": 0}
    CampaignItem(*key).update(actions=[CampaignItem.summary.set(summary)])
    return summary


def _send_messages(settings: Settings, item: CampaignItem, body: CampaignIn) -> dict[str, Any]:
    """Queue the campaign's message to the next members of the snapshot, up to today's limit."""
    assert body.message is not None
    program_id, campaign_id = str(item.program_id), str(item.campaign_id)
    config = program_config(settings, program_id)
    template = config.templates.get(notify_rules.CAMPAIGN)
    if template is None:
        raise InvalidRequest("the program has no subscribe template for the `campaign` event",
                             code="no_campaign_template")
    members = list(item.members)
    today = config.today(clock.now()).isoformat()
    previous = dict(item.progress) if item.progress is not None else None
    progress = dict(previous or {"cursor": 0, "queued": 0, "skipped": {}, "day": today, "today": 0})
    skipped = dict(progress["skipped"])
    if progress["day"] != today:
        progress["day"], progress["today"] = today, 0
    cursor, queued, today_count = int(progress["cursor"]), int(progress["queued"]), int(progress["today"])
    variables = {"title": body.message.title, "text": body.message.text}
    while cursor < len(members) and today_count < body.daily_limit:
        batch = members[cursor:cursor + min(25, body.daily_limit - today_count)]
        found = store.read_items([keys.subscription(program_id, m, template.template_id) for m in batch])
        for member_id in batch:
            credit = found.get(keys.subscription(program_id, member_id, template.template_id))
            if not isinstance(credit, SubscriptionItem) or int(credit.credits) < 1:
                skipped["no_consent"] = skipped.get("no_consent", 0) + 1
                continue
            # Keyed by the campaign: a member already queued (a run that crashed before saving its
            # progress) is not queued again, and is counted once, here.
            notifications.enqueue(settings, program_id, member_id, notify_rules.CAMPAIGN,
                                  f"cmp#{campaign_id}", variables)
            queued += 1
            today_count += 1
        cursor += len(batch)
    progress.update(cursor=cursor, queued=queued, skipped=skipped, today=today_count)
    summary = {"campaign_id": campaign_id, "segment_id": str(item.segment_id), "action": dict(item.action),
               "members": len(members), "sent": queued, "skipped": skipped, "snapshot_at": item.created_at,
               "remaining": len(members) - cursor}
    condition = (CampaignItem.progress.does_not_exist() if previous is None
                 else CampaignItem.progress == previous)
    try:  # two runs at once: one saves, the other is told to retry (its jobs were keyed, none doubled)
        CampaignItem(item.pk, item.sk).update(
            actions=[CampaignItem.progress.set(progress), CampaignItem.summary.set(summary)], condition=condition)
    except Exception as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            raise Conflict("another run of this campaign is in progress; run it again",
                           code="campaign_busy") from None
        raise
    return summary
