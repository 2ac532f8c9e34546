"""The job runner. It knows how to run jobs, not which jobs exist: `wiring.py` lists them and
`app.py` hands that table to the runner.

A daily job runs for one program "as of" a calendar day. Each (program, job, as_of) has a run
record: a finished run answers with its stored summary (runs are idempotent), an unfinished one
resumes from the state it saved after its last page (so a crash or a Lambda timeout loses
nothing), and the daily schedule catches up every day missed since the last finished run.

A job is a function `step(ctx) -> Step`; it does a bounded page of work and says whether it is
done. The runner calls it until done or until the deadline, saving state in between.

The daily schedule does no job work itself: it sends one task per program to the job queue
(SQS), and the queue's consumer (`run_task`) works the program's jobs in the table's order, a
bounded slice of pages at a time (`TASK_SECONDS`), checkpointing after every page. A task that
runs out of its slice sends itself again with a short delay, so an unfinished run continues
within seconds, not tomorrow; a task that dies (timeout, throttling) is delivered again by SQS
and resumes from the last checkpoint; one that keeps failing lands in the failure queue. A run
is claimed with a lease (a conditional write on its record, renewed with every checkpoint), so
two invocations (two deliveries, a delivery and staff's `POST /v1/admin/jobs/{job}/runs`) never
work the same run. Without a queue (tests, the CLI) the same tasks run one after another here.

A frequent job (every few minutes) is a plain function `(settings, now) -> summary` over every
program at once: its work is found through its own due queue, and running it twice is harmless.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from chalicelib import clock, metrics
from chalicelib.errors import Conflict, NotFound
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store.models import JobRunItem

_CATCH_UP_DAYS = 31
# Leave this much of Lambda's time limit for saving state and answering.
_SAFETY_SECONDS = 20.0
# A task works pages for this long, then hands the rest of the run to a new task (the queue's
# consumer has a 120 s timeout, infra/merge_template.py): no task nears its limit.
TASK_SECONDS = 40.0
# A claim lasts this long past each checkpoint; a holder that died is replaced after it. It is
# shorter than the queue's visibility timeout, so a redelivered task finds the claim expired.
LEASE_SECONDS = 150
# An unfinished run's next task is delivered after this delay.
CONTINUE_DELAY_SECONDS = 2

logger = logging.getLogger(__name__)


class JobBusy(Conflict):
    """Another invocation holds the run's claim."""

    def __init__(self, name: str, as_of: dt.date) -> None:
        super().__init__(f"job {name} for {as_of.isoformat()} is being run by another invocation; "
                         "ask again when it has finished", code="job_running")


class _LeaseLost(Exception):
    """Our claim expired and another invocation took the run: stop without saving."""


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
            deadline: float | None = None, owner: str | None = None) -> dict[str, Any]:
    """Run (or resume) one job's run for a day until done or past `deadline` (monotonic time),
    saving progress after every page. Raises JobBusy if another invocation holds the run."""
    job = jobs.get(name)
    if job is None:
        raise NotFound(f"unknown job {name!r}; jobs: {', '.join(sorted(jobs))}", code="unknown_job")
    owner = owner or uuid.uuid4().hex
    run = _claim(program_id, name, as_of, owner)
    if run is None:
        raise JobBusy(name, as_of)
    if run.status == "done":
        return {"job": name, "as_of": as_of.isoformat(), "complete": True, "replayed": True, **run.summary}
    ctx = JobContext(settings, program_id, as_of, dict(run.state or {}), dict(run.summary or {}))
    try:
        while True:
            step = job.step(ctx)
            ctx.state = step.state
            ctx.summary = _merge(ctx.summary, step.summary)
            run.state, run.summary = ctx.state, ctx.summary
            run.pages, run.saved_at = int(run.pages or 0) + 1, clock.now().isoformat()
            if step.done:
                run.status, run.finished_at = "done", clock.now().isoformat()
            _checkpoint(run, owner)  # after every page: an interrupted run resumes from here
            metrics.emit("JobPages", job=name)
            if step.error is not None:
                raise step.error
            if step.done or (deadline is not None and time.monotonic() > deadline):
                break
    except _LeaseLost:
        raise JobBusy(name, as_of) from None
    finally:
        _release(run, owner)
    if run.status == "done":
        metrics.emit("JobRunsCompleted", job=name)
    return {"job": name, "as_of": as_of.isoformat(), "complete": run.status == "done", "replayed": False,
            **run.summary}


def run_progress(jobs: Mapping[str, Job], program_id: str, name: str, as_of: dt.date) -> dict[str, Any]:
    """What the run of `name` for `as_of` has done so far, as its record says (it is saved after
    every page): `none` before it starts, `running` while it works (or stopped part-way), `done`."""
    if name not in jobs:
        raise NotFound(f"unknown job {name!r}; jobs: {', '.join(sorted(jobs))}", code="unknown_job")
    try:
        run = JobRunItem.get(*keys.job_run(program_id, name, as_of.isoformat()), consistent_read=True)
    except JobRunItem.DoesNotExist:
        return {"job": name, "as_of": as_of.isoformat(), "status": "none", "summary": {}, "pages": 0,
                "invocations": 0, "working": False, "started_at": None, "saved_at": None, "finished_at": None}
    working = bool(run.lease_owner and run.lease_until and run.lease_until > clock.stamp(clock.now()))
    return {"job": name, "as_of": as_of.isoformat(), "status": run.status, "summary": dict(run.summary or {}),
            "pages": int(run.pages or 0), "invocations": int(run.invocations or 0), "working": working,
            "started_at": run.started_at, "saved_at": run.saved_at, "finished_at": run.finished_at}


def _lease_until() -> str:
    return clock.stamp(clock.now() + dt.timedelta(seconds=LEASE_SECONDS))


def _claim(program_id: str, name: str, as_of: dt.date, owner: str) -> JobRunItem | None:
    """The run's record with our claim on it, a finished run's record, or None if another
    invocation holds an unexpired claim. The claim is a conditional write on the lease we read."""
    from pynamodb.exceptions import PutError

    key = keys.job_run(program_id, name, as_of.isoformat())
    try:
        run = JobRunItem.get(*key, consistent_read=True)
    except JobRunItem.DoesNotExist:
        run = None
    if run is not None and run.status == "done":
        return run
    if run is not None and run.lease_owner and run.lease_until and run.lease_until > clock.stamp(clock.now()):
        return None
    condition: Any
    if run is None:
        run = JobRunItem(*key, status="running", state={}, summary={}, started_at=clock.now().isoformat())
        condition = JobRunItem.pk.does_not_exist()
    elif run.lease_until is None:
        condition = JobRunItem.lease_until.does_not_exist()
    else:
        condition = JobRunItem.lease_until == run.lease_until
    run.invocations = int(run.invocations or 0) + 1
    run.lease_owner, run.lease_until = owner, _lease_until()
    try:
        run.save(condition=condition)
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return None  # someone claimed it between our read and our write
        raise
    return run


def _checkpoint(run: JobRunItem, owner: str) -> None:
    """Save progress and renew the claim, only while the claim is still ours."""
    from pynamodb.exceptions import PutError

    run.lease_until = _lease_until()
    try:
        run.save(condition=JobRunItem.lease_owner == owner)
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise _LeaseLost() from None
        raise


def _release(run: JobRunItem, owner: str) -> None:
    """Give the claim up at once (the next task or a redelivery need not wait for it to expire).
    Best effort: a release that fails leaves a claim that expires by itself."""
    from pynamodb.exceptions import PynamoDBException

    try:
        run.update(actions=[JobRunItem.lease_owner.remove(), JobRunItem.lease_until.remove()],
                   condition=JobRunItem.lease_owner == owner)
    except PynamoDBException:
        logger.warning("could not release the claim on %s %s; it expires by itself", run.pk, run.sk)
    except Exception:  # noqa: BLE001 - an injected fault or a dying process: the lease expires anyway
        logger.warning("could not release the claim on %s %s; it expires by itself", run.pk, run.sk)


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


# --- the daily fan-out: tasks through the job queue ---------------------------------------

@dataclass(frozen=True)
class Task:
    """What one job-queue message asks: work `program_id`'s jobs for `as_of` from `job` on, in
    the table's order, then the same for each later day in `then` (days missed before)."""

    program_id: str
    as_of: str
    job: str
    then: tuple[str, ...] = ()

    def to_message(self) -> dict[str, Any]:
        return {"program_id": self.program_id, "as_of": self.as_of, "job": self.job, "then": list(self.then)}

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Task:
        return cls(str(message["program_id"]), str(message["as_of"]), str(message["job"]),
                   tuple(str(day) for day in message.get("then") or ()))

    def next(self, order: list[str]) -> Task | None:
        """The task after this job's run: the next job that day, else the next day's first."""
        position = order.index(self.job) if self.job in order else len(order)
        if position + 1 < len(order):
            return Task(self.program_id, self.as_of, order[position + 1], self.then)
        if self.then and order:
            return Task(self.program_id, self.then[0], order[0], self.then[1:])
        return None


class TaskQueue(Protocol):
    def send(self, task: Task, delay_seconds: int = 0) -> None: ...


class SqsTaskQueue:
    """The job queue on SQS (`settings.job_queue_url`)."""

    def __init__(self, settings: Settings) -> None:
        import boto3  # type: ignore[import-untyped]

        self.url = settings.job_queue_url
        self.client = boto3.client("sqs", region_name=settings.region, endpoint_url=settings.sqs_endpoint)

    def send(self, task: Task, delay_seconds: int = 0) -> None:
        self.client.send_message(QueueUrl=self.url, MessageBody=json.dumps(task.to_message()),
                                 DelaySeconds=delay_seconds)


class InlineTaskQueue:
    """No queue configured (tests, the CLI): the same tasks, worked here one after another."""

    def __init__(self) -> None:
        self.pending: list[Task] = []

    def send(self, task: Task, delay_seconds: int = 0) -> None:
        self.pending.append(task)

    def drain(self, settings: Settings, jobs: Mapping[str, Job]) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        while self.pending:
            task = self.pending.pop(0)
            runs.extend(run_task(settings, jobs, task.to_message(), queue=self)["runs"])
        return runs


def task_queue(settings: Settings) -> TaskQueue | None:
    return SqsTaskQueue(settings) if settings.job_queue_url else None


def _task_deadline(lambda_context: Any) -> float:
    slice_end = time.monotonic() + TASK_SECONDS
    limit = _deadline(lambda_context)
    return slice_end if limit is None else min(slice_end, limit)


def run_task(settings: Settings, jobs: Mapping[str, Job], message: Mapping[str, Any], lambda_context: Any = None,
             queue: TaskQueue | None = None) -> dict[str, Any]:
    """The job queue's consumer: work the task's runs for one slice of time, then send what is
    left (the same run with a short delay, or the next job) as a new task."""
    from chalicelib.store import programs

    queue = queue or task_queue(settings) or InlineTaskQueue()
    task = Task.from_message(message)
    deadline = _task_deadline(lambda_context)
    owner = uuid.uuid4().hex
    order = list(jobs)
    program = programs.get_program(settings, task.program_id)
    runs: list[dict[str, Any]] = []
    if program is None:
        return {"task": task.to_message(), "runs": runs, "complete": True, "gone": True}
    while True:
        job = jobs.get(task.job)
        day = dt.date.fromisoformat(task.as_of)
        if job is not None and job.due(program.config, day):
            try:
                result = run_job(settings, jobs, task.program_id, job.name, day, deadline, owner)
            except JobBusy:
                # The holder sends the run's next task itself; if it died, SQS delivers its
                # message again once the claim has expired. Nothing to do here.
                return {"task": task.to_message(), "runs": runs, "complete": False, "busy": True}
            if not result["replayed"]:
                runs.append({"program_id": task.program_id, **result})
            if not result["complete"]:
                queue.send(task, CONTINUE_DELAY_SECONDS)
                return {"task": task.to_message(), "runs": runs, "complete": False}
        following = task.next(order)
        if following is None:
            metrics.emit("ScheduledRunCompleted", schedule="daily")  # its absence raises the "jobs incomplete" alarm
            return {"task": task.to_message(), "runs": runs, "complete": True}
        task = following
        if time.monotonic() > deadline:
            queue.send(task)
            return {"task": task.to_message(), "runs": runs, "complete": False}


def run_daily(settings: Settings, jobs: Mapping[str, Job], lambda_context: Any = None,
              queue: TaskQueue | None = None) -> dict[str, Any]:
    """The daily schedule's entry point: one task per program with work due (today, plus each
    day missed), sent to the job queue. Without a queue the tasks run here, and the answer lists
    every run."""
    from chalicelib.store import programs

    inline = None
    if queue is None:
        queue = task_queue(settings)
    if queue is None:
        queue = inline = InlineTaskQueue()
    order = list(jobs)
    dispatched = 0
    for program_id in programs.program_ids():
        program = programs.get_program(settings, program_id)
        if program is None or not order:
            continue
        config = program.config
        today = config.today(clock.now())
        days = sorted({day for job in jobs.values() for day in _days_to_run(program_id, job.name, today)
                       if job.due(config, day)})
        if not days:
            continue
        queue.send(Task(program_id, days[0].isoformat(), order[0], tuple(d.isoformat() for d in days[1:])))
        dispatched += 1
    if inline is None:
        if not dispatched:
            metrics.emit("ScheduledRunCompleted", schedule="daily")  # nothing due: the day is complete
        return {"group": "daily", "tasks_sent": dispatched, "complete": True}
    runs = inline.drain(settings, jobs)
    return {"group": "daily", "runs": runs, "complete": all(run["complete"] for run in runs)}


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
