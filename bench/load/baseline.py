"""The bare baseline: each operation as the very DynamoDB calls the API made for it, with boto3.

The stack's recorder (devstack/dynamodb_recorder.py) keeps, for the first successful requests of
each operation, every DynamoDB call with its parameters and the items it read. A replay makes a
fresh copy of that request's world so its conditions hold exactly as they did for the API:

- every id of the request -- the member, the ids the caller chose (order, refund, hold, request,
  openid, reward), the till's nonce, the member id and invite code an enrolment drew -- is
  replaced by a new unique one in all the calls' keys and values;
- untimed, the items the request read (and had not written itself) are written back under those ids
  (the account at the version it had, the lots with what they held, the order being refunded...);
- timed: the calls, in order, as the API made them. A read-only request (card read) is replayed
  as it was, on its own member.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import time
from collections import defaultdict
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
_GENERATED = [re.compile(r"NONCE#[^#\"]+#([A-Za-z0-9]{16,64})"), re.compile(r"INVITE#([A-Z0-9]{6,16})"),
              re.compile(r"#M#(m[0-9a-f]{20})\b"),
              # what the service derives or draws for the second-wave operations: a top-up's WeChat Pay
              # order number (a hash of the caller's key), a coupon's code and id
              re.compile(r"PAYORDER#((?:tu|rw)[0-9a-f]{30})"), re.compile(r"COUPON#([2-9A-HJ-NP-Z]{12})\b"),
              re.compile(r"\b(cp[0-9a-f]{18})\b")]
_counter = itertools.count()


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


class Template:
    def __init__(self, op: str, raw: dict[str, Any]) -> None:
        self.op = op
        calls = raw["calls"]
        text = json.dumps(calls)
        originals = {raw["member"], *raw["ids"]}
        for pattern in _GENERATED:
            originals.update(pattern.findall(text))
        # Longest first, so an id inside a longer one is not replaced piecemeal.
        self.originals = sorted((o for o in originals if o and len(o) >= 6), key=len, reverse=True)
        self.read_only = not any(c["operation"] in _WRITES for c in calls)
        seen: dict[str, Any] = {}
        written: set[str] = set()
        for call in calls:  # what it read before writing it itself: the world it found
            for item in call["read"]:
                key = _key(item)
                if key not in written:
                    seen.setdefault(key, item)
            written.update(_key(k) for k in _written_keys(call["operation"], call["params"]))
        self.calls_text = json.dumps([{"operation": c["operation"], "params": c["params"]} for c in calls])
        self.prepare_text = json.dumps(list(seen.values()))

    def instance(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(items to write first, calls to time) with fresh ids."""
        if self.read_only:
            return [], _restore(json.loads(self.calls_text))
        suffix = f"R{next(_counter)}r{random.randrange(36 ** 4):04x}"
        calls, prepare = self.calls_text, self.prepare_text
        for original in self.originals:
            calls = calls.replace(original, original + suffix)
            prepare = prepare.replace(original, original + suffix)
        return _restore(json.loads(prepare)), _restore(json.loads(calls))


class BareReplayer:
    def __init__(self, record_path: str, endpoint: str, region: str = "us-east-1") -> None:
        self.templates: dict[str, list[Template]] = defaultdict(list)
        with open(record_path, encoding="utf-8") as lines:
            for line in lines:
                entry = json.loads(line)
                if entry.get("template") and not entry["op"].endswith("(replay)"):
                    self.templates[entry["op"]].append(Template(entry["op"], entry["template"]))
        # As PynamoDB's client is set up for the app (chalicelib/store/models.py): few retries.
        self.client = boto3.session.Session().client(
            "dynamodb", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
            aws_secret_access_key="testing", config=Config(retries={"max_attempts": 3, "mode": "standard"}))
        self.table = None

    def has(self, op: str) -> bool:
        return bool(self.templates.get(op))

    def run(self, op: str) -> tuple[float, str | None]:
        """Prepare (untimed) and replay one request; (milliseconds, error code or None)."""
        template = random.choice(self.templates[op])
        items, calls = template.instance()
        self._prepare(items)
        started = time.perf_counter()
        error = None
        for call in calls:
            method = getattr(self.client, _snake(call["operation"]))
            try:
                method(**call["params"])
            except ClientError as failure:
                error = failure.response.get("Error", {}).get("Code", "ClientError")
        return (time.perf_counter() - started) * 1000, error

    def _prepare(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        table = self._table_name()
        for start in range(0, len(items), 25):
            self.client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]})

    def _table_name(self) -> str:
        if self.table is None:
            for templates in self.templates.values():
                for template in templates:
                    for call in json.loads(template.calls_text):
                        params = call["params"]
                        name = params.get("TableName") or next(iter(params.get("RequestItems", {})), None)
                        if name:
                            self.table = name
                            return name
            raise RuntimeError("no table named in the recorded calls")
        return self.table


def _key(item: dict[str, Any]) -> str:
    return json.dumps([item.get("pk"), item.get("sk")])


def _written_keys(operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    if operation == "PutItem":
        return [params["Item"]]
    if operation in ("UpdateItem", "DeleteItem"):
        return [params["Key"]]
    if operation == "TransactWriteItems":
        return [spec.get("Key") or spec["Item"] for entry in params["TransactItems"] for spec in entry.values()]
    if operation == "BatchWriteItem":
        return [r.get("PutRequest", {}).get("Item") or r["DeleteRequest"]["Key"]
                for requests in params["RequestItems"].values() for r in requests]
    return []


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
