"""Scheduled jobs: one registry, one runner.

A job runs for one program "as of" a calendar day. Each (program, job, as_of) has a run record:
a finished run answers with its stored summary (runs are idempotent), an unfinished one resumes
from the state it saved after its last page (so a crash or a Lambda timeout loses nothing), and
the daily schedule catches up every day missed since the last finished run.

A job is a function `step(ctx) -> Step`; it does a bounded page of work and says whether it is
done. The runner calls it until done or until the deadline, saving state in between.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute

from chalicelib import metrics
from chalicelib.errors import NotFound
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store.models import TableItem

DAILY = "daily"
FREQUENT = "frequent"
_CATCH_UP_DAYS = 31
# Leave this much of Lambda's time limit for saving state and answering.
_SAFETY_SECONDS = 20.0


class JobRunItem(TableItem, discriminator="job_run"):
    status = UnicodeAttribute()  # running | done
    state = JSONAttribute(default=dict)
    summary = JSONAttribute(default=dict)
    started_at = UnicodeAttribute()
    finished_at = UnicodeAttribute(null=True)
    invocations = NumberAttribute(default=0)


@dataclass
class JobContext:
    settings: Settings
    program_id: str
    as_of: dt.date
    state: dict[str, Any]
    summary: dict[str, Any]


@dataclass
class Step:
    done: bool
    state: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    # A step that failed part-way returns what it finished and the error: the runner saves the
    # progress, then raises, so the next run resumes right after the last finished item.
    error: BaseException | None = None


@dataclass(frozen=True)
class Job:
    name: str
    group: str
    step: Callable[[JobContext], Step]
    # Which days the schedule runs it on (staff may run any job for any day).
    due: Callable[[Any, dt.date], bool] = lambda config, day: True


def registry() -> dict[str, Job]:
    """Every job, from the modules that own them (imported here, when a job is about to run)."""
    from chalicelib.services import lifecycle, notifications, reconcile, tiers

    # Order matters on a schedule day: expire before reconciling, review after both.
    return {job.name: job for job in (*lifecycle.JOBS, notifications.CHECKIN_REMINDER_JOB, reconcile.JOB,
                                      tiers.REVIEW_JOB)}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def run_job(settings: Settings, program_id: str, name: str, as_of: dt.date,
            deadline: float | None = None) -> dict[str, Any]:
    jobs = registry()
    job = jobs.get(name)
    if job is None:
        raise NotFound(f"unknown job {name!r}; jobs: {', '.join(sorted(jobs))}", code="unknown_job")
    key = keys.job_run(program_id, name, as_of.isoformat())
    try:
        run = JobRunItem.get(*key, consistent_read=True)
    except JobRunItem.DoesNotExist:
        run = JobRunItem(*key, status="running", state={}, summary={}, started_at=_now().isoformat())
    if run.status == "done":
        return {"job": name, "as_of": as_of.isoformat(), "complete": True, "replayed": True, **run.summary}
    run.invocations = int(run.invocations or 0) + 1
    ctx = JobContext(settings, program_id, as_of, dict(run.state or {}), dict(run.summary or {}))
    while True:
        step = job.step(ctx)
        ctx.state = step.state
        ctx.summary = _merge(ctx.summary, step.summary)
        run.state, run.summary = ctx.state, ctx.summary
        if step.done:
            run.status, run.finished_at = "done", _now().isoformat()
        run.save()  # after every page: an interrupted run resumes from here
        metrics.emit("JobPages", job=name)
        if step.error is not None:
            raise step.error
        if step.done or (deadline is not None and time.monotonic() > deadline):
            break
    if run.status == "done":
        metrics.emit("JobRunsCompleted", job=name)
    return {"job": name, "as_of": as_of.isoformat(), "complete": run.status == "done", "replayed": False,
            **run.summary}


def _merge(total: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
    """Counters add up across pages; anything else is replaced by the latest page."""
    merged = dict(total)
    for key, value in page.items():
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(merged.get(key), int):
            merged[key] += value
        else:
            merged[key] = value
    return merged


def run_scheduled(group: str, settings: Settings, lambda_context: Any = None) -> dict[str, Any]:
    """The schedule's entry point: every program, every job of the group, each missed day."""
    from chalicelib.services.members import program_config
    from chalicelib.store import programs

    deadline = None
    if lambda_context is not None:
        remaining = lambda_context.get_remaining_time_in_millis() / 1000
        deadline = time.monotonic() + max(1.0, remaining - _SAFETY_SECONDS)
    runs = []
    if group == FREQUENT:
        from chalicelib.services.holds import release_due_holds

        runs.append({"job": "release-holds", **release_due_holds(settings, _now())})
    for program_id in programs.program_ids():
        config = program_config(settings, program_id)
        today = config.today(_now())
        for job in (j for j in registry().values() if j.group == group):
            for day in _days_to_run(program_id, job.name, today):
                if not job.due(config, day):
                    continue
                result = run_job(settings, program_id, job.name, day, deadline)
                runs.append({"program_id": program_id, **result})
                if not result["complete"]:
                    return {"group": group, "runs": runs, "complete": False}
    metrics.emit("ScheduledRunCompleted", schedule=group)  # its absence raises the "jobs incomplete" alarm
    return {"group": group, "runs": runs, "complete": True}


def _days_to_run(program_id: str, name: str, today: dt.date) -> list[dt.date]:
    """Today, plus every earlier day not yet finished since the last finished run (bounded)."""
    first = today - dt.timedelta(days=_CATCH_UP_DAYS - 1)
    done = {
        item.sk.removeprefix("RUN#")
        for item in JobRunItem.query(f"P#{program_id}#JOB#{name}",
                                     JobRunItem.sk >= f"RUN#{first.isoformat()}")
        if item.status == "done"
    }
    if not done:
        return [today]
    last_done = dt.date.fromisoformat(max(done))
    start = min(today, last_done + dt.timedelta(days=1))
    return [start + dt.timedelta(days=n) for n in range((today - start).days + 1)
            if (start + dt.timedelta(days=n)).isoformat() not in done]
