"""The two rules every balance-changing call follows.

1. Idempotent forever on the caller's key: the ledger row *is* the key's record, so the same key
   returns the first answer (status included), and the same key with another body is a 409.
2. Optimistic concurrency: read, compute, write guarded by the account's version; if anything
   moved in between, read again and recompute. Sustained contention ends in 503 retry_later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from typing import Any, Callable, Iterator, TypeVar

from pydantic import BaseModel

from chalicelib.errors import IdempotencyConflict, RetryLater
from chalicelib.settings import Settings
from chalicelib.store.models import LedgerItem
from chalicelib.store.tx import ConditionsFailed, TransactionConflict

T = TypeVar("T")


class TryAgain(Exception):
    """Something moved between our read and our write; read again."""


def fingerprint(body: BaseModel, **context: Any) -> str:
    canonical = json.dumps({"body": body.model_dump(mode="json"), **context}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(row: LedgerItem, request_hash: str, key_name: str) -> tuple[dict[str, Any], int]:
    if row.request_hash != request_hash:
        raise IdempotencyConflict(key_name)
    response = dict(row.response or {})
    status = int(response.pop("_status", 201))
    return response, status


def first_answer(answer: dict[str, Any], status: int = 201) -> dict[str, Any]:
    """What the ledger row stores to answer replays with."""
    return {**answer, "_status": status}


@contextlib.contextmanager
def reread_if_taken(*labels: str) -> Iterator[None]:
    """Around a write: if one of these guards failed (the caller's key was taken, a stock or an
    order total moved), another delivery got there first. Read again: the next attempt answers as
    a replay, or gives the now-final refusal."""
    try:
        yield
    except ConditionsFailed as failed:
        if failed.labels & set(labels):
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
            if not (failed.labels & {"account"} or any(l.startswith("lot:") for l in failed.labels)):
                raise
        # Jittered backoff: contention on one member is short-lived.
        time.sleep(random.uniform(0, min(0.05, 0.002 * (2 ** min(n, 5)))))
    raise RetryLater("this member's balance is very busy; retry shortly")
