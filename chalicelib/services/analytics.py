"""Daily analytics: the stream counts changes into day counters, a daily job closes days, the
report reads closed days (one Query) and the open ones (their shards).

Why the stream and not a nightly pass over the ledgers: ledger rows live in their members'
partitions, so a nightly pass would read every member's history (or need a program-wide index
every change pays for). Counting from the stream costs one small transaction per counted change
and nothing for idle members; bench/insight.py measures it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from chalicelib import clock
from chalicelib.domain import analytics
from chalicelib.errors import InvalidRequest
from chalicelib.jobs import JobContext, Step
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings, get_settings
from chalicelib.store import analytics as store
from chalicelib.store import programs as program_store

MAX_REPORT_DAYS = 366
# A closed day is summed again this many days later too (a change the stream delivered late).
_RECLOSE_DAYS = 2
_FIRST_LOOK_BACK_DAYS = 92


def count_change(event_name: str, new: dict[str, Any], old: dict[str, Any]) -> None:
    """Stream reaction: add a new immutable item's contribution to its program day, once."""
    found = analytics.contribution(event_name, new, old)
    image = new or old
    if found is None or not image.get("program_id"):
        return
    program_id = str(image["program_id"])
    day = found.day
    if day is None:
        # A removal records no moment of its own: it counts on the day it is seen.
        moment = dt.datetime.fromisoformat(found.moment) if found.moment is not None else clock.now()
        config = program_config(get_settings(), program_id)
        day = config.local_day(moment).isoformat()
    store.count_once(program_id, day, (str(image["pk"]), str(image["sk"])), found.what, found.counts,
                     found.active_member, clock.now(), tiers=found.tiers)


def _days(first: dt.date, last: dt.date) -> list[str]:
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _first_day(settings: Settings, program_id: str, closed: dict[str, dict[str, int]], fallback: dt.date) -> dt.date:
    candidates = [fallback]
    if closed:
        candidates.append(dt.date.fromisoformat(min(closed)))
    program = program_store.get_program(settings, program_id)
    if program is not None and program.created_on:
        candidates.append(dt.date.fromisoformat(program.created_on))
    return min(candidates)


def close_days_step(ctx: JobContext) -> Step:
    """`daily-report`: sum the shards of every day before as_of not closed yet (and of the last
    few closed ones again), one summary item per day."""
    last = ctx.as_of - dt.timedelta(days=1)
    closed = store.summaries_through(ctx.program_id, last.isoformat())
    # The first run also looks back a season (a program's history from before this job existed).
    fallback = last if closed else last - dt.timedelta(days=_FIRST_LOOK_BACK_DAYS)
    first = _first_day(ctx.settings, ctx.program_id, closed, fallback)
    recent = {d for d in _days(last - dt.timedelta(days=_RECLOSE_DAYS - 1), last)}
    todo = [day for day in _days(first, last) if day not in closed or day in recent]
    now = clock.stamp(clock.now())
    written = 0
    tiers = [tier.code for tier in program_config(ctx.settings, ctx.program_id).tiers]
    for start in range(0, len(todo), 6):  # 6 days x 16 shards < 100 keys per BatchGetItem (+ tiers: paged)
        batch = todo[start:start + 6]
        counts = store.read_days(ctx.program_id, batch, tiers)
        for day in batch:
            store.save_summary(ctx.program_id, day, counts.get(day, {}), now)
            written += 1
    return Step(done=True, summary={"closed_through": last.isoformat(), "days_closed": written})


def _parse_day(name: str, value: str | None, default: dt.date) -> dt.date:
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name}: must be a date YYYY-MM-DD") from None


def report_rows(settings: Settings, program_id: str, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """The daily rows from `first` to `last` (both included)."""
    if last < first:
        raise InvalidRequest("from must not be after to")
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise InvalidRequest(f"at most {MAX_REPORT_DAYS} days per report")
    config = program_config(settings, program_id)
    repurchase: dict[str, int | None] = {}
    closed = store.summaries_through(program_id, last.isoformat(), repurchase)
    start = _first_day(settings, program_id, closed, first)
    every_day = _days(start, last)
    today = config.today(clock.now())
    open_days = [day for day in every_day if day not in closed and dt.date.fromisoformat(day) <= today]
    codes = [tier.code for tier in config.tiers]
    live: dict[str, dict[str, int]] = {}
    for n in range(0, len(open_days), 6):
        live.update(store.read_days(program_id, open_days[n:n + 6], codes))
    outstanding = principal = bonus = 0
    # Members per tier at each day's close: the running sum of every day's moves since the start
    # (enrolments +1 into their first tier, tier moves -1/+1, removed accounts -1).
    in_tier = dict.fromkeys(codes, 0)
    rows = []
    for day in every_day:
        counts = closed.get(day) or live.get(day) or {}
        outstanding += int(counts.get("points_net") or 0)
        principal += int(counts.get("sv_principal_fen") or 0)
        bonus += int(counts.get("sv_bonus_fen") or 0)
        for code in codes:
            in_tier[code] += int(counts.get(f"{analytics.TIER_PREFIX}{code}") or 0)
        if day >= first.isoformat():
            rows.append(analytics.report_row(day, counts, outstanding, principal, bonus, config.holds.points_per_yuan,
                                             tiers=in_tier, repurchase_rate_bp=repurchase.get(day)))
    return rows


def _range(settings: Settings, program_id: str, query: Any) -> tuple[dt.date, dt.date]:
    today = program_config(settings, program_id).today(clock.now())
    last = _parse_day("to", query.to, today)
    first = _parse_day("from", query.from_, last - dt.timedelta(days=29))
    return first, last


def daily(settings: Settings, program_id: str, query: Any) -> dict[str, Any]:
    first, last = _range(settings, program_id, query)
    return {"items": report_rows(settings, program_id, first, last)}


def daily_csv(settings: Settings, program_id: str, query: Any) -> str:
    first, last = _range(settings, program_id, query)
    rows = report_rows(settings, program_id, first, last)
    out = io.StringIO()
    # The tier distribution is one column per tier of the program: tier_<code>_members.
    codes = [tier.code for tier in program_config(settings, program_id).tiers]
    columns = [name for name in analytics.report_row("", {}, 0, 0, 0, 10) if name != "tier_distribution"]
    writer = csv.DictWriter(out, fieldnames=columns + [f"tier_{code}_members" for code in codes],
                            lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        flat = {name: "" if row[name] is None else row[name] for name in columns}
        flat.update({f"tier_{code}_members": row["tier_distribution"].get(code, 0) for code in codes})
        writer.writerow(flat)
    return out.getvalue()


def compare(settings: Settings, program_id: str, query: Any) -> dict[str, Any]:
    """The period from..to against the same number of days just before it."""
    first, last = _range(settings, program_id, query)
    length = (last - first).days + 1
    before_last = first - dt.timedelta(days=1)
    before_first = before_last - dt.timedelta(days=length - 1)
    rows = report_rows(settings, program_id, before_first, last)
    previous, current = rows[:length], rows[length:]
    return {"from": first.isoformat(), "to": last.isoformat(),
            "previous_from": before_first.isoformat(), "previous_to": before_last.isoformat(),
            "figures": analytics.compare_periods(current, previous)}
