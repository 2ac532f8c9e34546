"""Pending points: staff release or reject what a risk rule held back; review-sized orders
release themselves after the program's `risk.review_auto_release_days` unless rejected.

A pending entry (`PendingItem`, pending -> released | rejected) is named by the entry id of its
ledger row of type `pending`. Settling it is one transaction: the entry (guarded: still pending,
as read), the account (pending bucket down; for a release, balance and a lot up), a ledger row
keyed by the entry (so an entry is settled once, whoever asks), and the record of the caller's
request_id (a replay answers the first answer and changes nothing).
- release: ledger row `earn` (+points to the balance, -points pending);
- reject: ledger row `pending` (0 to the balance, -points pending): the balance never saw them,
  the history keeps both rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib import clock, ids
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.domain import balance, lots
from chalicelib.domain.text import FreeText
from chalicelib.errors import Conflict, NotFound
from chalicelib.services.ledger import require_member
from chalicelib.services.idempotency import CallerKey, TryAgain, reread_if_taken, with_retries
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys, paging
from chalicelib.store import ledger as store
from chalicelib.store import risk as risk_store
from chalicelib.store.models import PendingItem
from chalicelib.store.tx import Transaction

RELEASED, REJECTED = "released", "rejected"


class SettleIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    request_id: str = Field(pattern=ids.ID_PATTERN)
    reason: FreeText | None = Field(default=None, min_length=1, max_length=200,
                               description="Why (kept on the entry and in the history row).")


def view(item: PendingItem) -> dict[str, Any]:
    return {"entry_id": item.entry_id, "member_id": item.member_id, "order_id": item.order_id, "rule": item.rule,
            "points": int(item.points), "remaining": int(item.remaining), "status": item.status,
            "auto_release_on": item.auto_release_on, "created_at": item.created_at,
            "settled_at": item.settled_at, "settled_points": None if item.settled_points is None
            else int(item.settled_points), "settled_reason": item.settled_reason, "settled_by": item.settled_by}


def settle(settings: Settings, staff: StaffPrincipal, member_id: str, entry_id: str, action: str,
           body: SettleIn) -> dict[str, Any]:
    """Staff release (`released`) or reject (`rejected`) a pending entry, once per request_id."""
    program_id = staff.program_id
    caller_key = CallerKey.generic(program_id, f"pending:{member_id}", body.request_id, body,
                                   entry_id=entry_id, action=action)
    reason = body.reason or f"{action} by staff"

    def attempt() -> tuple[dict[str, Any], int]:
        replayed = caller_key.lookup()
        if replayed:
            return replayed
        item = risk_store.get_pending(program_id, member_id, entry_id)
        if item is None:
            raise NotFound("no pending entry with this id for this member", code="pending_not_found")
        if item.status != "pending":
            if caller_key.lookup() is not None:  # our own duplicate settled it meanwhile
                raise TryAgain
            raise Conflict(f"this entry was already {item.status}", code="pending_settled")
        return _settle(settings, program_id, item, action, reason, staff.key_name, caller_key), 200

    answer, _ = with_retries(settings, attempt)
    return answer


def _settle(settings: Settings, program_id: str, item: PendingItem, action: str, reason: str, by: str,
            caller_key: CallerKey | None) -> dict[str, Any]:
    config = program_config(settings, program_id)
    record = store.member(program_id, item.member_id)
    if record is None:
        raise NotFound("no such member", code="member_not_found")
    now = clock.now()
    stamp = clock.stamp(now)
    points = int(item.remaining)
    before = store.balances_of(record.account)
    if action == RELEASED:
        change = balance.release_pending(before, points, lots.expiry_day(config.expiry, config.today(now)))
        row = store.LedgerRow(key=keys.member_operation(program_id, item.member_id, "pending-settled", item.entry_id),
                              type="earn", points=points, pending=-points, reason=f"pending released: {reason}",
                              ref=item.order_id or item.entry_id, request_hash=None, response=None,
                              detail={"pending_entry": item.entry_id, "by": by, "repaid_debt": change.repaid_debt})
    else:
        change = balance.drop_pending(before, points)
        row = store.LedgerRow(key=keys.member_operation(program_id, item.member_id, "pending-settled", item.entry_id),
                              type="pending", points=0, pending=-points, reason=f"pending rejected: {reason}",
                              ref=item.order_id or item.entry_id, request_hash=None, response=None,
                              detail={"pending_entry": item.entry_id, "by": by})
    answer = {"member_id": item.member_id, "entry_id": item.entry_id, "status": action,
              "points": points, "points_balance": change.after.points, "points_pending": change.after.pending}

    def extra(tx: Transaction) -> None:
        risk_store.settle_pending(tx, item, action, points, reason, by, stamp)
        if caller_key is not None:
            caller_key.record(tx, answer, 200)

    with reread_if_taken("pending", "ledger"):
        store.apply_change(program_id, record.account, change, None, row, stamp, ids.new_entry_id(), extra=extra)
    return answer


def open_queue(program_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """The program's open pending entries, oldest first: what staff review."""
    page = paging.gsi1_page(keys.pending_queue_partition(program_id), limit, cursor, newest_first=False)
    return {"items": [view(item) for item in page.items if isinstance(item, PendingItem)],
            "next_cursor": page.next_cursor}


def of_member(program_id: str, member_id: str, limit: int) -> dict[str, Any]:
    """A member's newest `limit` pending entries, every status (a member has few: one page)."""
    require_member(program_id, member_id)
    items = sorted(risk_store.member_pending(program_id, member_id), key=lambda i: i.created_at, reverse=True)
    return {"items": [view(item) for item in items[:limit]], "next_cursor": None}


def auto_release_step(ctx: Any) -> Any:
    """Daily job `release-pending`: review-sized orders due today release themselves (unless
    rejected meanwhile). Each entry settles once (its ledger row is keyed by it), so a rerun or a
    catch-up day changes nothing already done."""
    from chalicelib.jobs import Step

    released = skipped = 0
    for item in risk_store.due_pending(ctx.program_id, ctx.as_of.isoformat()):
        fresh = risk_store.get_pending(ctx.program_id, item.member_id, item.entry_id)
        if fresh is None or fresh.status != "pending":
            skipped += 1
            continue
        days = (ctx.as_of - dt.date.fromisoformat(fresh.created_at[:10])).days

        def attempt(entry: PendingItem = fresh) -> tuple[dict[str, Any], int]:
            current = risk_store.get_pending(ctx.program_id, entry.member_id, entry.entry_id)
            if current is None or current.status != "pending":
                return {}, 200
            return _settle(ctx.settings, ctx.program_id, current, RELEASED,
                           f"not rejected within {days} days", "auto-release", None), 200

        with_retries(ctx.settings, attempt)
        released += 1
    return Step(done=True, summary={"pending_released": released, "pending_skipped": skipped})
