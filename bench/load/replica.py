"""How much of the local stack's memory is its data: the same writes, replayed into a fresh
embedded DynamoDB that does nothing else.

The soak asks whether the stack's memory grows for any reason other than the data it holds. The
embedded DynamoDB keeps every item and, as moto never trims a stream, every stream record since the
table was made; both grow with every write, as a real table and stream would. Estimating their
bytes from Python object sizes missed the allocator's overhead and counted objects shared between
an item and its stream records more than once (the estimate came out both above and below the
RSS it was taken from). Measured instead:

1. ``dump_stream``: after the run, the table's stream is read from the start (GetRecords, in
   order) up to the last memory sample of the load, each record's event and images to a file.
2. ``replay`` (``python -m bench.load.replica``, a fresh process): the embedded DynamoDB as the
   stack runs it (``serial_dynamodb.install()``), the table made from the same schema, then every
   record applied in order -- INSERT and MODIFY as a put of the new image, REMOVE as a delete --
   through moto's own write path, so the items, the GSI partitions and the stream records are
   made by the same code as in the stack. A scalar attribute whose value the item already holds
   reuses that value's object, as an update in place does in the stack (a put would make new ones
   and overstate the data); nothing else is kept beside the table. At each sample's record count the replay
   stops, collects garbage and reads its RSS: the data's memory at that moment is that RSS less
   the RSS before the first record. The replay checks it holds as many items as the stack did.

RSS less data is then the stack's RSS less that figure, sample by sample: what serving requests
costs (caches, buffers, the allocator's fragmentation) and anything that leaks.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

from devstack import serial_dynamodb

TABLE = "loyalty-local"
BATCH = 1000


def dump_stream(endpoint: str, path: Path, upto: int, table: str = TABLE) -> int:
    """The first ``upto`` records of the table's stream to ``path`` (one JSON line each: event,
    keys, new image); returns how many were written."""
    import boto3

    from devstack.stream_pump import to_lambda_record

    local = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "testing",
             "aws_secret_access_key": "testing"}
    dynamodb = boto3.client("dynamodb", **local)
    streams = boto3.client("dynamodbstreams", **local)
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for shard in shards:
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator and written < upto:
                answer = streams.get_records(ShardIterator=iterator, Limit=BATCH)
                for raw in answer["Records"][: upto - written]:
                    record = to_lambda_record(raw, stream_arn=arn, region="us-east-1")  # binary as base64
                    change = record["dynamodb"]
                    out.write(json.dumps({"event": record["eventName"], "keys": change["Keys"],
                                          "new": change.get("NewImage")}) + "\n")
                    written += 1
                if not answer["Records"]:
                    break
                iterator = answer.get("NextShardIterator")
    return written


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


_SCALARS = ("S", "N", "B")


def _sharing(current: Any, image: dict[str, Any]) -> dict[str, Any]:
    """``image`` with each scalar attribute whose value the current item already holds taking that
    value's object, as an update in place leaves it in the stack (the current item: moto's Item,
    or None)."""
    if current is None:
        return image
    held = current.attrs
    shared = {}
    for name, value in image.items():
        old = held.get(name)
        if old is not None and old.type in _SCALARS and value.get(old.type) == old.value:
            value = {old.type: old.value}
        shared[name] = value
    return shared


class Replica:
    """A fresh embedded DynamoDB holding one table made from the app's schema."""

    def __init__(self, table: str = TABLE) -> None:
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                          AWS_DEFAULT_REGION="us-east-1")
        import boto3
        from moto import mock_aws
        from moto.dynamodb.models import dynamodb_backends

        from chalicelib.store import schema

        serial_dynamodb.install()
        self._mock = mock_aws()
        self._mock.start()
        schema.create_table(boto3.client("dynamodb", region_name="us-east-1"), table)
        self.name = table
        self.backend = dynamodb_backends["123456789012"]["us-east-1"]
        self.table = self.backend.get_table(table)
        serial_dynamodb._partitions(self.table)  # the GSI partitions, kept current from here on

    def apply(self, record: dict[str, Any]) -> None:
        if record["event"] == "REMOVE":
            self.backend.delete_item(self.name, record["keys"])
            return
        hash_value, range_value = serial_dynamodb._primary(self.table, record["keys"])
        current = serial_dynamodb._current(self.table, hash_value, range_value)
        self.backend.put_item(self.name, _sharing(current, record["new"]))

    def items(self) -> int:
        return sum(len(bucket) for bucket in self.table.items.values())

    def records(self) -> int:
        return len(self.table.stream_shard.items) if self.table.stream_shard is not None else 0

    def stop(self) -> None:
        self._mock.stop()


def replay(path: Path, marks: list[int]) -> dict[str, Any]:
    """Apply the dumped records in order; at each mark (a record count), the RSS and the items held."""
    import psutil

    replica = Replica()
    gc.collect()
    process = psutil.Process()
    empty = process.memory_info().rss
    figures: list[dict[str, int]] = []
    wanted = sorted(set(marks))
    applied = 0
    records = _records(path)
    for mark in wanted:
        for record in records:
            replica.apply(record)
            applied += 1
            if applied >= mark:
                break
        gc.collect()
        rss = process.memory_info().rss
        figures.append({"records": applied, "items": replica.items(), "rss": rss, "data": rss - empty})
    replica.stop()
    return {"empty_rss": empty, "marks": figures}


def measure(endpoint: str, run_dir: Path, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Dump the stream up to the last sample, replay it in a fresh process; the data's memory at
    each sample's record count (``{records: bytes}``), and whether the items matched."""
    marks = sorted({s["stream_records"] for s in samples})
    path = run_dir / "stream.jsonl"
    written = dump_stream(endpoint, path, max(marks))
    answer = subprocess.run([sys.executable, "-m", "bench.load.replica", str(path), *map(str, marks)],
                            capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    figures = json.loads(answer.stdout)
    held = {s["stream_records"]: s["items"] for s in samples}
    figures["dumped"] = written
    figures["items_match"] = all(held.get(m["records"]) == m["items"] for m in figures["marks"])
    path.unlink()  # hundreds of MB; the figures are in the report
    return figures


if __name__ == "__main__":
    print(json.dumps(replay(Path(sys.argv[1]), [int(m) for m in sys.argv[2:]])))
