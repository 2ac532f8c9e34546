"""The nightly RFM job on 10,000 seeded members against a plain-Python reference; each member's
history is read once."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from zoneinfo import ZoneInfo

from chalicelib.store import keys

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = dt.date(2026, 6, 30)
MEMBERS = 10_000


def _stamp(day: dt.date, n: int) -> str:
    moment = dt.datetime.combine(day, dt.time(10, n % 60), SHANGHAI).astimezone(dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


class _Backend:
    """Writes straight into moto's in-process table: the items the services would have left,
    serialised by their models, without a BatchWriteItem round trip (botocore serialisation,
    moto's request parsing) per 25 items. The job under test still reads through the API."""

    def __init__(self):
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from chalicelib.settings import get_settings

        self.table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(get_settings().table_name)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return False

    def save(self, item) -> None:
        self.table.put_item(item.serialize())

    def items(self, sk: str) -> list[dict]:
        return [raw for raw in (i.to_json()["Attributes"] for i in self.table.all_items()) if raw["sk"]["S"] == sk]


def _seed(rng: random.Random) -> dict[str, list[tuple[dt.date, int, int]]]:
    """Members, orders (some before the 12-month window, a few after as_of) and refunds, written
    into the table as the services would have left them; returns member -> [(day, amount, refunded)]."""
    from chalicelib.store.models import LedgerItem, OrderItem, ProfileItem

    history: dict[str, list[tuple[dt.date, int, int]]] = {}
    with _Backend() as batch:
        for n in range(MEMBERS):
            member_id = f"rfm{n:05d}"
            gsi1pk, gsi1sk = keys.members_list("demo", member_id)
            batch.save(ProfileItem(*keys.profile("demo", member_id), program_id="demo", member_id=member_id,
                                   openid=f"o{n}", invite_code=f"I{n:06d}", enrolled_at="2025-01-01T00:00:00+00:00",
                                   gsi1pk=gsi1pk, gsi1sk=gsi1sk))
            # Most members order once (frequency is then scored by thresholds); some never.
            count = rng.choice([0, 1, 1, 1, 1, 1, 2, 2, 3, 5, 9])
            orders = []
            for k in range(count):
                day = AS_OF - dt.timedelta(days=rng.randrange(0, 420))
                if k == 0 and n % 97 == 0:
                    day = AS_OF + dt.timedelta(days=1)  # after as_of: not counted
                amount = rng.randrange(1, 200) * 500
                refunded = 0
                if n % 13 == 0:
                    refunded = amount if k == 0 else amount // 2
                order_id = f"{member_id}-{k}"
                stamp = _stamp(day, n + k)
                batch.save(OrderItem(*keys.order("demo", order_id), program_id="demo", member_id=member_id,
                                     entry_id=f"e{order_id}", type="earn", points=amount // 100, balance_after=0,
                                     reason="order", ref=order_id, created_at=stamp, amount_fen=amount,
                                     gsi1pk=keys.points_history("demo", member_id),
                                     gsi1sk=keys.history_sort(stamp, f"e{order_id}")))
                if refunded:
                    refund_stamp = _stamp(day, n + k + 1)
                    batch.save(LedgerItem(*keys.refund("demo", order_id, "r1"), program_id="demo", member_id=member_id,
                                          entry_id=f"r{order_id}", type="reverse", points=-1, balance_after=0,
                                          reason="refund", ref=order_id, created_at=refund_stamp,
                                          detail={"amount_fen": refunded},
                                          gsi1pk=keys.points_history("demo", member_id),
                                          gsi1sk=keys.history_sort(refund_stamp, f"r{order_id}")))
                orders.append((day, amount, refunded))
            history[member_id] = orders
    return history


def reference(history, window_from: dt.date) -> dict[str, tuple[int, int, int, int, int, int]]:
    """member -> (recency days, frequency, monetary, r, f, m), computed from first principles:
    a score is 1 + 5 x (members strictly worse) / members, or the default thresholds."""
    raw = {}
    for member_id, orders in history.items():
        kept = [(day, amount - refunded) for day, amount, refunded in orders
                if window_from <= day <= AS_OF and amount - refunded > 0]
        if kept:
            raw[member_id] = ((AS_OF - max(d for d, _ in kept)).days, len(kept), sum(a for _, a in kept))
    n = len(raw)

    def splits(values):
        return n >= 5 and Counter(values).most_common(1)[0][1] * 2 <= n

    def score(values, higher_better, thresholds):
        if splits(list(values.values())):
            # rank by sorting: a value's score counts the members strictly worse than it
            ordered = sorted(values.values(), reverse=not higher_better)
            worse_than = {}
            for position, v in enumerate(ordered):
                worse_than.setdefault(v, position)
            return {member_id: 1 + worse_than[v] * 5 // n for member_id, v in values.items()}
        if higher_better:
            return {m: 1 + sum(v >= t for t in thresholds) for m, v in values.items()}
        return {m: 5 - sum(v > t for t in thresholds) for m, v in values.items()}

    r = score({m: v[0] for m, v in raw.items()}, False, [30, 90, 180, 365])
    f = score({m: v[1] for m, v in raw.items()}, True, [2, 3, 5, 8])
    mo = score({m: v[2] for m, v in raw.items()}, True, [10_000, 30_000, 100_000, 300_000])
    return {m: (*raw[m], r[m], f[m], mo[m]) for m in raw}


def test_rfm_of_ten_thousand_members_matches_the_reference_and_reads_each_history_once(api):
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings
    from chalicelib.store import tx
    from chalicelib.store.models import RfmItem, TableItem

    history = _seed(random.Random(15))
    queries: Counter[str] = Counter()

    def count(params, **_):
        for value in params.get("ExpressionAttributeValues", {}).values():
            if str(value.get("S", "")).endswith("#POINTS"):
                queries[value["S"]] += 1

    client = tx.connection().client
    client.meta.events.register("before-parameter-build.dynamodb.Query", count)
    try:
        summary = jobs.run_job(get_settings(), wiring.daily_jobs(), "demo", "rfm", AS_OF)
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.Query", count)
    histories = {k: v for k, v in queries.items() if k.endswith("#POINTS")}
    assert len(histories) == MEMBERS and max(histories.values()) == 1

    expected = reference(history, dt.date(2025, 6, 30))
    assert summary["scored"] == len(expected) and summary["without_orders"] == MEMBERS - len(expected)
    assert summary["scoring"] == {"r": "quintiles", "f": "thresholds", "m": "quintiles"}
    got = {}
    for raw in _Backend().items("RFM"):  # every RFM item in the table (members without orders have none)
        item = TableItem.from_raw_data(raw)
        assert isinstance(item, RfmItem) and item.as_of == AS_OF.isoformat()
        got[item.member_id] = (int(item.recency_days), int(item.frequency), int(item.monetary_fen),
                               int(item.r), int(item.f), int(item.m))
    assert got == expected
    scores = Counter((v[3], v[4], v[5]) for v in got.values())
    assert scores[(5, 5, 5)] and scores[(1, 1, 1)]
    repeat = sum(1 for v in expected.values() if v[1] >= 2)
    assert summary["repurchase_rate_bp"] == repeat * 10000 // len(expected)
    assert summary["segments"]["重要价值"] == sum(1 for v in got.values() if v[3:] == (5, 5, 5))

    member_id = next(iter(got))
    answer = json.loads(api.staff("GET", f"/v1/admin/members/{member_id}/rfm").body)
    assert (answer["recency_days"], answer["frequency"], answer["monetary_fen"], answer["r"], answer["f"],
            answer["m"]) == got[member_id]
    assert answer["as_of"] == AS_OF.isoformat() and answer["score"] == "".join(map(str, got[member_id][3:]))
    assert api.staff("GET", "/v1/admin/members/nobody/rfm").status_code == 404
