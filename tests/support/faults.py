"""DynamoDB faults for chaos tests, injected with botocore event hooks on the client PynamoDB uses
(`chalicelib.store.tx.connection().client`), so every request the service makes can be hit.

- throttle: any call answers ProvisionedThroughputExceededException or ThrottlingException
  (what botocore raises once its own retries are spent). Nothing was written.
- conflict: a TransactWriteItems is cancelled with a `TransactionConflict` reason, the way
  DynamoDB reports another transaction on the same items. Nothing was written.
- crash: a TransactWriteItems commits, then the caller dies (raised in `after-call`): the
  service's answer is lost after its write, as when a Lambda times out or is killed.

Faults fire only while armed (`with faults.during(label) as call:` around one caller request), so
fixtures, nested "other callers" and the checks afterwards see a healthy table. Draws come from
one seeded `random.Random`, in the order the service makes its calls: a run is reproducible.
`force(kind)` makes a fault fire at its next opportunity, whatever the draw.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

_THROTTLE_CODES = ("ProvisionedThroughputExceededException", "ThrottlingException")


class SimulatedCrash(Exception):
    """The process died right after DynamoDB committed its transaction."""


@dataclass(frozen=True)
class Rates:
    throttle: float = 0.0  # per DynamoDB call
    conflict: float = 0.0  # per TransactWriteItems
    crash: float = 0.0  # per committed TransactWriteItems


@dataclass
class Call:
    """What was injected during one armed caller request."""

    injected: Counter = field(default_factory=Counter)

    @property
    def crashed(self) -> bool:
        return self.injected["crash"] > 0


def _error(code: str, message: str, **extra: Any) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {"Error": {"Code": code, "Message": message},
              "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}}, **extra}
    return AWSResponse("https://dynamodb.fault.invalid", 400, {}, None), parsed


class DynamoFaults:
    """Install with `with DynamoFaults(client, rng, rates) as faults:`.

    `interfere(operation, request)` (optional) runs before each armed call, before any fault is
    drawn: the chaos scenario uses it to let another caller act at a precise moment (between a
    request's reads and its write). It runs disarmed, so that caller sees no faults."""

    def __init__(self, client: Any, rng: random.Random, rates: Rates,
                 interfere: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self._events = client.meta.events
        self._rng = rng
        self.rates = rates
        self.interfere = interfere
        self._call: Call | None = None
        self._label = ""
        self._forced: set[str] = set()
        # (label, fault kind) -> how many were injected over the whole run.
        self.totals: Counter = Counter()

    def __enter__(self) -> DynamoFaults:
        self._events.register("before-call.dynamodb", self._before_call)
        self._events.register("after-call.dynamodb.TransactWriteItems", self._after_transaction)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._events.unregister("before-call.dynamodb", self._before_call)
        self._events.unregister("after-call.dynamodb.TransactWriteItems", self._after_transaction)

    @contextlib.contextmanager
    def during(self, label: str) -> Iterator[Call]:
        """Arm for one caller request; `label` names it in `totals`."""
        call = Call()
        self._call, self._label = call, label
        try:
            yield call
        finally:
            self._call = None

    @contextlib.contextmanager
    def disarmed(self) -> Iterator[None]:
        saved = self._call
        self._call = None
        try:
            yield
        finally:
            self._call = saved

    def force(self, *kinds: str) -> None:
        self._forced.update(kinds)

    def unforce(self) -> None:
        self._forced.clear()

    def _fires(self, kind: str, rate: float) -> bool:
        if kind in self._forced:
            self._forced.discard(kind)
            return True
        return self._rng.random() < rate

    def _inject(self, kind: str) -> None:
        assert self._call is not None
        self._call.injected[kind] += 1
        self.totals[(self._label, kind)] += 1

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        if self._call is None:
            return None
        operation = model.name
        if self.interfere is not None:
            with self.disarmed():
                self.interfere(operation, json.loads(params.get("body") or b"{}"))
        if self._fires("throttle", self.rates.throttle):
            self._inject("throttle")
            return _error(self._rng.choice(_THROTTLE_CODES), "Rate of requests exceeds the allowed throughput.")
        if operation == "TransactWriteItems" and self._fires("conflict", self.rates.conflict):
            self._inject("conflict")
            items = json.loads(params["body"])["TransactItems"]
            reasons = [{"Code": "None"} for _ in items]
            reasons[self._rng.randrange(len(items))] = {
                "Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
            return _error("TransactionCanceledException",
                          "Transaction cancelled, please refer cancellation reasons for specific reasons",
                          CancellationReasons=reasons)
        return None

    def _after_transaction(self, http_response: Any, **_: Any) -> None:
        if self._call is None or http_response.status_code >= 300:
            return  # not armed, or the transaction did not commit (nothing to lose)
        if self._fires("crash", self.rates.crash):
            self._inject("crash")
            raise SimulatedCrash("the Lambda died after DynamoDB committed")


def _contract_retry_later(answer: Any) -> bool:
    return bool((answer.json or {}).get("error", {}).get("code") == "retry_later")


def send_until_answered(faults: Any, kind: str, label: str, send: Callable[[], Any], problems: list[str],
                        attempts: int, retry_later: Callable[[Any], bool] = _contract_retry_later) -> Any:
    """Send as a caller that retries every 5xx with the same key: a 503 `retry_later` under an
    injected throttle and a 500 after an injected crash are retried; any other 5xx, an answer that
    hid an injected fault, or no answer after `attempts` is a problem. Returns the last answer."""
    answer = None
    for _ in range(attempts):
        with faults.during(kind) as call:
            answer = send()
        status, injected = answer.status_code, call.injected
        if status == 503 and injected["throttle"] and retry_later(answer):
            continue  # throttled: the caller tries again later, with the same key
        if status == 500 and call.crashed:
            continue  # the caller saw the process die after the write: it tries again
        if status >= 500:
            problems.append(f"5xx: {label}: {status} {answer.body[:300]!r} after injected {dict(injected)}")
            continue
        if call.crashed or injected["throttle"]:
            problems.append(f"swallowed: {label}: answered {status} though DynamoDB failed under it "
                            f"({dict(injected)})")
        break
    else:
        problems.append(f"5xx: {label}: still no answer after {attempts} tries")
    return answer
