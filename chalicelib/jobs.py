"""The job runner. It knows how to run jobs, not which jobs exist: `wiring.py` lists them and
`app.py` hands that table to the runner.

A daily job runs for one program "as of" a calendar day. Each (program, job, as_of) has a run
record: a finished run answers with its stored summary (runs are idempotent), an unfinished one
resumes from the state it saved after its last page (so a crash or a Lambda timeout loses
nothing), and the daily schedule catches up every day missed since the last finished run.

A job is a function `step(ctx) -> Step`; it does a bounded page of work and says whether it is
done. The runner calls it until done or until the deadline, saving state in between.

A frequent job (every few minutes) is a plain function `(settings, now) -> summary` over every
program at once: its work is found through its own due queue, and running it twice is harmless.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from chalicelib import clock, metrics
from chalicelib.errors import NotFound
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store.models import JobRunItem

_CATCH_UP_DAYS = 31
# Leave this much of Lambda's time limit for saving state and answering.
_SAFETY_SECONDS = 20.0


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


def _every_day(config: Any, day: dt.date) -> bool:
    return True


@dataclass(frozen=True)
class Job:
    name: str
    step: Callable[[JobContext], Step]
    # Which days the schedule runs it on (staff may run any job for any day).
    due: Callable[[Any, dt.date], bool] = _every_day


@dataclass(frozen=True)
class FrequentJob:
    name: str
    run: Callable[[Settings, dt.datetime], dict[str, Any]]


def run_job(settings: Settings, jobs: Mapping[str, Job], program_id: str, name: str, as_of: dt.date,
            deadline: float | None = None) -> dict[str, Any]:
    job = jobs.get(name)
    if job is None:
        raise NotFound(f"unknown job {name!r}; jobs: {', '.join(sorted(jobs))}", code="unknown_job")
    key = keys.job_run(program_id, name, as_of.isoformat())
    try:
        run = JobRunItem.get(*key, consistent_read=True)
    except JobRunItem.DoesNotExist:
        run = JobRunItem(*key, status="running", state={}, summary={}, started_at=clock.now().isoformat())
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
            run.status, run.finished_at = "done", clock.now().isoformat()
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


def _deadline(lambda_context: Any) -> float | None:
    if lambda_context is None:
        return None
    remaining = lambda_context.get_remaining_time_in_millis() / 1000
    return time.monotonic() + max(1.0, remaining - _SAFETY_SECONDS)


def run_frequent(settings: Settings, jobs: Mapping[str, FrequentJob], lambda_context: Any = None) -> dict[str, Any]:
    """The frequent schedule's entry point: each job once, over every program."""
    now = clock.now()
    runs = [{"job": name, **job.run(settings, now)} for name, job in jobs.items()]
    metrics.emit("ScheduledRunCompleted", schedule="frequent")  # its absence raises the "jobs incomplete" alarm
    return {"group": "frequent", "complete": True, "runs": runs}


def run_daily(settings: Settings, jobs: Mapping[str, Job], lambda_context: Any = None) -> dict[str, Any]:
    """The daily schedule's entry point: every program, every job in the table's order, each
    missed day."""
    from chalicelib.store import programs

    deadline = _deadline(lambda_context)
    runs = []
    for program_id in programs.program_ids():
        program = programs.get_program(settings, program_id)
        if program is None:
            continue
        config = program.config
        today = config.today(clock.now())
        for job in jobs.values():
            for day in _days_to_run(program_id, job.name, today):
                if not job.due(config, day):
                    continue
                result = run_job(settings, jobs, program_id, job.name, day, deadline)
                runs.append({"program_id": program_id, **result})
                if not result["complete"]:
                    return {"group": "daily", "runs": runs, "complete": False}
    metrics.emit("ScheduledRunCompleted", schedule="daily")  # its absence raises the "jobs incomplete" alarm
    return {"group": "daily", "runs": runs, "complete": True}


def _days_to_run(program_id: str, name: str, today: dt.date) -> list[dt.date]:
    """Today, plus every earlier day not yet finished since the last finished run (bounded)."""
    first = today - dt.timedelta(days=_CATCH_UP_DAYS - 1)
    done = {
        item.sk.removeprefix(keys.job_run_sort(""))
        for item in JobRunItem.query(keys.job_runs(program_id, name),
                                     JobRunItem.sk >= keys.job_run_sort(first.isoformat()))
        if item.status == "done"
    }
    if not done:
        return [today]
    last_done = dt.date.fromisoformat(max(done))
    start = min(today, last_done + dt.timedelta(days=1))
    return [start + dt.timedelta(days=n) for n in range((today - start).days + 1)
            if (start + dt.timedelta(days=n)).isoformat() not in done]
