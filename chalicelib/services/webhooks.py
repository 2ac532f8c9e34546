"""Webhooks: merchants' endpoints, and events out to them, signed, at least once.

Flow, like notifications: a table change (a ledger row, a profile, a tier move, a redemption)
reaches `publish` (a stream reaction, wired in wiring.py) -> one event item, keyed by the change it
comes from, and one delivery item per subscribed endpoint, in ONE transaction guarded by the
event not existing (a redelivered record writes nothing) and by the member's sequence counter ->
the delivery's INSERT reaches the second stream function, which makes the first attempt at once
-> delivered, or back on the due queue (gsi2) at its next attempt, which the frequent job
(`retry_due`) makes -> after the last retry (26.5 h) parked, listed per endpoint, replayable.
An endpoint failing again and again is paused; its deliveries park until staff resume it.

Each attempt re-resolves the host and refuses private, loopback, link-local, reserved and
multicast addresses (the local stage: only loopback), then connects to the address it checked
(no second lookup to rebind), with timeouts and without following redirects.
"""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pynamodb.exceptions import UpdateError

from chalicelib import clock, crypto
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.domain import webhooks as rules
from chalicelib.errors import Conflict, InvalidRequest, NotFound
from chalicelib.logs import logger
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import (
    ErasureItem,
    TableItem,
    WebhookCountItem,
    WebhookDeliveryItem,
    WebhookEventItem,
    WebhookItem,
    WebhookSequenceItem,
)
from chalicelib.domain.privacy import PROFILE_EVENT_TYPES
from chalicelib.store.paging import gsi1_page
from chalicelib.store.tx import ConditionsFailed, Transaction, TransactionConflict

ACTIVE, PAUSED = "active", "paused"
PENDING, DELIVERED, PARKED, DROPPED = "pending", "delivered", "parked", "dropped"
RETRIES_EXHAUSTED, ENDPOINT_PAUSED = "retries_exhausted", "endpoint_paused"
# A delivery being attempted stays off the due queue this long (longer than an attempt can take).
LEASE = dt.timedelta(minutes=1)
_LOG_KEEP = 20
_REPLAY_MAX_EVENTS = 500
_REPLAY_MAX_DAYS = 31
_DUE_DAYS_BACK = 7  # a week of missed frequent runs still catches up
_JOB_BUDGET_SECONDS = 150.0
_FIRST_DAY, _LAST_DAY = dt.date(2000, 1, 2), dt.date(2099, 12, 30)  # replays: room for any UTC offset


# --- bodies ----------------------------------------------------------------------------------

class WebhookIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")
    url: str = Field(min_length=8, max_length=2048, description="https://... (the local stage: loopback http too)")
    events: list[str] = Field(min_length=1, max_length=len(rules.EVENT_TYPES),
                              description=f"Event types: {', '.join(rules.EVENT_TYPES)}")
    rotate_secret: bool = Field(default=False, description="Replace the secret of an existing webhook; the answer "
                                "shows the new one, once (a lost secret is never shown again).")

    @field_validator("events")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(rules.EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {list(rules.EVENT_TYPES)}")
        return sorted(set(value))


class ReplayIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True)
    start: dt.datetime = Field(alias="from", description="Events created at or after this moment (with offset)")
    end: dt.datetime = Field(alias="to", description="... and before this one")

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("give the moment with its UTC offset")
        if not _FIRST_DAY <= value.date() <= _LAST_DAY:
            raise ValueError(f"a moment from {_FIRST_DAY} to {_LAST_DAY}")
        return value


# --- where an endpoint may point -------------------------------------------------------------

def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (tests replace this: nothing but loopback is ever looked up there)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def checked_address(settings: Settings, url: str) -> tuple[rules.Target, str]:
    """The URL's parts and the address to connect to, or RefusedUrl. Every address the host has
    must be allowed: one private address among public ones is refused too."""
    target = rules.parse_url(url, local=settings.is_local)
    if rules.is_ip_literal(target.host):
        addresses = [target.host]
    elif settings.is_local and target.host != "localhost":
        raise rules.RefusedUrl("the local stage sends only to loopback (127.0.0.1, ::1, localhost)")
    else:
        try:
            addresses = resolve(target.host, target.port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise rules.RefusedUrl(f"{target.host} does not resolve: {type(exc).__name__}") from None
    if not addresses:
        raise rules.RefusedUrl(f"{target.host} does not resolve")
    for address in addresses:
        reason = rules.refused_address(address, local=settings.is_local)
        if reason:
            raise rules.RefusedUrl(reason)
    return target, addresses[0]


# --- endpoints (staff) -----------------------------------------------------------------------

def _view(item: WebhookItem, secret: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "webhook_id": item.webhook_id, "url": item.url, "events": list(item.events), "status": item.status,
        "paused_reason": item.paused_reason, "paused_at": item.paused_at,
        "counters": {"delivered": int(item.delivered or 0), "failed_attempts": int(item.failed_attempts or 0),
                     "parked": int(item.parked or 0), "consecutive_failures": int(item.consecutive_failures or 0)},
        "last_success_at": item.last_success_at, "last_failure_at": item.last_failure_at,
        "last_error": item.last_error, "created_at": item.created_at,
    }
    if secret is not None:
        answer["secret"] = secret
    return answer


def _endpoint(program_id: str, webhook_id: str) -> WebhookItem:
    item = store.get_item(WebhookItem, keys.webhook(program_id, webhook_id))
    if item is None:
        raise NotFound("no such webhook", code="webhook_not_found")
    return item


def put_webhook(settings: Settings, staff: StaffPrincipal, webhook_id: str, body: WebhookIn) -> dict[str, Any]:
    """Create (the answer shows the secret, once) or change an endpoint's URL and events."""
    program_id = staff.program_id
    try:
        checked_address(settings, body.url)
    except rules.RefusedUrl as exc:
        raise InvalidRequest(f"url: {exc}", code="url_refused") from None
    now = clock.stamp(clock.now())
    key = keys.webhook(program_id, webhook_id)
    existing = store.get_item(WebhookItem, key)
    secret = "whsec_" + secrets.token_urlsafe(32)
    if existing is not None:
        actions: list[Any] = [WebhookItem.url.set(body.url), WebhookItem.events.set(body.events),
                              WebhookItem.updated_at.set(now)]
        if body.rotate_secret:
            actions.append(WebhookItem.secret_enc.set(crypto.encrypt(settings, secret, context=key[0])))
        existing.update(actions=actions, condition=WebhookItem.pk.exists())
        return _view(existing, secret if body.rotate_secret else None)
    item = WebhookItem(*key, program_id=program_id, webhook_id=webhook_id, url=body.url, events=body.events,
                       secret_enc=crypto.encrypt(settings, secret, context=key[0]), status=ACTIVE,
                       created_at=now, updated_at=now)
    item.gsi1pk, item.gsi1sk = keys.webhooks_list(program_id, webhook_id)
    count = WebhookCountItem(*keys.webhook_count(program_id))
    tx = Transaction()
    tx.put(item, WebhookItem.pk.does_not_exist(), label="webhook")
    tx.update(count, actions=[WebhookCountItem.kind.set(WebhookCountItem), WebhookCountItem.endpoints.add(1)],
              condition=WebhookCountItem.endpoints.does_not_exist()
              | (WebhookCountItem.endpoints < rules.MAX_ENDPOINTS_PER_PROGRAM), label="count")
    try:
        tx.commit()
    except ConditionsFailed as failed:
        if "webhook" in failed.labels:
            raise Conflict("the webhook was created at the same moment; read it again",
                           code="webhook_exists") from None
        raise Conflict(f"a program has at most {rules.MAX_ENDPOINTS_PER_PROGRAM} webhooks",
                       code="too_many_webhooks") from None
    return _view(item, secret)


def list_webhooks(program_id: str) -> dict[str, Any]:
    return {"items": [_view(item) for item in _read_endpoints(program_id)], "next_cursor": None}


def get_webhook(program_id: str, webhook_id: str) -> dict[str, Any]:
    return _view(_endpoint(program_id, webhook_id))


def delete_webhook(program_id: str, webhook_id: str) -> dict[str, Any]:
    """Gone at once; deliveries still waiting for it are dropped when they come due."""
    tx = Transaction()
    tx.delete(WebhookItem(*keys.webhook(program_id, webhook_id)), WebhookItem.pk.exists(), label="webhook")
    tx.update(WebhookCountItem(*keys.webhook_count(program_id)), actions=[WebhookCountItem.endpoints.add(-1)],
              label="count")
    try:
        tx.commit()
    except ConditionsFailed:
        raise NotFound("no such webhook", code="webhook_not_found") from None
    return {"webhook_id": webhook_id, "deleted": True}


def resume_webhook(program_id: str, webhook_id: str) -> dict[str, Any]:
    """Active again; the deliveries parked while it was paused are queued again."""
    item = _endpoint(program_id, webhook_id)
    item.update(actions=[WebhookItem.status.set(ACTIVE), WebhookItem.paused_reason.remove(),
                         WebhookItem.paused_at.remove(), WebhookItem.consecutive_failures.set(0),
                         WebhookItem.failing_since.remove(), WebhookItem.updated_at.set(clock.stamp(clock.now()))],
                condition=WebhookItem.pk.exists())
    requeued = 0
    for parked in TableItem.gsi1.query(keys.webhook_parked_partition(program_id, webhook_id)):
        if isinstance(parked, WebhookDeliveryItem) and parked.park_reason == ENDPOINT_PAUSED:
            requeued += _requeue(parked.program_id, parked.event_id, webhook_id, None)
    return {**_view(item), "requeued": requeued}


# --- deliveries (staff) ----------------------------------------------------------------------

def _delivery_view(item: WebhookDeliveryItem) -> dict[str, Any]:
    return {"event_id": item.event_id, "webhook_id": item.webhook_id, "type": item.type, "status": item.status,
            "attempts": int(item.attempts or 0), "next_attempt_at": item.next_attempt_at,
            "park_reason": item.park_reason, "parked_at": item.parked_at, "delivered_at": item.delivered_at,
            "created_at": item.created_at, "log": list(item.log or [])}


def get_delivery(program_id: str, webhook_id: str, event_id: str) -> dict[str, Any]:
    item = store.get_item(WebhookDeliveryItem, keys.webhook_delivery(program_id, event_id, webhook_id))
    if item is None:
        raise NotFound("no such delivery", code="delivery_not_found")
    return _delivery_view(item)


def parked_deliveries(program_id: str, webhook_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    _endpoint(program_id, webhook_id)
    page = gsi1_page(keys.webhook_parked_partition(program_id, webhook_id), limit, cursor, newest_first=False)
    return {"items": [_delivery_view(i) for i in page.items if isinstance(i, WebhookDeliveryItem)],
            "next_cursor": page.next_cursor}


def replay_delivery(program_id: str, webhook_id: str, event_id: str) -> dict[str, Any]:
    """A parked (or delivered) delivery goes out again, with a fresh retry schedule."""
    _endpoint(program_id, webhook_id)
    if not _requeue(program_id, event_id, webhook_id, None, must_exist=True):
        raise Conflict("the delivery is already waiting for its next attempt", code="delivery_pending")
    return get_delivery(program_id, webhook_id, event_id)


def replay_range(program_id: str, webhook_id: str, body: ReplayIn) -> dict[str, Any]:
    """Every event of the endpoint's types created in [from, to) goes out to it again (those not
    sent to it before too). At most 500 per call: `complete` false and `resume_from` say where
    to continue."""
    endpoint = _endpoint(program_id, webhook_id)
    start, end = body.start.astimezone(dt.timezone.utc), body.end.astimezone(dt.timezone.utc)
    if end <= start:
        raise InvalidRequest("`to` must be after `from`")
    if (end - start) > dt.timedelta(days=_REPLAY_MAX_DAYS):
        raise InvalidRequest(f"replay at most {_REPLAY_MAX_DAYS} days per call")
    low, high = clock.stamp(start), clock.stamp(end)
    queued = seen = 0
    day = start.date()
    while day <= end.date():
        for item in TableItem.gsi1.query(keys.webhook_events_day(program_id, day.isoformat()),
                                         TableItem.gsi1sk.between(low, high)):
            if not isinstance(item, WebhookEventItem) or not low <= item.created_at < high:
                continue
            if seen >= _REPLAY_MAX_EVENTS:
                return {"queued": queued, "complete": False, "resume_from": item.created_at}
            seen += 1
            if item.type in endpoint.events:
                queued += _requeue(program_id, item.event_id, webhook_id, item)
        day += dt.timedelta(days=1)
    return {"queued": queued, "complete": True, "resume_from": None}


def _requeue(program_id: str, event_id: str, webhook_id: str, event: WebhookEventItem | None,
             must_exist: bool = False) -> int:
    """Back to pending with a fresh schedule (its INSERT or MODIFY reaches the sender at once);
    creates the delivery from the event if it never existed. 0 if it is pending already."""
    now = clock.now()
    due = clock.stamp(now + LEASE)
    gsi2pk, gsi2sk = keys.webhooks_due(due, program_id, event_id, webhook_id)
    item = WebhookDeliveryItem(*keys.webhook_delivery(program_id, event_id, webhook_id))
    actions: list[Any] = [WebhookDeliveryItem.status.set(PENDING), WebhookDeliveryItem.round_attempts.set(0),
               WebhookDeliveryItem.next_attempt_at.set(due), WebhookDeliveryItem.gsi2pk.set(gsi2pk),
               WebhookDeliveryItem.gsi2sk.set(gsi2sk), WebhookDeliveryItem.park_reason.remove(),
               WebhookDeliveryItem.gsi1pk.remove(), WebhookDeliveryItem.gsi1sk.remove()]
    condition = WebhookDeliveryItem.status != PENDING
    if must_exist:
        condition &= WebhookDeliveryItem.pk.exists()
    if event is not None:
        actions += [WebhookDeliveryItem.kind.set(WebhookDeliveryItem),
                    WebhookDeliveryItem.program_id.set(program_id), WebhookDeliveryItem.event_id.set(event_id),
                    WebhookDeliveryItem.webhook_id.set(webhook_id), WebhookDeliveryItem.type.set(event.type),
                    WebhookDeliveryItem.body.set(event.body),
                    WebhookDeliveryItem.created_at.set(WebhookDeliveryItem.created_at | clock.stamp(now)),
                    WebhookDeliveryItem.attempts.set(WebhookDeliveryItem.attempts | 0),
                    WebhookDeliveryItem.log.set(WebhookDeliveryItem.log | [])]
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        if must_exist and store.get_item(WebhookDeliveryItem,
                                         keys.webhook_delivery(program_id, event_id, webhook_id)) is None:
            raise NotFound("no such delivery", code="delivery_not_found") from None
        return 0
    return 1


# --- events in (a stream reaction) -----------------------------------------------------------

def _read_endpoints(program_id: str) -> list[WebhookItem]:
    """The program's endpoints. Read for every change that makes an event (one Query, half a read
    unit when there are none), never cached: an endpoint gets every event from the moment it is
    registered, and none after it is deleted or paused."""
    return [item for item in TableItem.gsi1.query(keys.webhooks_list(program_id, "")[0])
            if isinstance(item, WebhookItem)]


def publish(settings: Settings, event_name: str, new: dict[str, Any], old: dict[str, Any]) -> int:
    """The events a table change makes, each with a delivery per subscribed endpoint; returns
    how many events were written (0 for a redelivered record)."""
    facts = rules.facts_of(event_name, new, old)
    if not facts:
        return 0
    program_id = (new or old)["program_id"]
    endpoints = _read_endpoints(program_id)
    written = 0
    for fact in facts:
        targets = [e for e in endpoints if fact.type in e.events]
        if targets:
            written += _record_event(program_id, fact, targets)
    return written


def _record_event(program_id: str, fact: rules.Fact, targets: list[WebhookItem]) -> int:
    event_id = rules.event_id(program_id, fact)
    seq_key = keys.webhook_sequence(program_id, fact.member_id)
    for _ in range(30):
        counter = store.get_item(WebhookSequenceItem, seq_key)
        last = int(counter.last) if counter is not None else 0
        now = clock.now()
        created = clock.stamp(now)
        at = fact.created_at or created  # a change with no time of its own happened just now
        body = rules.body(event_id, fact.type, at, fact.member_id, last + 1, fact.data)
        event = WebhookEventItem(*keys.webhook_event(program_id, event_id), program_id=program_id,
                                 event_id=event_id, type=fact.type, member_id=fact.member_id, sequence=last + 1,
                                 body=body, created_at=at)
        event.gsi1pk, event.gsi1sk = keys.webhook_events_by_time(program_id, at[:10], at, event_id)
        tx = Transaction()
        tx.put(event, WebhookEventItem.pk.does_not_exist(), label="event")
        if fact.type in PROFILE_EVENT_TYPES:
            # A profile change reaching us after its member began erasure: never copy it out again.
            tx.check(ErasureItem, keys.erasure(program_id, fact.member_id), ErasureItem.pk.does_not_exist(),
                     label="erased")
        tx.put(WebhookSequenceItem(*seq_key, last=last + 1),
               WebhookSequenceItem.last == last if counter is not None else WebhookSequenceItem.pk.does_not_exist(),
               label="sequence")
        for endpoint in targets:
            delivery = WebhookDeliveryItem(
                *keys.webhook_delivery(program_id, event_id, endpoint.webhook_id), program_id=program_id,
                event_id=event_id, webhook_id=endpoint.webhook_id, type=fact.type, body=body, created_at=created,
                attempts=0, round_attempts=0, log=[])
            if endpoint.status == ACTIVE:
                # The stream's sender tries at once; the due queue holds it in case that never happens.
                due = clock.stamp(now + LEASE)
                delivery.status, delivery.next_attempt_at = PENDING, due
                delivery.gsi2pk, delivery.gsi2sk = keys.webhooks_due(due, program_id, event_id, endpoint.webhook_id)
            else:
                delivery.status, delivery.park_reason, delivery.parked_at = PARKED, ENDPOINT_PAUSED, created
                delivery.gsi1pk, delivery.gsi1sk = keys.webhook_parked(program_id, endpoint.webhook_id, created,
                                                                       event_id)
            tx.put(delivery, label=f"delivery:{endpoint.webhook_id}")
        try:
            tx.commit()
        except ConditionsFailed as failed:
            if "event" in failed.labels or "erased" in failed.labels:
                return 0  # a redelivered record (the event and its deliveries exist), or an erased member
            continue  # another event of this member took the number: read it again
        except TransactionConflict:
            continue
        return 1
    raise TransactionConflict("the member's event sequence stayed contended")


# --- attempts --------------------------------------------------------------------------------

def _post(target: rules.Target, address: str, headers: dict[str, str], body: bytes) -> int:
    """One POST to the checked address (SNI and certificate checked against the host name);
    no retries, no redirects; returns the status."""
    import urllib3

    timeout = urllib3.Timeout(connect=rules.CONNECT_TIMEOUT_SECONDS, read=rules.READ_TIMEOUT_SECONDS,
                              total=rules.CONNECT_TIMEOUT_SECONDS + rules.READ_TIMEOUT_SECONDS)
    pool: Any
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, target.port, timeout=timeout, retries=False,
                                           server_hostname=target.host, assert_hostname=target.host,
                                           cert_reqs="CERT_REQUIRED")
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False)
    default_port = 443 if target.scheme == "https" else 80
    host = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host and not target.host.startswith("["):
        host = f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
    try:
        answer = pool.urlopen("POST", target.path, body=body, headers={**headers, "Host": host},
                              redirect=False, retries=False, preload_content=False, assert_same_host=False)
        try:
            answer.read(64 * 1024)  # a little of the answer; the status is what counts
        finally:
            answer.release_conn()
        return int(answer.status)
    finally:
        pool.close()


def _send(settings: Settings, endpoint: WebhookItem, delivery: WebhookDeliveryItem) -> tuple[int | None, str | None]:
    try:
        target, address = checked_address(settings, endpoint.url)
    except rules.RefusedUrl as exc:
        return None, f"refused: {exc}"[:300]
    secret = crypto.decrypt(settings, endpoint.secret_enc, context=endpoint.pk)
    raw = delivery.body.encode()
    timestamp = int(clock.now().timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": "loyalty-webhooks/1",
               "X-Loyalty-Event-Id": delivery.event_id, "X-Loyalty-Timestamp": str(timestamp),
               "X-Loyalty-Signature": rules.signature(secret, timestamp, raw)}
    try:
        status = _post(target, address, headers, raw)
    except Exception as exc:  # noqa: BLE001 - any failure to get an answer is a failed attempt
        return None, f"{type(exc).__name__}: {exc}"[:300]
    return status, None if 200 <= status < 300 else f"HTTP {status}"


def attempt(settings: Settings, delivery: WebhookDeliveryItem, endpoint: WebhookItem | None) -> str:
    """One attempt of a pending delivery, recorded under a condition on the attempts seen (a
    racing attempt records nothing twice). Returns the delivery's status after it."""
    if endpoint is None:
        _settle(delivery, [WebhookDeliveryItem.status.set(DROPPED), WebhookDeliveryItem.park_reason.set("endpoint_deleted"),
                           WebhookDeliveryItem.next_attempt_at.remove(), WebhookDeliveryItem.gsi2pk.remove(),
                           WebhookDeliveryItem.gsi2sk.remove()])
        return DROPPED
    if endpoint.status != ACTIVE:
        _park(delivery, ENDPOINT_PAUSED, clock.now())
        return PARKED
    seen = int(delivery.attempts or 0)
    started = time.monotonic()
    status, error = _send(settings, endpoint, delivery)
    now = clock.now()
    ok = error is None
    entry = {"at": clock.stamp(now), "status": status, "error": error,
             "ms": round((time.monotonic() - started) * 1000)}
    actions: list[Any] = [WebhookDeliveryItem.attempts.set(seen + 1),
                          WebhookDeliveryItem.log.set((list(delivery.log or []) + [entry])[-_LOG_KEEP:])]
    outcome = DELIVERED
    if ok:
        actions += [WebhookDeliveryItem.status.set(DELIVERED), WebhookDeliveryItem.delivered_at.set(clock.stamp(now)),
                    WebhookDeliveryItem.next_attempt_at.remove(), WebhookDeliveryItem.gsi2pk.remove(),
                    WebhookDeliveryItem.gsi2sk.remove()]
    else:
        failed = int(delivery.round_attempts or 0) + 1
        delay = rules.retry_after(failed)
        actions.append(WebhookDeliveryItem.round_attempts.set(failed))
        if delay is None:
            outcome = PARKED
            actions += _park_actions(delivery, RETRIES_EXHAUSTED, now)
        else:
            outcome = PENDING
            due = clock.stamp(now + delay)
            gsi2pk, gsi2sk = keys.webhooks_due(due, delivery.program_id, delivery.event_id, delivery.webhook_id)
            actions += [WebhookDeliveryItem.next_attempt_at.set(due), WebhookDeliveryItem.gsi2pk.set(gsi2pk),
                        WebhookDeliveryItem.gsi2sk.set(gsi2sk)]
    try:
        delivery.update(actions=actions, condition=(WebhookDeliveryItem.status == PENDING)
                        & (WebhookDeliveryItem.attempts == seen))
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return "raced"
        raise
    _count(endpoint, ok, error, now, parked=outcome == PARKED)
    return outcome


def _park_actions(delivery: WebhookDeliveryItem, reason: str, now: dt.datetime) -> list[Any]:
    gsi1pk, gsi1sk = keys.webhook_parked(delivery.program_id, delivery.webhook_id, clock.stamp(now), delivery.event_id)
    return [WebhookDeliveryItem.status.set(PARKED), WebhookDeliveryItem.park_reason.set(reason),
            WebhookDeliveryItem.parked_at.set(clock.stamp(now)), WebhookDeliveryItem.gsi1pk.set(gsi1pk),
            WebhookDeliveryItem.gsi1sk.set(gsi1sk), WebhookDeliveryItem.next_attempt_at.remove(),
            WebhookDeliveryItem.gsi2pk.remove(), WebhookDeliveryItem.gsi2sk.remove()]


def _park(delivery: WebhookDeliveryItem, reason: str, now: dt.datetime) -> None:
    _settle(delivery, _park_actions(delivery, reason, now))


def _settle(delivery: WebhookDeliveryItem, actions: list[Any]) -> None:
    """Out of the queue without an attempt (parked or dropped), unless something else moved it."""
    try:
        delivery.update(actions=actions, condition=(WebhookDeliveryItem.status == PENDING)
                        & (WebhookDeliveryItem.attempts == int(delivery.attempts or 0)))
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise


def _count(endpoint: WebhookItem, ok: bool, error: str | None, now: dt.datetime, *, parked: bool) -> None:
    """The endpoint's counters; pause it when it keeps failing or a delivery ran out of retries."""
    stamp = clock.stamp(now)
    actions: list[Any]
    if ok:
        actions = [WebhookItem.delivered.add(1), WebhookItem.consecutive_failures.set(0),
                   WebhookItem.failing_since.remove(), WebhookItem.last_success_at.set(stamp)]
    else:
        actions = [WebhookItem.failed_attempts.add(1), WebhookItem.consecutive_failures.add(1),
                   WebhookItem.failing_since.set(WebhookItem.failing_since | stamp),
                   WebhookItem.last_failure_at.set(stamp), WebhookItem.last_error.set(error or "failed")]
        if parked:
            actions.append(WebhookItem.parked.add(1))
    try:
        endpoint.update(actions=actions, condition=WebhookItem.pk.exists())
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return  # deleted meanwhile
        raise
    if ok or endpoint.status != ACTIVE:
        return
    since = dt.datetime.fromisoformat(endpoint.failing_since) if endpoint.failing_since else None
    if parked:
        reason = f"a delivery failed {rules.MAX_ATTEMPTS} times over {_hours(rules.RETRY_DELAYS)} hours"
    elif rules.should_pause(int(endpoint.consecutive_failures), since, now):
        reason = f"{int(endpoint.consecutive_failures)} attempts in a row failed since {endpoint.failing_since}"
    else:
        return
    try:
        endpoint.update(actions=[WebhookItem.status.set(PAUSED), WebhookItem.paused_reason.set(reason),
                                 WebhookItem.paused_at.set(stamp)], condition=WebhookItem.status == ACTIVE)
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        return
    logger().warning("webhook paused", extra={"program_id": endpoint.program_id,
                                              "webhook_id": endpoint.webhook_id, "reason": reason})


def _hours(delays: tuple[dt.timedelta, ...]) -> str:
    return f"{sum(delays, dt.timedelta()).total_seconds() / 3600:.1f}"


def _read_pair(program_id: str, event_id: str, webhook_id: str) -> tuple[WebhookDeliveryItem | None, WebhookItem | None]:
    """The delivery and its endpoint in one BatchGet (consistent)."""
    wanted = [keys.webhook_delivery(program_id, event_id, webhook_id), keys.webhook(program_id, webhook_id)]
    delivery, endpoint = None, None
    for item in TableItem.batch_get(wanted, consistent_read=True):
        if isinstance(item, WebhookDeliveryItem):
            delivery = item
        elif isinstance(item, WebhookItem):
            endpoint = item
    return delivery, endpoint


def first_attempt(settings: Settings, program_id: str, event_id: str, webhook_id: str) -> str:
    """The sender's attempt right after a delivery became pending (created or replayed)."""
    delivery, endpoint = _read_pair(program_id, event_id, webhook_id)
    if delivery is None or delivery.status != PENDING:
        return delivery.status if delivery is not None else "missing"
    now = clock.now()
    # Unclaimed and not due for longer than an attempt can take: the frequent job cannot reach it
    # before this attempt is recorded, so no claim is needed (the common case: one write saved).
    # Otherwise (a late record, a replay) claim it as the job does, so the two never both send it.
    untouched = (int(delivery.attempts or 0) == 0 and delivery.next_attempt_at is not None
                 and delivery.next_attempt_at == clock.stamp(dt.datetime.fromisoformat(delivery.created_at) + LEASE))
    margin = dt.timedelta(seconds=rules.CONNECT_TIMEOUT_SECONDS + rules.READ_TIMEOUT_SECONDS + 10)
    if untouched and now + margin < dt.datetime.fromisoformat(delivery.next_attempt_at):
        return attempt(settings, delivery, endpoint)
    if not _claim(delivery, now):
        return "claimed_elsewhere"
    return attempt(settings, delivery, endpoint)


def handle_delivery_batch(event: dict[str, Any]) -> dict[str, Any]:
    """The second stream function: deliveries that became pending, out at once."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from chalicelib.settings import get_settings

    if not event.get("Records"):
        return {"batchItemFailures": []}
    settings = get_settings()

    def handle(record: Any) -> None:
        new = record.dynamodb.new_image or {}
        old = record.dynamodb.old_image or {}
        if new.get("kind") != "webhook_delivery" or new.get("status") != PENDING:
            return
        if record.event_name.name == "MODIFY" and old.get("status") == PENDING:
            return  # a retry rescheduled: the frequent job makes it
        first_attempt(settings, new["program_id"], new["event_id"], new["webhook_id"])

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return dict(process_partial_response(event=event, record_handler=handle, processor=processor))


def retry_due(settings: Settings, now: dt.datetime, limit: int = 500) -> dict[str, int]:
    """The frequent job: every delivery whose next attempt is due, for every program. Each is
    claimed first (moved a lease ahead under a condition), so overlapping runs send it once."""
    cutoff = clock.stamp(now) + "#\uffff"
    started = time.monotonic()
    counts = {"attempted": 0, "delivered": 0, "failed": 0, "parked": 0}
    endpoints: dict[tuple[str, str], WebhookItem | None] = {}
    for days_back in range(_DUE_DAYS_BACK, -1, -1):
        day = (now - dt.timedelta(days=days_back)).date().isoformat()
        for item in TableItem.gsi2.query(keys.webhooks_due_day(day), TableItem.gsi2sk <= cutoff, limit=limit):
            if time.monotonic() - started > _JOB_BUDGET_SECONDS:
                return counts
            if not isinstance(item, WebhookDeliveryItem) or item.status != PENDING:
                continue
            if not _claim(item, now):
                continue
            key = (item.program_id, item.webhook_id)
            if key not in endpoints:
                endpoints[key] = store.get_item(WebhookItem, keys.webhook(*key))
            outcome = attempt(settings, item, endpoints[key])
            counts["attempted"] += 1
            counts[{DELIVERED: "delivered", PARKED: "parked"}.get(outcome, "failed")] += 1
            if outcome != DELIVERED and endpoints[key] is not None:
                endpoints[key] = store.get_item(WebhookItem, keys.webhook(*key))  # it may have been paused
    return counts


def _claim(item: WebhookDeliveryItem, now: dt.datetime) -> bool:
    due = clock.stamp(now + LEASE)
    gsi2pk, gsi2sk = keys.webhooks_due(due, item.program_id, item.event_id, item.webhook_id)
    try:
        item.update(actions=[WebhookDeliveryItem.next_attempt_at.set(due), WebhookDeliveryItem.gsi2pk.set(gsi2pk),
                             WebhookDeliveryItem.gsi2sk.set(gsi2sk)],
                    condition=(WebhookDeliveryItem.status == PENDING)
                    & (WebhookDeliveryItem.attempts == int(item.attempts or 0))
                    & (WebhookDeliveryItem.next_attempt_at == item.next_attempt_at))
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True
