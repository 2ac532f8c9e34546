"""The daily report: 60 days of known history against an independent computation from the ledgers,
redelivery of the whole stream, closed days, CSV, and period comparisons."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from zoneinfo import ZoneInfo

import boto3

from chalicelib import clock
from tests.support.stream import StreamFeeder, lambda_event

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = dt.date(2026, 1, 5)  # a program day; history runs 60 days from it
DAYS = 60
CONTRACT = ["date", "new_members", "active_members", "orders", "sales_fen", "points_issued", "points_redeemed",
            "points_expired", "points_outstanding", "points_liability_fen", "stored_value_liability_fen",
            "coupons_issued", "coupons_used"]


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """An instant of a program day (Shanghai hour), as UTC: hour 1 is the UTC day before."""
    return dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI).astimezone(dt.timezone.utc)


def _ok(answer, *statuses):
    assert answer.status_code in (statuses or (200, 201)), answer.body
    return answer.json


def _scan() -> list[dict]:
    from chalicelib.settings import get_settings

    client = boto3.client("dynamodb", region_name="us-east-1")
    items, start = [], None
    deserialize = boto3.dynamodb.types.TypeDeserializer().deserialize
    while True:
        page = client.scan(TableName=get_settings().table_name, **({"ExclusiveStartKey": start} if start else {}))
        items += [{k: deserialize(v) for k, v in item.items()} for item in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _local_day(stamp: str) -> str:
    return dt.datetime.fromisoformat(stamp).astimezone(SHANGHAI).date().isoformat()


def reference(items: list[dict], first: str, last: str) -> dict[str, dict[str, int]]:
    """The contract's figures per day, computed from the ledgers and balances themselves: orders
    and refund rows, ledger rows by type, each member's balance_after at the end of a day, coupon
    events, stored-value entries."""
    days = defaultdict(lambda: defaultdict(int))
    active = defaultdict(set)
    balance_rows = defaultdict(list)  # member -> [(created_at, entry order, balance_after)]
    for item in items:
        kind = item.get("kind")
        if item.get("program_id") != "demo" and kind not in ("coupon_event",):
            continue
        if kind == "profile":
            days[_local_day(item["enrolled_at"])]["new_members"] += 1
        elif kind in ("ledger", "order"):
            day = _local_day(item["created_at"])
            balance_rows[item["member_id"]].append((item["created_at"], item["entry_id"], int(item["balance_after"])))
            points, kind_type = int(item["points"]), item["type"]
            if kind == "order":
                days[day]["orders"] += 1
                days[day]["sales_fen"] += int(item["amount_fen"])
                active[day].add(item["member_id"])
            if item["sk"].startswith("REFUND#"):
                import json

                days[day]["sales_fen"] -= int(json.loads(item["detail"])["amount_fen"])
            if item["sk"].startswith("OP#checkin#"):
                active[day].add(item["member_id"])
            if kind_type == "earn" or (kind_type == "adjust" and points > 0):
                days[day]["points_issued"] += points
            elif kind_type in ("redeem", "hold", "release") or (kind_type == "reverse" and points > 0):
                days[day]["points_redeemed"] -= points
            elif kind_type == "expire":
                days[day]["points_expired"] -= points
        elif kind == "coupon_event" and item.get("program_id") == "demo":
            day = _local_day(item["created_at"])
            days[day]["coupons_issued"] += item["event"] == "issued"
            days[day]["coupons_used"] += (item["event"] == "used") - (item["event"] == "voided")
        elif kind == "sv_entry":
            days[item["day"]]["sv"] += int(item["owed_principal_fen"]) + int(item["owed_bonus_fen"])
    rows = {}
    day, end, sv = dt.date.fromisoformat(first), dt.date.fromisoformat(last), 0
    while day <= end:
        name = day.isoformat()
        figures = days[name]
        sv += figures["sv"]
        # Points outstanding: every member's balance after their last change up to the day's end.
        outstanding = 0
        for rows_of_member in balance_rows.values():
            before = [r for r in rows_of_member if _local_day(r[0]) <= name]
            if before:
                outstanding += max(before)[2]
        rows[name] = {
            "new_members": figures["new_members"], "active_members": len(active[name]), "orders": figures["orders"],
            "sales_fen": figures["sales_fen"], "points_issued": figures["points_issued"],
            "points_redeemed": figures["points_redeemed"], "points_expired": figures["points_expired"],
            "points_outstanding": outstanding, "points_liability_fen": outstanding * 10,
            "stored_value_liability_fen": sv, "coupons_issued": figures["coupons_issued"],
            "coupons_used": figures["coupons_used"],
        }
        day += dt.timedelta(days=1)
    return rows


def _history(api, monkeypatch, feeder: StreamFeeder) -> None:
    """Six members over 60 days: orders (some at 00:30 Shanghai, the UTC day before), refunds,
    check-ins, redemptions and a cancellation, staff adjustments, coupon grants and uses, and
    the expiry of January's points at the end of February (months_after = 1)."""
    now = {"at": _at(START, 9), "tick": 0}

    def ticking() -> dt.datetime:  # every reading a millisecond later: a member's rows never share an instant
        now["tick"] += 1
        return now["at"] + dt.timedelta(milliseconds=now["tick"])

    monkeypatch.setattr(clock, "now", ticking)
    # The program began with the history (the expiry job starts from the program's first day).
    from chalicelib.store import keys, programs
    from chalicelib.store.models import ProgramItem

    ProgramItem(*keys.program("demo")).update(actions=[ProgramItem.created_on.set(START.isoformat())])
    programs.clear_cache()
    rules = _ok(api.staff("GET", "/v1/admin/program"))
    rules = {k: v for k, v in rules.items() if k not in ("program_id", "appid")}
    rules["expiry"] = {**rules["expiry"], "months_after": 1}
    _ok(api.staff("PUT", "/v1/admin/program", rules))
    members: list[tuple[str, str]] = []
    for d in range(DAYS):
        day = START + dt.timedelta(days=d)
        if day == dt.date(2026, 3, 1):  # January's points expired at the end of February
            now["at"] = _at(day, 3)
            expired = _ok(api.staff("POST", "/v1/admin/jobs/expire-points/runs", {"as_of": day.isoformat()}))
            assert expired["points_expired"] > 0
        if d % 10 == 0 and len(members) < 6:
            now["at"] = _at(day, 8)
            token = api.enrolled(f"insight-{d}")
            members.append((token, _ok(api.member("GET", "/v1/members/me", token))["member_id"]))
        for i, (token, member_id) in enumerate(members):
            if (d + i) % 3 == 0:
                now["at"] = _at(day, 0 if i % 2 else 9, 30)
                _ok(api.till("POST", "/v1/orders", {"order_id": f"o-{d}-{i}", "member_id": member_id,
                                                    "amount_fen": 1_000 * (i + 1) + d,
                                                    "paid_at": now["at"].isoformat()}))
            if (d + i) % 7 == 0 and d >= 3:
                now["at"] = _at(day, 10)
                previous = f"o-{d - 3}-{i}" if (d - 3 + i) % 3 == 0 else None
                if previous:
                    _ok(api.till("POST", f"/v1/orders/{previous}/refunds", {"refund_id": f"r-{d}-{i}",
                                                                           "amount_fen": 500}))
            if (d + i) % 4 == 1:
                now["at"] = _at(day, 12)
                _ok(api.member("POST", "/v1/members/me/checkin", token))
            if (d * 7 + i) % 3 == 0 and d >= 56:  # after the expiry: January's lots stay whole until then
                now["at"] = _at(day, 18)
                card = _ok(api.member("GET", "/v1/members/me", token))
                if card["points"]["available"] >= 100:
                    _ok(api.member("POST", "/v1/members/me/redemptions", token,
                                   {"reward_id": "demo-cup", "quantity": 1, "request_id": f"rd{d}-{i}"}))
                    if d % 2 == 0:
                        _ok(api.member("POST", f"/v1/members/me/redemptions/rd-rd{d}-{i}/cancel", token))
            if (d + 2 * i) % 13 == 0:
                now["at"] = _at(day, 20)
                _ok(api.staff("POST", f"/v1/admin/members/{member_id}/adjustments",
                              {"points": 15 if i % 2 else -5, "reason": "history", "request_id": f"adj{d}-{i}"}))
            if d in (25, 40) and i == 1:  # a staff grant: a tier move (tier distribution)
                now["at"] = _at(day, 0, 15)
                _ok(api.staff("POST", f"/v1/admin/members/{member_id}/tier",
                              {"tier": "gold" if d == 25 else "silver", "until": "2026-12-31", "reason": "history",
                               "request_id": f"tier{d}"}))
            if d % 9 == 4 and i < 2:
                now["at"] = _at(day, 21)
                _ok(api.staff("POST", "/v1/admin/coupon-templates/demo-10off/grants",
                              {"member_ids": [member_id], "request_id": f"g{d}-{i}"}))
                coupons = _ok(api.member("GET", "/v1/members/me/coupons", token))["items"]
                if coupons and d % 2 == 0:
                    now["at"] = _at(day, 22)
                    _ok(api.till("POST", "/v1/coupons/redeem", {"code": coupons[0]["code"], "order_id": f"c-{d}-{i}",
                                                                "order_amount_fen": 20_000, "request_id": f"cr{d}-{i}"}))
        feeder.pump(rounds=50)
    now["at"] = _at(START + dt.timedelta(days=DAYS), 12)


def test_sixty_days_of_figures_match_the_ledgers_and_survive_redelivery(api, monkeypatch):
    feeder = StreamFeeder()
    _history(api, monkeypatch, feeder)
    first, last = START.isoformat(), (START + dt.timedelta(days=DAYS - 1)).isoformat()
    report = _ok(api.staff("GET", f"/v1/admin/reports/daily?from={first}&to={last}"))["items"]
    assert [row["date"] for row in report][:2] == [first, (START + dt.timedelta(days=1)).isoformat()]
    assert len(report) == DAYS and all(set(CONTRACT) <= set(row) for row in report)
    expected = reference(_scan(), first, last)
    got = {row["date"]: {name: row[name] for name in CONTRACT if name != "date"} for row in report}
    mismatched = {day: {k: (got[day][k], v) for k, v in expected[day].items() if got[day][k] != v}
                  for day in expected if got[day] != expected[day]}
    assert mismatched == {}
    # Members per tier at each day's close, from the accounts' first tier and the tier history rows.
    items = _scan()
    moves = sorted((i["created_at"], i["member_id"], i["to_tier"]) for i in items
                   if i.get("kind") == "tier_change" and i.get("program_id") == "demo")
    joined = {i["member_id"]: i["enrolled_at"] for i in items if i.get("kind") == "profile"
              and i.get("program_id") == "demo"}
    assert moves, "the history moved a tier"
    for row in report:
        tier_of = {m: "normal" for m, at in joined.items() if _local_day(at) <= row["date"]}
        for at, member_id, to in moves:
            if _local_day(at) <= row["date"]:
                tier_of[member_id] = to
        expected_tiers = {code: sum(1 for t in tier_of.values() if t == code) for code in ("normal", "silver", "gold")}
        assert row["tier_distribution"] == expected_tiers, row["date"]
    assert all(row["repurchase_rate_bp"] is None for row in report)  # the rfm job never ran
    totals = {name: sum(row[name] for row in report) for name in ("orders", "points_expired", "coupons_used",
                                                                   "points_redeemed", "new_members")}
    assert all(totals.values()), totals  # the history exercised every kind of figure
    assert any(row["active_members"] >= 2 for row in report)

    # The whole stream again: nothing changes.
    delivered = list(feeder.delivered)
    from app import on_table_change

    for n in range(0, len(delivered), 100):
        assert on_table_change(lambda_event(delivered[n:n + 100]), None) == {"batchItemFailures": []}
    assert _ok(api.staff("GET", f"/v1/admin/reports/daily?from={first}&to={last}"))["items"] == report

    # Closing the days (the daily job) keeps every figure; the report then reads one Query.
    run = _ok(api.staff("POST", "/v1/admin/jobs/daily-report/runs",
                        {"as_of": (START + dt.timedelta(days=DAYS)).isoformat()}))
    assert run["days_closed"] >= DAYS
    assert _ok(api.staff("GET", f"/v1/admin/reports/daily?from={first}&to={last}"))["items"] == report

    # CSV: the same rows, the contract's columns first.
    from tests.support import calls

    answer = api.client.http.request("GET", f"/v1/admin/reports/daily.csv?from={first}&to={last}",
                                     headers=calls.bearer(calls.ADMIN_KEY))
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.body.decode())))
    assert list(rows[0])[:len(CONTRACT)] == CONTRACT
    assert [int(r["points_outstanding"]) for r in rows] == [r["points_outstanding"] for r in report]
    assert [int(r["tier_gold_members"]) for r in rows] == [r["tier_distribution"]["gold"] for r in report]

    # The rfm job's repurchase rate shows in its day's row (members with 2+ orders over 1+ in its window).
    rfm = _ok(api.staff("POST", "/v1/admin/jobs/rfm/runs", {"as_of": last}))
    rows = _ok(api.staff("GET", f"/v1/admin/reports/daily?from={first}&to={last}"))["items"]
    assert rows[-1]["repurchase_rate_bp"] == rfm["repurchase_rate_bp"] is not None
    assert [r["repurchase_rate_bp"] for r in rows[:-1]] == [None] * (DAYS - 1)


def test_bad_ranges_are_400_and_write_nothing(api):
    assert api.staff("GET", "/v1/admin/reports/daily?from=2026-02-01&to=2026-01-01").status_code == 400
    assert api.staff("GET", "/v1/admin/reports/daily?from=2020-01-01&to=2026-01-01").status_code == 400
    assert api.staff("GET", "/v1/admin/reports/daily?from=yesterday").status_code == 400


def test_comparisons_call_growth_from_nothing_new(api, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: _at(dt.date(2026, 5, 10), 12))
    token = api.enrolled("cmp")
    member_id = _ok(api.member("GET", "/v1/members/me", token))["member_id"]
    _ok(api.till("POST", "/v1/orders", {"order_id": "cmp-1", "member_id": member_id, "amount_fen": 5_000,
                                        "paid_at": clock.now().isoformat()}))
    StreamFeeder().pump(rounds=20)
    answer = _ok(api.staff("GET", "/v1/admin/reports/compare?from=2026-05-04&to=2026-05-10"))
    assert answer["previous_from"] == "2026-04-27" and answer["previous_to"] == "2026-05-03"
    assert answer["figures"]["orders"] == {"current": 1, "previous": 0, "change_bp": None, "trend": "new"}
    assert answer["figures"]["sales_fen"]["trend"] == "new"
    assert answer["figures"]["points_expired"] == {"current": 0, "previous": 0, "change_bp": None, "trend": "none"}


def test_staff_tags_are_idempotent_and_apart_from_computed_ones(api):
    from chalicelib.store import keys
    from chalicelib.store.models import TagsItem

    token = api.enrolled("tagged")
    member_id = _ok(api.member("GET", "/v1/members/me", token))["member_id"]
    path = f"/v1/admin/members/{member_id}/tags"
    assert _ok(api.staff("GET", path)) == {"member_id": member_id, "manual": [], "computed": []}
    assert _ok(api.staff("PUT", f"{path}/vip"))["manual"] == ["vip"]
    assert _ok(api.staff("PUT", f"{path}/vip"))["manual"] == ["vip"]
    _ok(api.staff("PUT", f"{path}/咖啡"))
    TagsItem(*keys.member_tags("demo", member_id)).update(actions=[TagsItem.computed.add({"rfm:555"})])
    assert _ok(api.staff("DELETE", f"{path}/vip")) == {"member_id": member_id, "manual": ["咖啡"],
                                                        "computed": ["rfm:555"]}
    assert _ok(api.staff("DELETE", f"{path}/vip"))["manual"] == ["咖啡"]
    assert _ok(api.staff("DELETE", f"{path}/rfm:555"))["computed"] == ["rfm:555"]
    assert api.staff("PUT", "/v1/admin/members/nobody/tags/vip").status_code == 404
    assert api.staff("PUT", f"{path}/{'x' * 33}").status_code == 400


def test_the_opt_in_demo_activity_gives_the_report_figures(api):
    from chalicelib.seed import seed_demo_activity

    first = seed_demo_activity()
    assert seed_demo_activity() == first  # idempotent
    StreamFeeder().pump(rounds=20)
    today = _ok(api.staff("GET", "/v1/admin/reports/daily"))["items"][-1]
    assert (today["new_members"], today["orders"], today["sales_fen"]) == (3, 3, 12_800 + 35_600 + 8_800)
    assert today["points_outstanding"] > 0 and today["active_members"] == 3
