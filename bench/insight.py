"""The analytics path: how many table changes a second the day counters absorb, whether any item
takes more than 1/8 of the writes, and what a million counted changes cost.

Synthetic stream images (orders, check-ins, redemptions of many members, one program day) go
through the reaction the stream function runs (`services.analytics.count_change`) on in-process
moto. Every write request's items are tallied by key; units come from bench/meter.py's rules.

    python -m bench.insight            # prints a Markdown section (not written to RESULTS.md)
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

# DynamoDB on-demand, us-east-1: USD per million write request units.
WRITE_PRICE_PER_MILLION = 1.25
EVENTS = int(os.environ.get("INSIGHT_EVENTS", "2000"))
# DynamoDB's per-partition write limit (write units per second): what one counter shard can take.
PARTITION_WRITE_LIMIT = 1000
METERED = 300


def _image(n: int) -> dict[str, Any]:
    member = f"m{n % 997:05d}"
    stamp = f"2026-05-10T0{n % 10}:{n % 60:02d}:00+00:00"
    common = {"program_id": "demo", "member_id": member, "created_at": stamp, "entry_id": f"e{n}"}
    if n % 3 == 0:
        return {**common, "kind": "order", "pk": f"P#demo#ORDER#o{n}", "sk": "ORDER", "type": "earn",
                "points": 10 + n % 50, "amount_fen": 1000 + n, "balance_after": 0}
    if n % 3 == 1:
        return {**common, "kind": "ledger", "pk": f"P#demo#M#{member}", "sk": f"OP#checkin#d{n}", "type": "earn",
                "points": 1, "balance_after": 0}
    return {**common, "kind": "ledger", "pk": f"P#demo#M#{member}", "sk": f"OP#redeem#r{n}", "type": "redeem",
            "points": -100, "balance_after": 0}


def run() -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from bench.run import _environment

    _environment()
    from chalicelib.seed import seed_demo_program
    from chalicelib.services import analytics
    from chalicelib.settings import get_settings
    from chalicelib.store import programs, schema, tx

    from devstack import serial_dynamodb

    serial_dynamodb.install()  # moto's transactions without copying the table (as in the tests and bench/run.py)
    with mock_aws():
        schema.create_table(boto3.client("dynamodb", region_name="us-east-1"), get_settings().table_name)
        programs.clear_cache()
        seed_demo_program()
        client = tx.connection().client
        writes: Counter[str] = Counter()

        def tally(params: dict[str, Any], **_: Any) -> None:
            for entry in params.get("TransactItems", []):
                (_, spec), = entry.items()
                key = spec.get("Key") or {k: spec["Item"][k] for k in ("pk", "sk")}
                writes[f"{key['pk']['S']}|{key['sk']['S']}"] += 1

        client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems", tally)
        analytics.count_change("INSERT", _image(0), {})  # warm: program cache, connections
        writes.clear()
        started = time.perf_counter()
        for n in range(1, EVENTS + 1):
            analytics.count_change("INSERT", _image(n), {})
        seconds = time.perf_counter() - started
        total = sum(writes.values())
        hottest_key, hottest = writes.most_common(1)[0]
        counters = {k: v for k, v in writes.items() if "#DAYSTAT#" in k}

        from bench.meter import Meter

        meter = Meter(client, get_settings().table_name, "us-east-1")
        with meter.measure() as units:
            for n in range(EVENTS + 1, EVENTS + 1 + METERED):
                analytics.count_change("INSERT", _image(n), {})
        with meter.measure() as again:  # the same changes redelivered: nothing is added
            for n in range(EVENTS + 1, EVENTS + 1 + METERED):
                analytics.count_change("INSERT", _image(n), {})
        meter.close()
    per_event = units.write_units / METERED
    counter_share = max(counters.values()) / sum(counters.values())
    return {
        # every change writes one counter shard (2 units, transactional): the hottest shard's share of them
        # bounds the rate the day's counters take on DynamoDB
        "aws_ceiling_events_per_second": int(PARTITION_WRITE_LIMIT / (2 * counter_share)),
        "events": EVENTS, "seconds": round(seconds, 2), "events_per_second": round(EVENTS / seconds),
        "items_written": len(writes), "writes": total,
        "hottest_item_share_pct": round(100 * hottest / total, 2), "hottest_item": hottest_key.split("|")[0],
        "counter_shards_used": len(counters),
        "hottest_counter_share_pct": round(100 * max(counters.values()) / total, 2),
        "hottest_counter_share_of_counter_writes_pct": round(100 * max(counters.values()) / sum(counters.values()), 2),
        "write_units_per_event": round(per_event, 2),
        "requests_per_event": round(units.requests / METERED, 2),
        "usd_per_million_events": round(per_event * WRITE_PRICE_PER_MILLION, 2),
        "redelivered_write_units": again.write_units,
    }


def render(figures: dict[str, Any]) -> str:
    return "\n".join([
        "## Daily analytics from the stream (bench/insight.py)",
        "",
        f"- {figures['events']} counted changes (orders, check-ins, redemptions of 997 members, one day) through "
        f"the stream reaction on in-process moto: **{figures['events_per_second']} changes/s** on this machine "
        f"({figures['seconds']} s).",
        f"- Writes: {figures['writes']} item writes over {figures['items_written']} items; the most written item "
        f"took **{figures['hottest_item_share_pct']} %** of them (a counter shard: "
        f"{figures['hottest_counter_share_pct']} % of all, "
        f"{figures['hottest_counter_share_of_counter_writes_pct']} % of the counter writes, over "
        f"{figures['counter_shards_used']} shards); limit 12.5 %.",
        f"- On DynamoDB the hottest counter shard reaches the {PARTITION_WRITE_LIMIT} write units/s partition limit "
        f"at about **{figures['aws_ceiling_events_per_second']} changes/s** per program (16 shards; every other "
        "item is written once). At 1,000 changes/s no item takes more than its shard's share.",
        f"- Cost: {figures['requests_per_event']} requests and {figures['write_units_per_event']} write units per "
        f"change (a 2-item transaction, 3 items when it makes a member active that day) = "
        f"**${figures['usd_per_million_events']} per million changes** at on-demand prices "
        f"(${WRITE_PRICE_PER_MILLION}/M write units); the same changes redelivered: "
        f"{figures['redelivered_write_units']} units written.",
    ])


def main() -> int:
    figures = run()
    print(render(figures))
    ok = figures["hottest_counter_share_of_counter_writes_pct"] <= 12.5 and figures["redelivered_write_units"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
