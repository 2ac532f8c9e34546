"""The local scheduler: AWS rate and cron expressions, the event it sends, and its resilience."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from chalice import Chalice, Cron, Rate
from chalice.app import CloudWatchEvent

from devstack.lambda_runtime import FunctionIdentity, function_identity
from devstack.scheduler import ScheduledTarget, Scheduler, parse_schedule, scheduled_event, scheduled_targets


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # app.py's daily jobs: 00:05 in Shanghai is 16:05 UTC.
        (Cron(5, 16, "*", "*", "?", "*"), utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 16, 5)),
        (Cron(5, 16, "*", "*", "?", "*"), utc(2024, 1, 1, 16, 5), utc(2024, 1, 2, 16, 5)),  # strictly after
        (Rate(5, unit=Rate.MINUTES), utc(2024, 1, 1, 0, 0, 30), utc(2024, 1, 1, 0, 5, 30)),
        (Rate(1, unit=Rate.HOURS), utc(2024, 1, 1), utc(2024, 1, 1, 1)),
        ("rate(2 days)", utc(2024, 1, 1), utc(2024, 1, 3)),
        ("cron(0/15 * * * ? *)", utc(2024, 1, 1, 10, 16), utc(2024, 1, 1, 10, 30)),
        ("cron(0 12 ? * MON-FRI *)", utc(2024, 1, 6, 13), utc(2024, 1, 8, 12)),  # Saturday -> Monday
        ("cron(0 9 ? * 1 *)", utc(2024, 1, 1), utc(2024, 1, 7, 9)),  # 1 is Sunday in AWS
        ("cron(0 0 L * ? *)", utc(2024, 2, 10), utc(2024, 2, 29)),  # the last day, leap year
        ("cron(0 10 ? * 6#3 *)", utc(2024, 3, 1), utc(2024, 3, 15, 10)),  # the third Friday
        ("cron(0 10 ? * 6L *)", utc(2024, 3, 1), utc(2024, 3, 29, 10)),  # the last Friday
        ("cron(30 1,13 1,15 JAN-MAR ? *)", utc(2024, 1, 15, 14), utc(2024, 2, 1, 1, 30)),
        ("cron(0 0 1 1 ? 2030)", utc(2024, 6, 1), utc(2030, 1, 1)),
        ("cron(0 0 1 1 ? 2020)", utc(2024, 6, 1), None),
    ],
)
def test_next_fire_times(expression: Any, after: datetime, expected: datetime | None) -> None:
    assert parse_schedule(expression).next_after(after) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 12 * * * *)",  # both day fields given
        "cron(0 12 ? * ? *)",  # neither
        "cron(0 12 15W * ? *)",  # W is not supported locally
        "cron(60 12 * * ? *)",
        "cron(0 12 * * ?)",  # five fields
        "rate(0 minutes)",
        "every 5 minutes",
    ],
)
def test_invalid_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        parse_schedule(expression)


def test_the_event_is_what_eventbridge_sends() -> None:
    identity = FunctionIdentity("loyalty", "local", "run_daily_jobs", "us-east-1")

    event = scheduled_event(identity, utc(2024, 1, 1, 16, 5))

    parsed = CloudWatchEvent(event, None)  # what a chalice @app.schedule handler receives
    assert parsed.detail_type == "Scheduled Event" and parsed.source == "aws.events"
    assert parsed.time == "2024-01-01T16:05:00Z"
    assert parsed.resources == ["arn:aws:events:us-east-1:123456789012:rule/loyalty-local-run_daily_jobs-event"]


def test_a_schedule_it_cannot_follow_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    app = Chalice(app_name="probe")

    @app.schedule("cron(0 12 15W * ? *)")
    def on_weekdays(event: Any) -> None:
        return None

    @app.schedule(Rate(1, unit=Rate.HOURS))
    def hourly(event: Any) -> None:
        return None

    targets = scheduled_targets(app, stage="local", region="us-east-1")

    assert [t.identity.handler_name for t in targets] == ["hourly"]
    assert "on_weekdays is not run locally" in caplog.text


def test_handlers_get_the_timeout_their_stage_configures(tmp_path: Path) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({
        "version": "2.0", "app_name": "probe", "lambda_timeout": 30,
        "stages": {"local": {"lambda_memory_size": 512, "lambda_functions": {"nightly": {"lambda_timeout": 900}}}},
    }))
    app = Chalice(app_name="probe")

    nightly = function_identity(app, "nightly", stage="local", region="us-east-1", project_dir=tmp_path)
    other = function_identity(app, "other", stage="local", region="us-east-1", project_dir=tmp_path)
    bare = function_identity(app, "other", stage="local", region="us-east-1")

    assert (nightly.timeout_seconds, nightly.memory_mb) == (900, 512)
    assert (other.timeout_seconds, other.memory_mb) == (30, 512)
    assert (bare.timeout_seconds, bare.memory_mb) == (60, 128)  # chalice's defaults
    context = nightly.new_context()
    assert context.function_name == "probe-local-nightly"
    assert 899_000 < context.get_remaining_time_in_millis() <= 900_000


@dataclass(frozen=True)
class _Every:
    """A schedule faster than AWS allows, so a test can watch the scheduler fire."""

    interval: timedelta
    expression: str = "test"

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def test_the_scheduler_fires_and_survives_a_failing_handler() -> None:
    fired: list[str] = []
    lock = threading.Lock()

    def good(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            fired.append(event["detail-type"])
        return {"ok": True}

    def bad(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("job failed")

    every = _Every(timedelta(milliseconds=50))
    scheduler = Scheduler([
        ScheduledTarget(FunctionIdentity("loyalty", "local", "bad", "us-east-1"), bad, every),
        ScheduledTarget(FunctionIdentity("loyalty", "local", "good", "us-east-1"), good, every),
    ]).start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(fired) < 3:
            time.sleep(0.02)
    finally:
        scheduler.stop()

    assert fired[:3] == ["Scheduled Event"] * 3
    assert scheduler.fire_counts()["bad"] >= 3
