"""The two rules every balance-changing call follows.

1. Idempotent forever on the caller's key. A `CallerKey` names the item that records the key
   (an operation's own item keyed by it — an order, a hold, a redemption, a ledger row — or a
   generic `IdempotencyItem`), the request's fingerprint and the first answer. The same key
   returns the first answer (status included); the same key with another body is a 409. A new
   operation gets this by building one `CallerKey` and calling `replay_of` / `stamp` / `record`.
2. Optimistic concurrency: read, compute, write guarded by the account's version; if anything
   moved in between, read again and recompute. Sustained contention ends in 503 retry_later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

from pydantic import BaseModel

from chalicelib import clock
from chalicelib.errors import IdempotencyConflict, RetryLater, Unauthorized
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store.models import IdempotencyItem, TableItem
from chalicelib.store.tx import ConditionsFailed, Transaction, TransactionConflict

T = TypeVar("T")
# The label of the caller's key in a transaction: its guard failing means "taken meanwhile".
KEY_LABEL = "caller_key"


class TryAgain(Exception):
    """Something moved between our read and our write; read again."""


def fingerprint(body: BaseModel, **context: Any) -> str:
    canonical = json.dumps({"body": body.model_dump(mode="json"), **context}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CallerKey:
    """A caller's idempotency key for one request."""

    name: str  # the body field the caller set ("order_id", "request_id"): named in a 409
    item_key: tuple[str, str]  # the item that records it
    request_hash: str

    @classmethod
    def generic(cls, program_id: str, scope: str, value: str, body: BaseModel, name: str = "request_id",
                **context: Any) -> CallerKey:
        """A key recorded on its own `IdempotencyItem` (operations not keyed by the caller's key)."""
        return cls(name, keys.idempotency(program_id, scope, value), fingerprint(body, **context))

    def replay_of(self, found: TableItem | None) -> tuple[dict[str, Any], int] | None:
        """The first answer if the key was used (found: the recording item as read), else None."""
        if found is None:
            return None
        if getattr(found, "request_hash", None) != self.request_hash:
            raise IdempotencyConflict(self.name)
        response = dict(getattr(found, "response", None) or {})
        status = int(response.pop("_status", 201))
        return response, status

    def lookup(self, model: type[TableItem] = IdempotencyItem) -> tuple[dict[str, Any], int] | None:
        """`replay_of` after a consistent read of the recording item."""
        try:
            found = model.get(*self.item_key, consistent_read=True)
        except model.DoesNotExist:
            found = None
        return self.replay_of(found)

    def answer(self, answer: dict[str, Any], status: int = 201) -> dict[str, Any]:
        """What the recording item stores to answer replays with."""
        return {**answer, "_status": status}

    def record(self, tx: Transaction, answer: dict[str, Any], status: int = 201) -> None:
        """Write a generic record of the key into `tx` (guarded: first writer wins)."""
        item = IdempotencyItem(*self.item_key, request_hash=self.request_hash,
                               response=self.answer(answer, status), created_at=clock.stamp(clock.now()))
        tx.put(item, IdempotencyItem.pk.does_not_exist(), label=KEY_LABEL)


@contextlib.contextmanager
def reread_if_taken(*labels: str) -> Iterator[None]:
    """Around a write: if one of these guards failed (the caller's key was taken, a stock or an
    order total moved), another delivery got there first. Read again: the next attempt answers as
    a replay, or gives the now-final refusal."""
    try:
        yield
    except ConditionsFailed as failed:
        if "nonce" not in failed.labels and failed.labels & {*labels, KEY_LABEL}:
            raise TryAgain from None
        raise


def with_retries(settings: Settings, attempt: Callable[[], T]) -> T:
    """Run `attempt` until it does not raise TryAgain/ConditionsFailed on the account."""
    for n in range(settings.max_conflict_retries):
        try:
            return attempt()
        except TryAgain:
            pass
        except TransactionConflict:
            pass
        except ConditionsFailed as failed:
            if "nonce" in failed.labels:  # the till's nonce was spent meanwhile: a replayed request
                raise Unauthorized("nonce already used", code="replayed_nonce") from None
            if not (failed.labels & {"account"} or any(label.startswith("lot:") for label in failed.labels)):
                raise
        # Jittered backoff: contention on one member is short-lived.
        time.sleep(random.uniform(0, min(0.05, 0.002 * (2 ** min(n, 5)))))
    raise RetryLater("this member's balance is very busy; retry shortly")
