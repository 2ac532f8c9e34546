"""Counts what each operation costs in DynamoDB: requests, read units and write units.

Requests are counted with botocore event hooks on the client PynamoDB uses, so every call the
service makes is seen. moto reports no real consumed capacity, so units are computed from item
sizes by DynamoDB's published rules (on-demand):

- write: 1 unit per KB of the larger of the item before and after; x2 inside a transaction;
- read: 1 unit per 4 KB (strongly consistent), half that eventually consistent; for a Query the
  sizes of all items returned are added before rounding; x2 inside a transaction.

Item sizes are read through a separate, unmetered boto3 client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import boto3

_WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def item_size(item: dict[str, Any] | None) -> int:
    """DynamoDB's item size: attribute names plus values (numbers approximated generously)."""
    if not item:
        return 0
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, raw), = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return len(raw.lstrip("-").replace(".", "")) // 2 + 2
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in raw)
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: v}) for v in raw)
    return 0


@dataclass
class Tally:
    requests: int = 0
    items_read: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    operations: list[str] = field(default_factory=list)


class Meter:
    """Attach to PynamoDB's botocore client; `with meter.measure() as tally: ...`."""

    def __init__(self, client: Any, table_name: str, region: str, endpoint_url: str | None = None) -> None:
        self._client = client
        self._table = table_name
        self._raw = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url)
        self._tally: Tally | None = None
        self._pending: list[tuple[dict[str, Any], int, int]] = []
        self._consistent = True
        self._requested = 0
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def measure(self) -> _Measuring:
        return _Measuring(self)

    def close(self) -> None:
        self._client.meta.events.unregister("before-parameter-build.dynamodb", self._before)
        self._client.meta.events.unregister("after-call.dynamodb", self._after)

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._raw.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item")

    def _write_keys(self, operation: str, params: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
        """(key, multiplier) of every item a write touches."""
        if operation == "TransactWriteItems":
            found = []
            for entry in params["TransactItems"]:
                (kind, spec), = entry.items()
                if kind == "ConditionCheck":
                    continue  # charged as a read of the item, counted below
                key = spec.get("Key") or {k: spec["Item"][k] for k in ("pk", "sk")}
                found.append((key, 2))
            return found
        if operation == "PutItem":
            return [({k: params["Item"][k] for k in ("pk", "sk")}, 1)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["Key"], 1)]
        return []

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if self._tally is None:
            return
        operation = model.name
        self._tally.requests += 1
        self._tally.operations.append(operation)
        self._pending = [(key, mult, item_size(self._get(key))) for key, mult in self._write_keys(operation, params)]
        self._consistent = bool(params.get("ConsistentRead")) or any(
            spec.get("ConsistentRead") for spec in params.get("RequestItems", {}).values())
        self._requested = sum(len(spec.get("Keys", [])) for spec in params.get("RequestItems", {}).values())
        if operation == "TransactWriteItems":
            checks = [e["ConditionCheck"] for e in params["TransactItems"] if "ConditionCheck" in e]
            for check in checks:
                self._tally.read_units += 2 * max(1, math.ceil(item_size(self._get(check["Key"])) / 4096))

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if self._tally is None:
            return
        operation = model.name
        failed = "Error" in parsed
        if operation in _WRITE_OPS and not failed:
            for key, mult, before in self._pending:
                self._tally.write_units += write_units(before, item_size(self._get(key)), mult == 2)
        factor = 1.0 if self._consistent else 0.5
        if operation == "GetItem":
            self._tally.items_read += 1 if parsed.get("Item") else 0
            self._tally.read_units += factor * read_units([parsed.get("Item")], per_item=True)
        elif operation == "BatchGetItem":
            items = [i for table in parsed.get("Responses", {}).values() for i in table]
            self._tally.items_read += len(items)
            missing = max(0, self._requested - len(items))  # a key not found still costs a unit
            self._tally.read_units += factor * (read_units(items, per_item=True) + missing)
        elif operation in ("Query", "Scan"):
            self._tally.items_read += len(parsed.get("Items", []))
            self._tally.read_units += factor * read_units(parsed.get("Items", []), per_item=False)
        self._pending = []


def write_units(before_size: int, after_size: int, transactional: bool) -> float:
    """One item written: 1 unit per KB of the larger of before and after, x2 in a transaction."""
    return (2 if transactional else 1) * max(1, math.ceil(max(before_size, after_size) / 1024))


def read_units(items: list[dict[str, Any] | None], per_item: bool) -> float:
    """Strongly consistent: 1 unit per 4 KB, per item (GetItem, BatchGetItem) or summed (Query)."""
    if per_item:
        return float(sum(max(1, math.ceil(item_size(i) / 4096)) for i in items))
    return float(max(1, math.ceil(sum(item_size(i) for i in items) / 4096)))


class _Measuring:
    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self.tally = Tally()

    def __enter__(self) -> Tally:
        self._meter._tally = self.tally
        return self.tally

    def __exit__(self, *exc: object) -> None:
        self._meter._tally = None
