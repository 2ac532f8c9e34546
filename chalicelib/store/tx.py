"""One DynamoDB transaction whose failed conditions are reported by name.

PynamoDB sends a transaction's items grouped by type (condition checks, deletes, puts, updates),
so DynamoDB's cancellation reasons come back in that order, not in the order they were added.
This wrapper labels every item and turns a cancellation into `ConditionsFailed({labels})`, so
that callers can tell "this order was already recorded" from "the balance moved under us".
"""

from __future__ import annotations

from typing import Any, Callable

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.store.models import TableItem

_GROUP_ORDER = ("check", "delete", "put", "update")


class ConditionsFailed(Exception):
    def __init__(self, labels: set[str]) -> None:
        super().__init__(f"transaction conditions failed: {sorted(labels)}")
        self.labels = labels


class TransactionConflict(Exception):
    """Another transaction touched the same items at the same moment (retry)."""


def connection() -> Any:
    """The PynamoDB connection every model uses (one botocore client per container)."""
    return TableItem._get_connection().connection


class Transaction:
    def __init__(self) -> None:
        self._tx = TransactWrite(connection=connection())
        self._labels: dict[str, list[str]] = {group: [] for group in _GROUP_ORDER}
        self._committed: list[Callable[[], None]] = []

    def check(self, model: type[Model], key: tuple[str, str], condition: Condition, *, label: str) -> Transaction:
        """A condition on an item the transaction does not change (it must hold at commit)."""
        self._tx.condition_check(model, key[0], key[1], condition=condition)
        self._labels["check"].append(label)
        return self

    def put(self, item: Model, condition: Condition | None = None, *, label: str) -> Transaction:
        self._tx.save(item, condition=condition)
        self._labels["put"].append(label)
        return self

    def update(self, item: Model, actions: list[Action], condition: Condition | None = None, *,
               label: str) -> Transaction:
        self._tx.update(item, actions=actions, condition=condition, add_version_condition=False)
        self._labels["update"].append(label)
        return self

    def delete(self, item: Model, condition: Condition | None = None, *, label: str) -> Transaction:
        self._tx.delete(item, condition=condition, add_version_condition=False)
        self._labels["delete"].append(label)
        return self

    def after_commit(self, callback: Callable[[], None]) -> Transaction:
        """Run `callback` once the transaction has committed (never if it fails)."""
        self._committed.append(callback)
        return self

    def __len__(self) -> int:
        return sum(len(v) for v in self._labels.values())

    def commit(self) -> None:
        try:
            self._tx._commit()
        except TransactWriteError as exc:
            if exc.cause_response_code != "TransactionCanceledException":
                raise
            ordered = [label for group in _GROUP_ORDER for label in self._labels[group]]
            reasons = exc.cancellation_reasons or []
            failed = {label for label, reason in zip(ordered, reasons)
                      if reason is not None and reason.code == "ConditionalCheckFailed"}
            if failed:
                raise ConditionsFailed(failed) from exc
            codes = {reason.code for reason in reasons if reason is not None}
            if codes & {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"} or not codes:
                raise TransactionConflict(str(codes)) from exc
            raise
        for callback in self._committed:
            callback()
