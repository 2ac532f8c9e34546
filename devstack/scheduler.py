"""Fires the app's ``@app.schedule`` handlers on their schedules, as EventBridge does on AWS.

Schedules are read from ``app.app.event_sources`` (``ScheduledEventConfig``): ``rate(...)`` fires
every interval from start-up (as a new EventBridge rule does); ``cron(...)`` follows AWS's
six-field syntax in UTC. A missed fire (the machine slept, a job overran) is skipped, not caught
up, like EventBridge. A handler's exception is logged and the scheduler carries on.

Supported cron syntax: numbers, ``*``, ``?``, lists ``a,b``, ranges ``a-b``, steps ``*/n``,
``a/n``, ``a-b/n``, month and weekday names (JAN..DEC, SUN..SAT; weekdays 1-7 with 1 = Sunday),
``L`` (last day of the month), ``nL`` (last weekday n of the month) and ``n#k`` (k-th weekday n).
``W`` is refused with a clear error rather than guessed at.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from devstack.lambda_runtime import ACCOUNT_ID, FunctionIdentity, LambdaHandler, find_handler, function_identity

logger = logging.getLogger("devstack.scheduler")

# Re-read the clock at least this often, so a suspended laptop or a clock change is noticed.
MAX_SLEEP_SECONDS = 30.0
LAST_YEAR = 2199  # the end of AWS's year range; bounds the search for the next fire


class Schedule(Protocol):
    @property
    def expression(self) -> str:
        """The AWS expression, for logs: ``rate(5 minutes)``, ``cron(5 16 * * ? *)``."""
        ...

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (aware, UTC), or None if there is none."""
        ...


# --- rate ---------------------------------------------------------------------------------

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", re.IGNORECASE)


@dataclass(frozen=True)
class RateSchedule:
    expression: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


# --- cron ---------------------------------------------------------------------------------

_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}  # Jan -> 1
_MONTH_NAMES = {name.upper(): number for name, number in _MONTHS.items()}
_WEEKDAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def _aws_weekday(day: date) -> int:
    """AWS numbers weekdays 1 (Sunday) to 7 (Saturday); Python's Monday is 0."""
    return (day.weekday() + 1) % 7 + 1


def _number(token: str, low: int, high: int, names: dict[str, int], field_name: str) -> int:
    value = names.get(token.upper()) if names else None
    if value is None:
        if not token.isdigit():
            raise ValueError(f"cron {field_name}: {token!r} is not a number or a name")
        value = int(token)
    if not low <= value <= high:
        raise ValueError(f"cron {field_name}: {value} is outside {low}-{high}")
    return value


def _values(
    field_text: str, low: int, high: int, field_name: str, names: dict[str, int] | None = None
) -> frozenset[int]:
    """The set of values a field with ``*``, lists, ranges and steps stands for."""
    names = names or {}
    result: set[int] = set()
    for part in field_text.split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, 1, high, {}, field_name) if step_text else 1
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _number(first, low, high, names, field_name), _number(last, low, high, names, field_name)
        else:
            start = _number(span, low, high, names, field_name)
            end = high if step_text else start
        if start > end:
            raise ValueError(f"cron {field_name}: range {span!r} runs backwards")
        result.update(range(start, end + 1, step))
    return frozenset(result)


DayRule = Callable[[date], bool]


def _day_of_month_rule(text: str) -> DayRule:
    if "W" in text.upper():
        raise ValueError(f"cron day-of-month {text!r}: W (nearest weekday) is not supported by the local scheduler")
    rules: list[DayRule] = []
    plain: list[str] = []
    for part in text.split(","):
        if part.upper() == "L":
            rules.append(lambda d: d.day == calendar.monthrange(d.year, d.month)[1])
        else:
            plain.append(part)
    if plain:
        days = _values(",".join(plain), 1, 31, "day-of-month")
        rules.append(lambda d: d.day in days)
    return lambda d: any(rule(d) for rule in rules)


def _nth_weekday(weekday: int, nth: int) -> DayRule:
    return lambda d: _aws_weekday(d) == weekday and (d.day - 1) // 7 + 1 == nth


def _last_weekday(weekday: int) -> DayRule:
    return lambda d: _aws_weekday(d) == weekday and d.day + 7 > calendar.monthrange(d.year, d.month)[1]


def _day_of_week_rule(text: str) -> DayRule:
    rules: list[DayRule] = []
    plain: list[str] = []
    for part in text.split(","):
        upper = part.upper()
        if "#" in upper:  # 6#3: the third Friday
            weekday_text, _, nth_text = upper.partition("#")
            weekday = _number(weekday_text, 1, 7, _WEEKDAY_NAMES, "day-of-week")
            nth = _number(nth_text, 1, 5, {}, "day-of-week")
            rules.append(_nth_weekday(weekday, nth))
        elif upper.endswith("L") and upper != "L":  # 6L: the last Friday
            rules.append(_last_weekday(_number(upper[:-1], 1, 7, _WEEKDAY_NAMES, "day-of-week")))
        elif upper == "L":  # alone in day-of-week, L means Saturday, the last day of the week
            rules.append(lambda d: _aws_weekday(d) == 7)
        else:
            plain.append(part)
    if plain:
        weekdays = _values(",".join(plain), 1, 7, "day-of-week", _WEEKDAY_NAMES)
        rules.append(lambda d: _aws_weekday(d) in weekdays)
    return lambda d: any(rule(d) for rule in rules)


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    day_matches: DayRule

    @classmethod
    def parse(cls, expression: str, fields: list[str]) -> CronSchedule:
        if len(fields) != 6:
            raise ValueError(
                f"{expression}: AWS cron has six fields (minutes hours day-of-month month day-of-week year)"
            )
        minute_f, hour_f, dom_f, month_f, dow_f, year_f = fields
        # AWS requires exactly one of the two day fields to be '?'; refusing here catches at
        # `make run` a schedule that deployment would reject.
        if (dom_f == "?") == (dow_f == "?"):
            raise ValueError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
        day_rule = _day_of_week_rule(dow_f) if dom_f == "?" else _day_of_month_rule(dom_f)
        return cls(
            expression=expression,
            minutes=tuple(sorted(_values(minute_f, 0, 59, "minutes"))),
            hours=tuple(sorted(_values(hour_f, 0, 23, "hours"))),
            months=_values(month_f, 1, 12, "month", _MONTH_NAMES),
            years=_values(year_f, 1970, LAST_YEAR, "year"),
            day_matches=day_rule,
        )

    def next_after(self, moment: datetime) -> datetime | None:
        # Whole minutes only: the first candidate is the minute after `moment`.
        start = moment.astimezone(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        # Skips a whole year or month at a time when those fields rule it out, so this is at most
        # a few thousand steps even for a schedule that next fires decades from now.
        while day.year <= LAST_YEAR:
            if day.year not in self.years:
                day = date(day.year + 1, 1, 1)
                continue
            if day.month not in self.months:
                day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
                continue
            if self.day_matches(day):
                earliest = (start.hour, start.minute) if day == start.date() else (0, 0)
                for hour in self.hours:
                    for minute in self.minutes:
                        if (hour, minute) >= earliest:
                            return datetime(day.year, day.month, day.day, hour, minute, tzinfo=timezone.utc)
            day += timedelta(days=1)
        return None


def parse_schedule(expression: Any) -> Schedule:
    """A chalice ``Rate``/``Cron`` or an expression string -> a schedule. ValueError if invalid."""
    text = (expression.to_string() if hasattr(expression, "to_string") else str(expression)).strip()
    rate = _RATE.fullmatch(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2).lower().rstrip("s")
        if value < 1:
            raise ValueError(f"{text}: the rate must be at least 1")
        return RateSchedule(text, timedelta(**{f"{unit}s": value}))
    if text.lower().startswith("cron(") and text.endswith(")"):
        return CronSchedule.parse(text, text[5:-1].split())
    raise ValueError(f"{text!r} is neither rate(...) nor cron(...)")


# --- the scheduler ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduledTarget:
    identity: FunctionIdentity
    handler: LambdaHandler
    schedule: Schedule


def scheduled_targets(
    chalice_app: Any, *, stage: str, region: str, project_dir: Path | None = None
) -> list[ScheduledTarget]:
    """Every ``@app.schedule`` handler with a schedule the local stack can follow.

    One it cannot parse is logged and left out: the rest of the stack still runs.
    """
    from chalice.app import ScheduledEventConfig

    targets = []
    for source in chalice_app.event_sources:
        if not isinstance(source, ScheduledEventConfig):
            continue
        try:
            schedule = parse_schedule(source.schedule_expression)
        except ValueError as error:
            logger.error("schedule %s is not run locally: %s", source.name, error)
            continue
        identity = function_identity(chalice_app, source.name, stage=stage, region=region, project_dir=project_dir)
        targets.append(ScheduledTarget(identity, find_handler(chalice_app, source), schedule))
    return targets


def scheduled_event(identity: FunctionIdentity, fire_time: datetime) -> dict[str, Any]:
    """The event EventBridge hands a scheduled Lambda."""
    rule_arn = f"arn:aws:events:{identity.region}:{ACCOUNT_ID}:rule/{identity.function_name}-event"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": fire_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": identity.region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler:
    """Runs the scheduled targets on a daemon thread: ``start()`` / ``stop()``.

    Fires run one after another on the scheduler's thread; a long job delays the next fire of
    the others, and the fires it overran are skipped.
    """

    def __init__(
        self, targets: Iterable[ScheduledTarget], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._targets = list(targets)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._fires: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def targets(self) -> list[ScheduledTarget]:
        return list(self._targets)

    def fire_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._fires)

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def fire(self, target: ScheduledTarget, fire_time: datetime) -> None:
        """Invoke one handler now; its failure is logged, never raised."""
        started = time.monotonic()
        try:
            result = target.handler(scheduled_event(target.identity, fire_time), target.identity.new_context())
        except Exception:
            logger.exception("scheduled %s (%s) raised", target.identity.handler_name, target.schedule.expression)
        else:
            summary = json.dumps(result, default=str, ensure_ascii=False)
            logger.info(
                "scheduled %s (%s) ran in %.0f ms: %s",
                target.identity.handler_name,
                target.schedule.expression,
                (time.monotonic() - started) * 1000,
                summary if len(summary) <= 500 else summary[:500] + "...",
            )
        with self._lock:
            self._fires[target.identity.handler_name] = self._fires.get(target.identity.handler_name, 0) + 1

    def _run(self) -> None:
        now = self._clock()
        due: dict[int, datetime | None] = {i: t.schedule.next_after(now) for i, t in enumerate(self._targets)}
        for target, when in zip(self._targets, due.values(), strict=True):
            logger.info("schedule %s (%s): next at %s", target.identity.handler_name, target.schedule.expression,
                        when.isoformat(timespec="seconds") if when else "never")
        while not self._stop.is_set():
            upcoming = [when for when in due.values() if when is not None]
            if not upcoming:
                return
            wait = (min(upcoming) - self._clock()).total_seconds()
            if wait > 0:
                self._stop.wait(min(wait, MAX_SLEEP_SECONDS))
                continue
            for index, target in enumerate(self._targets):
                when = due[index]
                if when is None or when > self._clock() or self._stop.is_set():
                    continue
                self.fire(target, when)
                upcoming_fire = target.schedule.next_after(when)
                if upcoming_fire is not None and upcoming_fire <= self._clock():
                    # Fires missed while this one ran (or the machine slept) are skipped.
                    upcoming_fire = target.schedule.next_after(self._clock())
                due[index] = upcoming_fire
