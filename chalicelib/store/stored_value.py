"""Writing stored-value changes: the wallet item guarded by its version, and the history row
guarded by not existing, always in the caller's transaction (with the operation's own item)."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.stored_value import Wallet
from chalicelib.store import keys
from chalicelib.store.models import StoredValueEntryItem, StoredValueItem
from chalicelib.store.tx import Transaction

WALLET_LABEL, ENTRY_LABEL = "wallet", "sv_entry"


def wallet_of(item: StoredValueItem | None) -> Wallet:
    if item is None:
        return Wallet()
    return Wallet(int(item.principal), int(item.bonus), int(item.frozen_principal), int(item.frozen_bonus))


@dataclass(frozen=True)
class Entry:
    """A history row: `kind` + `key` name the operation (its key is the once-guard)."""

    kind: str
    key: str
    type: str
    principal_fen: int  # signed change of the spendable principal
    bonus_fen: int  # signed change of the spendable bonus
    ref: str


def write(tx: Transaction, program_id: str, member_id: str, read: StoredValueItem | None, after: Wallet,
          entry: Entry | None, now: str, day: str, entry_id: str) -> None:
    """Add the wallet's new state (guarded by the version read; a first write by not existing)
    and its history row to `tx`."""
    version = int(read.version) if read is not None else 0
    condition = (StoredValueItem.version == version) if read is not None else StoredValueItem.pk.does_not_exist()
    tx.update(
        StoredValueItem(*keys.stored_value(program_id, member_id)),
        actions=[
            StoredValueItem.kind.set(StoredValueItem),
            StoredValueItem.program_id.set(program_id),
            StoredValueItem.member_id.set(member_id),
            StoredValueItem.principal.set(after.principal),
            StoredValueItem.bonus.set(after.bonus),
            StoredValueItem.frozen_principal.set(after.frozen_principal),
            StoredValueItem.frozen_bonus.set(after.frozen_bonus),
            StoredValueItem.version.set(version + 1),
            StoredValueItem.updated_at.set(now),
        ],
        condition=condition,
        label=WALLET_LABEL,
    )
    if entry is None:
        return
    before = wallet_of(read)
    day_pk, day_sk = keys.stored_value_day(program_id, day, member_id, entry_id)
    tx.put(
        StoredValueEntryItem(
            *keys.stored_value_entry(program_id, member_id, entry.kind, entry.key),
            program_id=program_id, member_id=member_id, entry_id=entry_id, type=entry.type,
            amount_fen=entry.principal_fen + entry.bonus_fen, principal_fen=entry.principal_fen,
            bonus_fen=entry.bonus_fen, balance_after_fen=after.available, principal_after_fen=after.principal,
            bonus_after_fen=after.bonus, ref=entry.ref, day=day, created_at=now,
            owed_principal_fen=(after.principal + after.frozen_principal) - (before.principal + before.frozen_principal),
            owed_bonus_fen=(after.bonus + after.frozen_bonus) - (before.bonus + before.frozen_bonus),
            gsi1pk=keys.stored_value_history(program_id, member_id), gsi1sk=keys.history_sort(now, entry_id),
            gsi2pk=day_pk, gsi2sk=day_sk,
        ),
        StoredValueEntryItem.pk.does_not_exist(),
        label=ENTRY_LABEL,
    )
