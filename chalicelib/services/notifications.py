"""Subscribe messages: consent credits, notification jobs, sending.

Flow: a table change (a ledger row, a tier move, a reminder...) -> `enqueue` writes a notification
job keyed by the event (a redelivered record finds it and stops) -> its INSERT reaches the sender
-> `send` takes one of the member's credits for the template and marks the job `sending` in one
transaction (no credit: dropped, reason no_consent) -> WeChat -> `sent`, or `dropped` with
WeChat's reason (refused, quota, bad template), or back to `queued` with the credit returned and
an error raised, so the stream retries the record and finally parks it on the failure queue.
A job that is not `queued` is never sent again: a message goes out at most once.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.exceptions import PutError

from chalicelib import clock, metrics
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.domain import notifications as rules
from chalicelib.errors import InvalidRequest
from chalicelib.logs import logger
from chalicelib.services.members import resolve_member_id
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import NotificationItem, ProfileItem, SubscriptionItem, TableItem
from chalicelib.store.tx import ConditionsFailed, Transaction

# WeChat answers after which retrying cannot help: refused by the user, quota, bad template/page.
_DROP_CODES = {43101: "user_refused", 45009: "quota_exceeded", 43104: "quota_exceeded",
               40037: "invalid_template", 47003: "invalid_template_data", 41030: "invalid_page"}
_KEEP_DAYS = 90


class SubscribeIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")
    template_ids: list[str] = Field(min_length=1, max_length=20)
    # Optional: the same request_id again adds nothing (a retried request after a timeout).
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")


def subscribe(settings: Settings, principal: MemberPrincipal, body: SubscribeIn) -> dict[str, Any]:
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    config = program_config(settings, program_id)
    unknown = [t for t in body.template_ids if config.template_for(t) is None]
    if unknown:
        raise InvalidRequest(f"templates not used by this program: {unknown}", code="unknown_template")
    accepted: dict[str, int] = {}
    for template_id in body.template_ids:
        accepted[template_id] = accepted.get(template_id, 0) + 1
    tx = Transaction()
    for template_id, count in accepted.items():
        queue_pk, queue_sk = keys.subscribers_queue(program_id, template_id, member_id)
        tx.update(SubscriptionItem(*keys.subscription(program_id, member_id, template_id)), actions=[
            SubscriptionItem.kind.set(SubscriptionItem), SubscriptionItem.program_id.set(program_id),
            SubscriptionItem.member_id.set(member_id), SubscriptionItem.template_id.set(template_id),
            SubscriptionItem.credits.add(count),
            SubscriptionItem.gsi2pk.set(queue_pk), SubscriptionItem.gsi2sk.set(queue_sk),
        ], label=f"sub:{template_id}")
    if body.request_id:
        # A marker row: the same request_id again cancels the whole transaction, adding nothing.
        marker = SubscriptionItem(*keys.subscription_request(program_id, member_id, body.request_id),
                                  program_id=program_id, member_id=member_id, template_id="*", credits=0)
        tx.put(marker, SubscriptionItem.pk.does_not_exist(), label="request")
    try:
        tx.commit()
    except ConditionsFailed as failed:
        if "request" not in failed.labels:
            raise
    return {"credits": credits(program_id, member_id)}


def credits(program_id: str, member_id: str) -> dict[str, int]:
    return {item.template_id: int(item.credits)
            for item in SubscriptionItem.query(keys.member_pk(program_id, member_id),
                                               SubscriptionItem.sk.startswith("SUB#"))
            if isinstance(item, SubscriptionItem)}


def enqueue(settings: Settings, program_id: str, member_id: str, event: str, dedupe_key: str,
            variables: dict[str, Any]) -> bool:
    """Create the job for an event, once; False if the program sends nothing for it or it exists."""
    config = program_config(settings, program_id)
    template = config.templates.get(event)
    if template is None:
        return False
    message = rules.render(event, template, variables)
    now = clock.now()
    job = NotificationItem(
        *keys.notification(program_id, member_id, dedupe_key), program_id=program_id, member_id=member_id,
        event=event, template_id=message.template_id, data=message.data, page=message.page, status="queued",
        created_at=clock.stamp(now), ttl=dt.timedelta(days=_KEEP_DAYS),
    )
    try:
        job.save(condition=NotificationItem.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _openid(program_id: str, member_id: str) -> str | None:
    profile = store.get_item(ProfileItem, keys.profile(program_id, member_id))
    return profile.openid if profile else None


def _set_status(job: NotificationItem, status: str, reason: str | None, expected: str) -> None:
    job.update(actions=[NotificationItem.status.set(status),
                        NotificationItem.reason.set(reason) if reason else NotificationItem.reason.remove(),
                        NotificationItem.updated_at.set(clock.stamp(clock.now()))],
               condition=NotificationItem.status == expected)


def send(settings: Settings, program_id: str, member_id: str, sk: str) -> str:
    """Send one queued job; returns its final status. Raises to have the stream retry it."""
    job = store.get_item(NotificationItem, (keys.member_pk(program_id, member_id), sk))
    if job is None or job.status != "queued":
        return job.status if job else "missing"
    credit_key = keys.subscription(program_id, member_id, job.template_id)
    tx = Transaction()
    tx.update(SubscriptionItem(*credit_key), actions=[SubscriptionItem.credits.add(-1)],
              condition=SubscriptionItem.credits >= 1, label="credit")
    tx.update(job, actions=[NotificationItem.status.set("sending"), NotificationItem.attempts.add(1),
                            NotificationItem.updated_at.set(clock.stamp(clock.now()))],
              condition=NotificationItem.status == "queued", label="job")
    try:
        tx.commit()
    except ConditionsFailed as failed:
        if "job" in failed.labels:
            return "skipped"  # another delivery of the record got here first
        _set_status(job, "dropped", "no_consent", "queued")
        return "dropped"
    openid = _openid(program_id, member_id)
    if openid is None:
        _set_status(job, "dropped", "member_gone", "sending")
        return "dropped"
    from chalicelib.wechat import gateway

    try:
        gateway.for_program(settings, program_id).send_subscribe_message(openid, job.template_id, job.data, job.page)
    except gateway.WechatError as exc:
        reason = _DROP_CODES.get(exc.errcode)
        if reason is not None:
            _set_status(job, "dropped", reason, "sending")
            logger().info("notification dropped", extra={"event": job.event, "reason": reason})
            return "dropped"
        _give_back(job, credit_key)
        raise
    except Exception:
        _give_back(job, credit_key)
        raise
    _set_status(job, "sent", None, "sending")
    return "sent"


def _give_back(job: NotificationItem, credit_key: tuple[str, str]) -> None:
    """A transient failure: the credit returns and the job is queued again for the retry."""
    tx = Transaction()
    tx.update(SubscriptionItem(*credit_key), actions=[SubscriptionItem.credits.add(1)], label="credit")
    tx.update(job, actions=[NotificationItem.status.set("queued")],
              condition=NotificationItem.status == "sending", label="job")
    tx.commit()
    # Back off a little before the stream redelivers (it retries at once).
    time.sleep(min(2.0, 0.2 * 2 ** int(job.attempts or 0)))


def handle_send_batch(event: dict[str, Any]) -> dict[str, Any]:
    """The sender: new notification jobs in, messages out; failures reported per record."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from chalicelib.settings import get_settings

    if not event.get("Records"):
        return {"batchItemFailures": []}
    settings = get_settings()

    def handle(record: Any) -> None:
        new = record.dynamodb.new_image or {}
        if record.event_name.name != "INSERT" or new.get("kind") != "notification":
            return
        try:
            outcome = send(settings, new["program_id"], new["member_id"], new["sk"])
        except Exception:
            metrics.emit("Notifications", outcome="failed")  # retried by the stream, then parked
            raise
        metrics.emit("Notifications", outcome=outcome)

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return dict(process_partial_response(event=event, record_handler=handle, processor=processor))


CHECKIN_REMINDER_PAGE = 100


def checkin_reminder_step(ctx: Any) -> Any:
    """Opt-in: members holding credits for the check-in template who have not checked in today."""
    from chalicelib.domain import checkin
    from chalicelib.jobs import Step
    from chalicelib.store.models import CheckinStateItem

    config = program_config(ctx.settings, ctx.program_id)
    template = config.templates.get(rules.CHECKIN_REMINDER)
    shard = int(ctx.state.get("shard", 0))
    if template is None:
        return Step(True, {}, {"reminders": 0})
    queued = 0
    query = TableItem.gsi2.query(keys.subscribers_queue_partition(ctx.program_id, template.template_id, shard),
                                 limit=CHECKIN_REMINDER_PAGE, last_evaluated_key=ctx.state.get("last_key"))
    for sub in query:
        if not isinstance(sub, SubscriptionItem) or int(sub.credits) < 1:
            continue
        state = store.get_item(CheckinStateItem, keys.checkin_state(ctx.program_id, sub.member_id))
        last = dt.date.fromisoformat(state.last_date) if state else None
        if last == ctx.as_of:
            continue
        streak = checkin.next_streak(last, int(state.streak) if state else 0, ctx.as_of)
        reward = checkin.reward(config.checkin, streak)
        queued += enqueue(ctx.settings, ctx.program_id, sub.member_id, rules.CHECKIN_REMINDER,
                          f"checkin#{ctx.as_of.isoformat()}", {"points": reward.points, "streak": streak - 1})
    if query.last_evaluated_key:  # a page at a time: the run checkpoints between pages
        return Step(False, {"shard": shard, "last_key": query.last_evaluated_key}, {"reminders": queued})
    return Step(shard + 1 >= keys.MEMBER_SHARDS, {"shard": shard + 1}, {"reminders": queued})

