"""Writing points changes: one transaction per change, every balance guarded.

Every change of a member's points goes through `apply_change`: the account item (guarded by its
version, so nothing moved since we read it), each lot it touches (guarded by what we read), the
ledger row (guarded by not existing: the caller's idempotency key), and whatever else the
operation needs in the same transaction (an order's refunded total, a reward's stock...).
"""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from chalicelib.domain.balance import Balances, Change
from chalicelib.store import keys
from chalicelib.store.members import MemberRecord, read_member
from chalicelib.store.models import AccountItem, LedgerItem, LotItem, TableItem
from chalicelib.store.tx import Transaction


def balances_of(account: AccountItem) -> Balances:
    return Balances(points=int(account.points), held=int(account.held), debt=int(account.debt),
                    growth=int(account.growth), growth_months=dict(account.growth_months or {}),
                    pending=int(account.pending or 0))


def read_items(item_keys: list[tuple[str, str]]) -> dict[tuple[str, str], TableItem]:
    """Consistent BatchGetItem of any kinds of item, keyed by (pk, sk)."""
    found = TableItem.batch_get(item_keys, consistent_read=True)
    return {(item.pk, item.sk): item for item in found}


def get_item(model: type[TableItem], key: tuple[str, str]) -> Any:
    try:
        return model.get(*key, consistent_read=True)
    except DoesNotExist:
        return None


def member(program_id: str, member_id: str) -> MemberRecord | None:
    return read_member(program_id, member_id)


@dataclass
class LedgerRow:
    """The ledger row to write; its (pk, sk) is the caller's idempotency key."""

    key: tuple[str, str]
    type: str
    points: int
    reason: str
    ref: str | None
    request_hash: str | None
    response: dict[str, Any] | None
    detail: dict[str, Any] = field(default_factory=dict)
    growth: int = 0
    model: builtins.type[LedgerItem] = LedgerItem  # the field `type` hides the builtin here
    extra: dict[str, Any] = field(default_factory=dict)
    pending: int = 0  # what the change does to the pending bucket


def _account_update(tx: Transaction, account: AccountItem, after: Balances, now: str,
                    active_on: str | None, risk: dict[str, Any] | None = None) -> None:
    extra: list[Action] = [AccountItem.last_active_on.set(active_on)] if active_on else []
    if risk is not None:
        extra.append(AccountItem.risk.set(risk))
    if after.pending or account.pending:
        extra.append(AccountItem.pending.set(after.pending))
    tx.update(
        account,
        actions=extra + [
            AccountItem.points.set(after.points),
            AccountItem.held.set(after.held),
            AccountItem.debt.set(after.debt),
            AccountItem.growth.set(after.growth),
            AccountItem.growth_months.set(after.growth_months),
            AccountItem.version.set(int(account.version) + 1),
            AccountItem.updated_at.set(now),
        ],
        condition=AccountItem.version == account.version,
        label="account",
    )


def _lot_update(tx: Transaction, program_id: str, member_id: str, day: dt.date, delta: int,
                before: int | None) -> None:
    """`before` is what we read (None: not read, a pure credit)."""
    expires_on = day.isoformat()
    lot = LotItem(*keys.lot(program_id, member_id, expires_on))
    queue_pk, queue_sk = keys.expiry_queue(program_id, expires_on, member_id)
    actions: list[Action] = [
        LotItem.kind.set(LotItem),
        LotItem.program_id.set(program_id),
        LotItem.member_id.set(member_id),
        LotItem.expires_on.set(expires_on),
        LotItem.remaining.add(delta),
    ]
    if delta > 0:
        actions.append(LotItem.earned.add(delta))
    ends_empty = before is not None and before + delta == 0
    if ends_empty:
        # A drained lot leaves the expiry queue, so the job never reads it.
        actions += [LotItem.gsi2pk.remove(), LotItem.gsi2sk.remove()]
    else:
        actions += [LotItem.gsi2pk.set(queue_pk), LotItem.gsi2sk.set(queue_sk)]
    condition = None
    if before is not None:
        condition = (LotItem.remaining == before) if before else (
            LotItem.pk.does_not_exist() | (LotItem.remaining == 0))
    tx.update(lot, actions=actions, condition=condition, label=f"lot:{expires_on}")


def ledger_item(program_id: str, member_id: str, row: LedgerRow, balance_after: int, now: str,
                entry_id: str) -> LedgerItem:
    item: LedgerItem = row.model(
        *row.key,
        program_id=program_id, member_id=member_id, entry_id=entry_id, type=row.type,
        points=row.points, balance_after=balance_after, growth=row.growth, reason=row.reason,
        ref=row.ref, created_at=now, request_hash=row.request_hash, response=row.response,
        detail=row.detail or None, pending=row.pending or None,
        gsi1pk=keys.points_history(program_id, member_id), gsi1sk=keys.history_sort(now, entry_id),
        **row.extra,
    )
    return item


def apply_change(
    program_id: str,
    account: AccountItem,
    change: Change,
    lots_before: dict[dt.date, int] | None,
    row: LedgerRow | None,
    now: str,
    entry_id: str,
    extra: Callable[[Transaction], None] | None = None,
    activity_day: str | None = None,
    risk: dict[str, Any] | None = None,
) -> None:
    """One transaction: account + lots + ledger row + `extra` items. Raises ConditionsFailed
    with the labels of what moved: "account", "ledger", "lot:<day>" or the extra items' labels.

    `activity_day`: the member acted today (order, check-in, redemption, hold). The first such
    row of a day also enters the day's activity queue, which the dormant-member job reads.
    `risk`: the account's risk counters after the change (domain/risk.py), when it moves them."""
    member_id = account.member_id
    tx = Transaction()
    first_today = activity_day is not None and account.last_active_on != activity_day
    _account_update(tx, account, change.after, now, activity_day if first_today else None, risk)
    for day, delta in sorted(change.lot_changes.items()):
        if delta:
            before = None if lots_before is None else lots_before.get(day, 0)
            _lot_update(tx, program_id, member_id, day, delta, before)
    if row is not None:
        item = ledger_item(program_id, member_id, row, change.after.points, now, entry_id)
        if first_today:
            item.gsi2pk, item.gsi2sk = keys.activity_queue(program_id, activity_day or "", member_id, entry_id)
        tx.put(item, LedgerItem.pk.does_not_exist(), label="ledger")
    if extra:
        extra(tx)
    tx.commit()


def all_ledger_rows(program_id: str, member_id: str) -> list[LedgerItem]:
    return [row for row in TableItem.gsi1.query(keys.points_history(program_id, member_id))
            if isinstance(row, LedgerItem)]
