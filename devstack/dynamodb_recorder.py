"""Records, inside ``chalice local``, the DynamoDB calls each API request makes (load runs only).

Installed by ``devstack/chalice_local.py`` when ``DEVSTACK_DYNAMODB_RECORD`` names a file; a
normal ``make run`` never loads it. A request is labelled by the load client's headers
(``X-Load-Op``: the operation; ``X-Load-Member``; ``X-Load-Ids``: the ids the caller chose, comma
separated), which the app ignores. For every labelled request one JSON line is appended:

    {"op": "order", "status": 201, "calls": ["BatchGetItem", "TransactWriteItems", ...],
     "failed_calls": 0, "read_units": 1.5, "write_units": 7, "template": {...} | null}

Units follow bench/meter.py's rules (DynamoDB's published on-demand arithmetic), computed from
what the calls carried and what the request read before writing, so recording adds no request:
a write's size before is the item as this request read it (0 for an item it did not read, which
is exact for the conditional puts of new rows and close for small updated items).

``template`` (the first few successful requests of each operation, made without a retry) holds
the calls with their parameters and the items they read; bench/load replays them with bare boto3
as the baseline (bench/load/baseline.py).
"""

from __future__ import annotations

import base64
import json
import math
import os
import threading
from collections import Counter
from typing import Any

from bench.meter import item_size, read_units, write_units

TEMPLATES_PER_OP = 25

_context = threading.local()
_file_lock = threading.Lock()
_templates: Counter[str] = Counter()


def _plain(value: Any) -> Any:
    """botocore parameters and answers as JSON (binary values marked, to be restored)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"__b64__": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set):
        return [_plain(v) for v in sorted(value, key=str)]
    return value


def _key_of(item: dict[str, Any]) -> str:
    return json.dumps([item.get("pk"), item.get("sk")], sort_keys=True)


class _Request:
    def __init__(self, op: str, member: str, ids: list[str]) -> None:
        self.op, self.member, self.ids = op, member, ids
        self.calls: list[dict[str, Any]] = []
        self.read: dict[str, dict[str, Any]] = {}  # key -> item as first read
        self.failed = 0
        self.read_units = 0.0
        self.write_units = 0.0

    def saw(self, operation: str, params: dict[str, Any], answer: dict[str, Any] | None, error: str | None) -> None:
        params, answer = _plain(params), _plain(answer) if answer is not None else None
        self.calls.append({"operation": operation, "params": params, "error": error,
                           "read": self._items_in(operation, answer) if answer else []})
        if error:
            self.failed += 1
        consistent = bool(params.get("ConsistentRead")) or any(
            spec.get("ConsistentRead") for spec in params.get("RequestItems", {}).values()
            if isinstance(spec, dict))
        factor = 1.0 if consistent else 0.5
        if answer is not None:
            items = self._items_in(operation, answer)
            for item in items:
                self.read.setdefault(_key_of(item), item)
            if operation in ("GetItem", "BatchGetItem"):
                requested = sum(len(spec.get("Keys", [])) for spec in params.get("RequestItems", {}).values()) \
                    if operation == "BatchGetItem" else 1
                self.read_units += factor * (read_units(items, per_item=True) + max(0, requested - len(items)))
            elif operation in ("Query", "Scan"):
                self.read_units += factor * read_units(items, per_item=False)
        if error is None:
            self.write_units += self._write_units(operation, params)

    @staticmethod
    def _items_in(operation: str, answer: dict[str, Any]) -> list[dict[str, Any]]:
        if operation == "GetItem":
            return [answer["Item"]] if answer.get("Item") else []
        if operation == "BatchGetItem":
            return [i for items in answer.get("Responses", {}).values() for i in items]
        if operation in ("Query", "Scan"):
            return list(answer.get("Items", []))
        return []

    def _write_units(self, operation: str, params: dict[str, Any]) -> float:
        writes: list[tuple[dict[str, Any], dict[str, Any] | None, bool]] = []  # key, item after, in tx
        if operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                (kind, spec), = entry.items()
                if kind == "ConditionCheck":
                    self.read_units += 2 * max(1, math.ceil(item_size(self.read.get(_key_of(spec["Key"]))) / 4096))
                    continue
                writes.append((spec.get("Key") or spec["Item"], spec.get("Item"), True))
        elif operation == "PutItem":
            writes.append((params["Item"], params["Item"], False))
        elif operation in ("UpdateItem", "DeleteItem"):
            writes.append((params["Key"], None, False))
        elif operation == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    put = request.get("PutRequest")
                    writes.append(((put or request["DeleteRequest"])["Item" if put else "Key"],
                                   put["Item"] if put else None, False))
        total = 0.0
        for key, after, in_tx in writes:
            before = item_size(self.read.get(_key_of(key)))
            total += write_units(before, item_size(after) if after is not None else before, in_tx)
        return total

    def line(self, status: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "op": self.op, "status": status, "calls": [c["operation"] for c in self.calls],
            "failed_calls": self.failed, "read_units": self.read_units, "write_units": self.write_units,
            "template": None,
        }
        if 200 <= status < 300 and not self.failed and _templates[self.op] < TEMPLATES_PER_OP:
            _templates[self.op] += 1
            entry["template"] = {"member": self.member, "ids": self.ids, "calls": self.calls}
        return entry


def install(path: str) -> None:
    """Wrap chalice's local gateway (a request's scope) and botocore's call (what it sends)."""
    import botocore.client
    from chalice import local

    out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process
    handle_request = local.LocalGateway.handle_request

    def recorded_request(self: Any, method: str, path: str, headers: Any, body: Any) -> Any:
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        op = lowered.get("x-load-op")
        if not op:
            return handle_request(self, method, path, headers, body)
        _context.request = _Request(op, lowered.get("x-load-member", ""),
                                    [i for i in lowered.get("x-load-ids", "").split(",") if i])
        status = 0
        try:
            response = handle_request(self, method, path, headers, body)
            status = int(response.get("statusCode", 0))
            return response
        finally:
            request, _context.request = _context.request, None
            line = json.dumps(request.line(status), ensure_ascii=False)
            with _file_lock:
                out.write(line + "\n")

    make_api_call = botocore.client.BaseClient._make_api_call

    def recorded_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        request = getattr(_context, "request", None)
        if request is None or self.meta.service_model.service_name != "dynamodb":
            return make_api_call(self, operation_name, api_params)
        try:
            answer = make_api_call(self, operation_name, api_params)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code") or type(error).__name__
            request.saw(operation_name, api_params, None, code)
            raise
        request.saw(operation_name, api_params, answer, None)
        return answer

    local.LocalGateway.handle_request = recorded_request  # type: ignore[method-assign]
    botocore.client.BaseClient._make_api_call = recorded_call  # type: ignore[method-assign]


def install_from_environment() -> None:
    path = os.environ.get("DEVSTACK_DYNAMODB_RECORD")
    if path:
        install(path)
