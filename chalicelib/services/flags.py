"""Flags: cases a risk rule puts in front of staff, with their evidence.

- `shared_phone`: many members behind one phone number (each bind, and each refused bind of a
  number another member holds, is a sighting);
- `shared_device`: many members behind one device id (sent by the mini-program at login or
  enrolment, optional);
- `refund_ratio`: a member's refunds over 30 days above the program's limit (raised by the
  accrual it made pending, in the same transaction).

Staff read the open queue, open a flag (its evidence: the members involved, their orders and
refunds of the last 30 days) and resolve it (confirmed or dismissed, with a reason), once per
request_id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib import clock, crypto, ids
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.domain import risk
from chalicelib.domain.text import FreeText
from chalicelib.errors import Conflict, NotFound
from chalicelib.services.idempotency import CallerKey, TryAgain, reread_if_taken, with_retries
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys, paging
from chalicelib.store import members as member_store
from chalicelib.store import risk as store
from chalicelib.store.models import FlagItem, LedgerItem, TableItem
from chalicelib.store.tx import Transaction

_EVIDENCE_MEMBERS = 20
_EVIDENCE_ROWS = 50
_EVIDENCE_TYPES = {"earn", "pending", "reverse"}


class ResolveIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    request_id: str = Field(pattern=ids.ID_PATTERN)
    resolution: Literal["confirmed", "dismissed"]
    reason: FreeText = Field(min_length=1, max_length=200)


def note_phone(settings: Settings, program_id: str, phone_hash: str, member_id: str) -> None:
    _note(settings, program_id, "phone", phone_hash, member_id)


def note_device(settings: Settings, program_id: str, device_id: str, member_id: str) -> None:
    # Keyed hash: the table never holds the device id itself.
    _note(settings, program_id, "device", crypto.lookup_hash(settings, f"device:{device_id}"), member_id)


def _note(settings: Settings, program_id: str, what: str, lookup_hash: str, member_id: str) -> None:
    config = program_config(settings, program_id)
    threshold = config.risk.shared_phone_members if what == "phone" else config.risk.shared_device_members
    if threshold is None:
        return
    members = store.add_sighting(program_id, what, lookup_hash, member_id)
    if risk.shared_flag_due(threshold, len(members)):
        store.raise_flag(program_id, f"shared-{what}-{lookup_hash[:20]}", f"shared_{what}", members,
                         {"members_seen": len(members), "threshold": threshold}, clock.stamp(clock.now()))


def _view(flag: FlagItem) -> dict[str, Any]:
    return {"flag_id": flag.flag_id, "rule": flag.rule, "status": flag.status,
            "member_ids": list(flag.member_ids or []), "evidence": dict(flag.evidence or {}), "hits": int(flag.hits),
            "created_at": flag.created_at, "updated_at": flag.updated_at, "resolution": flag.resolution,
            "resolved_reason": flag.resolved_reason, "resolved_by": flag.resolved_by,
            "resolved_at": flag.resolved_at}


def queue(program_id: str, status: str, limit: int, cursor: str | None) -> dict[str, Any]:
    page = paging.gsi1_page(keys.flag_queue_partition(program_id, status), limit, cursor, newest_first=False)
    return {"items": [_view(item) for item in page.items if isinstance(item, FlagItem)],
            "next_cursor": page.next_cursor}


def _member_evidence(program_id: str, member_id: str, since: str) -> dict[str, Any]:
    record = member_store.read_member(program_id, member_id)
    rows = []
    query = TableItem.gsi1.query(keys.points_history(program_id, member_id), TableItem.gsi1sk >= since,
                                 scan_index_forward=False, limit=_EVIDENCE_ROWS * 2)
    for row in query:
        if isinstance(row, LedgerItem) and row.type in _EVIDENCE_TYPES:
            rows.append({"id": row.entry_id, "type": row.type, "ref": row.ref, "points": int(row.points),
                         "pending": int(row.pending or 0), "created_at": row.created_at,
                         "amount_fen": int(getattr(row, "amount_fen", 0) or 0) or (row.detail or {}).get("amount_fen")})
            if len(rows) >= _EVIDENCE_ROWS:
                break
    account = record.account if record else None
    return {
        "member_id": member_id,
        "nickname": record.profile.nickname if record else None,
        "enrolled_at": record.profile.enrolled_at if record else None,
        "points_balance": int(account.points) if account else None,
        "points_pending": int(account.pending or 0) if account else None,
        "orders": [r for r in rows if r["type"] in ("earn", "pending") and r["amount_fen"]],
        "refunds": [r for r in rows if r["type"] == "reverse"],
    }


def read(program_id: str, flag_id: str) -> dict[str, Any]:
    """A flag with its evidence: each member involved, with their orders and refunds of the
    last 30 days (newest first)."""
    flag = store.get_flag(program_id, flag_id)
    if flag is None:
        raise NotFound("no such flag", code="flag_not_found")
    since = clock.stamp(clock.now() - dt.timedelta(days=30))
    members = [_member_evidence(program_id, m, since) for m in list(flag.member_ids or [])[:_EVIDENCE_MEMBERS]]
    return {**_view(flag), "members": members}


def resolve(settings: Settings, staff: StaffPrincipal, flag_id: str, body: ResolveIn) -> dict[str, Any]:
    program_id = staff.program_id
    caller_key = CallerKey.generic(program_id, "flag", body.request_id, body, flag_id=flag_id)

    def attempt() -> tuple[dict[str, Any], int]:
        replayed = caller_key.lookup()
        if replayed:
            return replayed
        flag = store.get_flag(program_id, flag_id)
        if flag is None:
            raise NotFound("no such flag", code="flag_not_found")
        if flag.status != "open":
            if caller_key.lookup() is not None:
                raise TryAgain
            raise Conflict("this flag was already resolved", code="flag_resolved")
        now = clock.stamp(clock.now())
        answer = {**_view(flag), "status": "resolved", "resolution": body.resolution,
                  "resolved_reason": body.reason, "resolved_by": staff.key_name, "resolved_at": now}
        tx = Transaction()
        store.resolve_flag(tx, flag, body.resolution, body.reason, staff.key_name, now)
        caller_key.record(tx, answer, 200)
        with reread_if_taken("flag"):
            tx.commit()
        return answer, 200

    answer, _ = with_retries(settings, attempt)
    return answer


__all__ = ["ResolveIn", "note_device", "note_phone", "queue", "read", "resolve"]
