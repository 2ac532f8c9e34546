"""Risk controls in the table: a till's rate counters, pending entries, sightings and flags.

The till's counters and a new pending entry are written inside the accrual's own transaction
(`add_till_rate`, `put_pending`), so a refused order writes nothing and a pending award appears
together with its ledger row."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.operand import Path
from pynamodb.expressions.update import Action

from chalicelib.domain.program import TillCaps
from chalicelib.domain.risk import TillWindow
from chalicelib.store import keys
from chalicelib.store.models import FlagItem, PendingItem, SightingItem, TableItem, TillRateItem
from chalicelib.store.tx import Transaction

TILL_RATE_LABEL = "till_rate"


def add_till_rate(tx: Transaction, key_id: str, caps: TillCaps, window: TillWindow, amount_fen: int) -> None:
    """Count one order of `amount_fen` for the till in this minute and hour, under the caps:
    the transaction fails with label `till_rate` if either is reached."""
    minute = Path(window.minute)
    actions: list[Action] = [
        TillRateItem.kind.set(TillRateItem), TillRateItem.key_id.set(key_id),
        TillRateItem.ttl.set(dt.datetime.fromtimestamp(window.expires_at, dt.timezone.utc)),
        minute.add(1), TillRateItem.amount_fen.add(amount_fen),
    ]
    condition: Condition | None = None
    if caps.orders_per_minute is not None:
        condition = minute.does_not_exist() | (minute < caps.orders_per_minute)
    if caps.amount_fen_per_hour is not None:
        # The service refuses an order larger than the whole hour's cap before it gets here.
        fits = TillRateItem.amount_fen.does_not_exist() | (
            TillRateItem.amount_fen <= caps.amount_fen_per_hour - amount_fen)
        condition = fits if condition is None else condition & fits
    tx.update(TillRateItem(*keys.till_rate(key_id, window.hour)), actions=actions, condition=condition,
              label=TILL_RATE_LABEL)


def till_rate(key_id: str, hour: str) -> dict[str, int]:
    """The raw counters of one till hour (tests and the staff's view)."""
    raw = TillRateItem._get_connection().get_item(*keys.till_rate(key_id, hour), consistent_read=True)
    item = raw.get("Item") or {}
    return {name: int(value["N"]) for name, value in item.items() if "N" in value and name != "ttl"}


# --- pending entries -----------------------------------------------------------------------

def pending_item(program_id: str, member_id: str, entry_id: str, *, rule: str, points: int, created_at: str,
                 order_id: str | None, auto_release_on: dt.date | None) -> PendingItem:
    item = PendingItem(*keys.pending(program_id, member_id, entry_id), program_id=program_id,
                       member_id=member_id, entry_id=entry_id, order_id=order_id, rule=rule, points=points,
                       remaining=points, status="pending", created_at=created_at,
                       auto_release_on=auto_release_on.isoformat() if auto_release_on else None)
    item.gsi1pk, item.gsi1sk = keys.pending_queue(program_id, created_at, member_id, entry_id)
    if auto_release_on is not None:
        item.gsi2pk, item.gsi2sk = keys.pending_due(program_id, auto_release_on.isoformat(), member_id, entry_id)
    return item


def put_pending(tx: Transaction, item: PendingItem) -> None:
    tx.put(item, PendingItem.pk.does_not_exist(), label="pending")


def settle_pending(tx: Transaction, item: PendingItem, status: str, points: int, reason: str, by: str,
                   now: str) -> None:
    """Close a pending entry (it leaves both queues), guarded by what was read of it."""
    tx.update(
        PendingItem(item.pk, item.sk),
        actions=[PendingItem.status.set(status), PendingItem.remaining.set(0), PendingItem.settled_at.set(now),
                 PendingItem.settled_points.set(points), PendingItem.settled_reason.set(reason),
                 PendingItem.settled_by.set(by), PendingItem.gsi1pk.remove(), PendingItem.gsi1sk.remove(),
                 PendingItem.gsi2pk.remove(), PendingItem.gsi2sk.remove()],
        condition=(PendingItem.status == "pending") & (PendingItem.remaining == item.remaining),
        label="pending",
    )


def take_from_pending(tx: Transaction, item: PendingItem, points: int) -> None:
    """A refund takes back part of what is still pending."""
    tx.update(PendingItem(item.pk, item.sk), actions=[PendingItem.remaining.set(int(item.remaining) - points)],
              condition=(PendingItem.status == "pending") & (PendingItem.remaining == item.remaining),
              label="pending")


def get_pending(program_id: str, member_id: str, entry_id: str) -> PendingItem | None:
    try:
        return PendingItem.get(*keys.pending(program_id, member_id, entry_id), consistent_read=True)
    except DoesNotExist:
        return None


def member_pending(program_id: str, member_id: str) -> list[PendingItem]:
    """Every pending entry the member ever had (reconciliation sums the open ones)."""
    return [item for item in TableItem.query(keys.member_pk(program_id, member_id),
                                             TableItem.sk.startswith(keys.member_pending_prefix()),
                                             consistent_read=True)
            if isinstance(item, PendingItem)]


def due_pending(program_id: str, day: str) -> Iterator[PendingItem]:
    for shard in range(keys.PENDING_SHARDS):
        for item in TableItem.gsi2.query(keys.pending_due_partition(program_id, day, shard)):
            if isinstance(item, PendingItem):
                yield item


# --- sightings and flags -------------------------------------------------------------------

def add_sighting(program_id: str, what: str, lookup_hash: str, member_id: str, limit: int = 100) -> list[str]:
    """Add a member to those seen behind a phone/device; the members seen so far. The set stops
    growing at `limit` (evidence enough; the item stays small)."""
    item = SightingItem(*keys.sighting(program_id, what, lookup_hash))
    try:
        item.update(actions=[SightingItem.kind.set(SightingItem), SightingItem.program_id.set(program_id),
                             SightingItem.what.set(what), SightingItem.member_ids.add({member_id})],
                    condition=SightingItem.member_ids.does_not_exist()
                    | (SightingItem.member_ids.contains(member_id))
                    | (size(SightingItem.member_ids) < limit))  # type: ignore[no-untyped-call]
    except Exception as exc:  # noqa: BLE001 - only a full set is expected here
        if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
            raise
        item.refresh(consistent_read=True)
    return sorted(item.member_ids or [])


def raise_flag(program_id: str, flag_id: str, rule: str, member_ids: list[str], evidence: dict[str, Any],
               now: str, tx: Transaction | None = None) -> None:
    """Open a flag, or add a hit to it (a resolved flag stays resolved; its hits and evidence
    still move, so staff see it recurred)."""
    queue_pk, queue_sk = keys.flag_queue(program_id, "open", now, flag_id)
    actions: list[Action] = [
        FlagItem.kind.set(FlagItem), FlagItem.program_id.set(program_id), FlagItem.flag_id.set(flag_id),
        FlagItem.rule.set(rule), FlagItem.status.set(FlagItem.status | "open"),
        FlagItem.created_at.set(FlagItem.created_at | now), FlagItem.updated_at.set(now),
        FlagItem.gsi1pk.set(FlagItem.gsi1pk | queue_pk), FlagItem.gsi1sk.set(FlagItem.gsi1sk | queue_sk),
        FlagItem.member_ids.set(member_ids), FlagItem.evidence.set(evidence), FlagItem.hits.add(1),
    ]
    item = FlagItem(*keys.flag(program_id, flag_id))
    if tx is not None:
        tx.update(item, actions=actions, label="flag")
    else:
        item.update(actions=actions)


def get_flag(program_id: str, flag_id: str) -> FlagItem | None:
    try:
        return FlagItem.get(*keys.flag(program_id, flag_id), consistent_read=True)
    except DoesNotExist:
        return None


def resolve_flag(tx: Transaction, flag: FlagItem, resolution: str, reason: str, by: str, now: str) -> None:
    queue_pk, queue_sk = keys.flag_queue(flag.program_id, "resolved", now, flag.flag_id)
    tx.update(FlagItem(flag.pk, flag.sk),
              actions=[FlagItem.status.set("resolved"), FlagItem.resolution.set(resolution),
                       FlagItem.resolved_reason.set(reason), FlagItem.resolved_by.set(by),
                       FlagItem.resolved_at.set(now), FlagItem.gsi1pk.set(queue_pk), FlagItem.gsi1sk.set(queue_sk)],
              condition=FlagItem.status == "open", label="flag")
