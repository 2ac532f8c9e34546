"""Query time against table size in the local stack's DynamoDB (`make bench-query`).

The table (the app's schema) grows from 1,000 to 100,000 items, written with BatchWriteItem
through moto's API so every write keeps the partitions current; at each size the same 9-item
Query (a member-like partition: base table by pk, and GSI1 by gsi1pk) is timed, median of many,
after a warm-up, once partitioned (devstack/serial_dynamodb.py) and once with moto walking the table as unpatched.
`--write` records the table in bench/QUERY.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1_000, 10_000, 100_000)
PER_PARTITION = 9
TABLE = "query-scale"


def _fill(client: Any, start: int, end: int) -> None:
    batch: list[dict[str, Any]] = []
    for n in range(start, end):
        partition = n // PER_PARTITION
        item = {"pk": {"S": f"P#demo#M#{partition:07d}"}, "sk": {"S": f"L#{n % PER_PARTITION:03d}"},
                "gsi1pk": {"S": f"P#demo#M#{partition:07d}#H"}, "gsi1sk": {"S": f"2026-{n % PER_PARTITION:03d}"},
                "points": {"N": str(n % 500)}, "detail": {"S": "x" * 80}}
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:
            client.batch_write_item(RequestItems={TABLE: batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={TABLE: batch})


def _median_ms(call: Any, samples: int) -> float:
    for _ in range(min(samples, 20)):  # warm-up: botocore's first calls build their models
        call()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def run(sizes: tuple[int, ...] = SIZES, walk_samples: int = 5) -> list[dict[str, Any]]:
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    import boto3
    from moto import mock_aws

    from chalicelib.store import schema
    from devstack import serial_dynamodb

    serial_dynamodb.install()
    rows = []
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**schema.create_table_kwargs(TABLE))
        written = 0
        for size in sizes:
            _fill(client, written, size)
            written = size
            partition = f"P#demo#M#{(size // PER_PARTITION) // 2:07d}"

            def base() -> None:
                answer = client.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                                      ExpressionAttributeValues={":p": {"S": partition}})
                assert answer["Count"] == PER_PARTITION

            def gsi() -> None:
                answer = client.query(TableName=TABLE, IndexName="gsi1", KeyConditionExpression="gsi1pk = :p",
                                      ScanIndexForward=False,
                                      ExpressionAttributeValues={":p": {"S": partition + "#H"}})
                assert answer["Count"] == PER_PARTITION

            row = {"items": size, "base_ms": _median_ms(base, 200), "gsi_ms": _median_ms(gsi, 200)}
            with serial_dynamodb.moto_walks_the_table():
                row["walk_base_ms"] = _median_ms(base, walk_samples)
                row["walk_gsi_ms"] = _median_ms(gsi, walk_samples)
            rows.append(row)
            print(f"{size:>7} items: partitioned base {row['base_ms']:.2f} ms, GSI {row['gsi_ms']:.2f} ms; "
                  f"moto's walk base {row['walk_base_ms']:.1f} ms, GSI {row['walk_gsi_ms']:.1f} ms", flush=True)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| items in table | Query, base table (partitioned) | Query, GSI1 (partitioned) | "
             "base table, moto's walk | GSI1, moto's walk |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['items']:,} | {r['base_ms']:.2f} ms | {r['gsi_ms']:.2f} ms | {r['walk_base_ms']:.1f} ms | "
                     f"{r['walk_gsi_ms']:.1f} ms |")
    first, last = rows[0], rows[-1]
    lines.append("")
    lines.append(f"Partitioned, {last['items']:,} / {first['items']:,} items: base x{last['base_ms'] / first['base_ms']:.2f}, "
                 f"GSI x{last['gsi_ms'] / first['gsi_ms']:.2f} (flat); moto's walk: base "
                 f"x{last['walk_base_ms'] / first['walk_base_ms']:.0f}, GSI x{last['walk_gsi_ms'] / first['walk_gsi_ms']:.0f}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="record the table in bench/QUERY.md")
    args = parser.parse_args(argv)
    rows = run()
    table = render(rows)
    print(table)
    if args.write:
        machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        (ROOT / "bench" / "QUERY.md").write_text(
            f"# Query time against table size (embedded DynamoDB)\n\nRecorded {dt.date.today().isoformat()} on "
            f"{machine}, by `make bench-query` (bench/query_scale.py): a {PER_PARTITION}-item Query, median of "
            f"200 (moto's walk: of 5), in-process moto 5.2.5 with the local stack's patches.\n\n{table}\n")
    last = rows[-1]
    flat = last["base_ms"] <= 2 * rows[0]["base_ms"] and last["gsi_ms"] <= 2 * rows[0]["gsi_ms"]
    print("Query time flat from 1,000 to 100,000 items: " + ("yes" if flat else "NO"))
    return 0 if flat else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
