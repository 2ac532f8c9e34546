"""`make bench` (jobs part): the daily jobs on a seeded program of 50,000 members where 1 % had
activity, through the same task fan-out the job queue drives (chalicelib/jobs.py `run_task`).

For every job it reports the items read, and divides them by the items the day's work needs. The
"needed" figure is measured, not guessed: the same day's jobs run again on a table that holds
only the members the day's work is about (the members active the day before, those with a lot
expiring or a birthday, and the members of the shards the weekly sweep checks that day), with
the same data. What a job reads beyond that is what the other members cost it: a job that scales
with the member count shows a large ratio. It also times every task (each is bounded by
`jobs.TASK_SECONDS`) and projects the requests and on-demand cost of one day at 1 M members per
program and 100 programs. `--write` records the figures in bench/JOBS.md.

    python -m bench.jobs [--members 50000] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.run import READ_PRICE, ROOT, WRITE_PRICE, _environment

SQS_PRICE = 0.40  # USD per million requests (standard queue)
LAMBDA_REQUEST_PRICE = 0.20  # USD per million invocations
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_MEMORY_GB = 0.5  # .chalice/config.json lambda_memory_size 512
DYNAMODB_MS = 6.0  # assumed latency of one DynamoDB request from Lambda (sequential), for the duration
PROGRAM = "demo"


@dataclass
class JobFigures:
    requests: int = 0
    items_read: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    pages: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


class _Writer:
    """Straight into moto's DynamoDB backend, item by item, as its BatchWriteItem handler does,
    without the HTTP and JSON round trip (some 10x faster: 250,000 items in minutes, not an hour)."""

    def __enter__(self) -> _Writer:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from chalicelib.settings import get_settings

        self.backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        self.table = get_settings().table_name
        return self

    def save(self, item: Any) -> None:
        self.backend.put_item(self.table, item.serialize())

    def __exit__(self, *exc: object) -> None:
        return None


def _seed(members: list[str], active: set[str], as_of: dt.date) -> None:
    """Profile, account, one lot, one earn row per member; the active ones earned again the day before."""
    from chalicelib.store import keys
    from chalicelib.store.models import AccountItem, LedgerItem, LotItem, ProfileItem

    yesterday = (as_of - dt.timedelta(days=1)).isoformat()
    with _Writer() as batch:
        for member_id in members:
            rng = random.Random(member_id)  # the same member gets the same data in both tables
            birthday = (dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(366))).strftime("%m-%d")
            expires_on = (as_of + dt.timedelta(days=rng.randrange(-1, 364))).isoformat()
            earned = 100 + (50 if member_id in active else 0)
            pk1, sk1 = keys.members_list(PROGRAM, member_id)
            pk2, sk2 = keys.birthday_queue(PROGRAM, birthday, member_id)
            batch.save(ProfileItem(*keys.profile(PROGRAM, member_id), program_id=PROGRAM, member_id=member_id,
                                   openid=f"o-{member_id}", invite_code=member_id[-8:], birthday=birthday,
                                   enrolled_at="2026-01-01T00:00:00.000+00:00", gsi1pk=pk1, gsi1sk=sk1,
                                   gsi2pk=pk2, gsi2sk=sk2))
            batch.save(AccountItem(*keys.account(PROGRAM, member_id), program_id=PROGRAM, member_id=member_id,
                                   tier="normal", points=earned, growth=0,
                                   last_active_on=yesterday if member_id in active else "2026-01-01",
                                   updated_at="2026-01-01T00:00:00.000+00:00"))
            qpk, qsk = keys.expiry_queue(PROGRAM, expires_on, member_id)
            batch.save(LotItem(*keys.lot(PROGRAM, member_id, expires_on), program_id=PROGRAM, member_id=member_id,
                               expires_on=expires_on, remaining=earned, earned=earned, gsi2pk=qpk, gsi2sk=qsk))
            rows = [("2026-01-01T00:00:00.000+00:00", 100, None)]
            if member_id in active:
                rows.append((f"{yesterday}T04:00:00.000+00:00", 50, yesterday))
            balance = 0
            for n, (stamp, points, active_day) in enumerate(rows):
                balance += points
                entry_id = f"e{n}{member_id[-10:]}"
                item = LedgerItem(*keys.member_operation(PROGRAM, member_id, "bench", str(n)), program_id=PROGRAM,
                                  member_id=member_id, entry_id=entry_id, type="earn", points=points,
                                  balance_after=balance, reason="bench", created_at=stamp,
                                  gsi1pk=keys.points_history(PROGRAM, member_id),
                                  gsi1sk=keys.history_sort(stamp, entry_id))
                if active_day:
                    item.gsi2pk, item.gsi2sk = keys.activity_queue(PROGRAM, active_day, member_id, entry_id)
                batch.save(item)


def _work_members(members: list[str], active: set[str], as_of: dt.date, reminder_days: list[int]) -> list[str]:
    """The members the day's jobs are about (see the module's docstring)."""
    from chalicelib.services.lifecycle import birthdays_on
    from chalicelib.services.reconcile import swept_shards
    from chalicelib.store import keys

    swept = set(swept_shards(as_of))
    birthdays = set(birthdays_on(as_of))
    yesterday = as_of - dt.timedelta(days=1)
    reminded = {as_of + dt.timedelta(days=d) for d in reminder_days}
    chosen = []
    for member_id in members:
        rng = random.Random(member_id)
        birthday = (dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(366))).strftime("%m-%d")
        expires_on = as_of + dt.timedelta(days=rng.randrange(-1, 364))
        shard = int(keys.members_list(PROGRAM, member_id)[0].rsplit("#", 1)[1])
        if (member_id in active or shard in swept or birthday in birthdays or expires_on == yesterday
                or expires_on in reminded):
            chosen.append(member_id)
    return chosen


def _run_day(members: list[str], active: set[str], as_of: dt.date
             ) -> tuple[dict[str, JobFigures], list[float], float, list[int]]:
    """A fresh table with `members`, then the daily jobs for `as_of` through the task fan-out."""
    import boto3
    from moto import mock_aws

    from bench.meter import Meter
    from chalicelib import jobs, wiring
    from chalicelib.seed import seed_demo_program
    from chalicelib.settings import get_settings
    from chalicelib.store import programs, schema, tx
    from devstack import serial_dynamodb

    # As the tests and the local stack: a Query reads its partition, not the whole table (moto
    # itself walks every item for every index Query: hours at 250,000 items).
    serial_dynamodb.install()
    with mock_aws():
        settings = get_settings()
        schema.create_table(boto3.client("dynamodb", region_name="us-east-1"), settings.table_name)
        # The jobs never read the stream, and moto's copy of every write as a stream record would
        # triple the seeding time and memory (30 MB per 1,000 members with it, 11 without).
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(settings.table_name).stream_shard = None
        programs.clear_cache()
        seed_demo_program()
        from chalicelib.services.programs import program_config

        reminder_days = list(program_config(settings, PROGRAM).expiry.reminder_days)
        started = time.monotonic()
        _seed(members, active, as_of)
        seeded_in = time.monotonic() - started
        programs.mark_expired_through(PROGRAM, (as_of - dt.timedelta(days=2)).isoformat())
        programs.clear_cache()
        meter = Meter(tx.connection().client, settings.table_name, "us-east-1")
        figures: dict[str, JobFigures] = {}

        def metered(job: jobs.Job) -> jobs.Job:
            def step(ctx: jobs.JobContext) -> jobs.Step:
                with meter.measure() as tally:
                    result = job.step(ctx)
                entry = figures.setdefault(job.name, JobFigures())
                entry.requests += tally.requests
                entry.items_read += tally.items_read
                entry.read_units += tally.read_units
                entry.write_units += tally.write_units
                entry.pages += 1
                return result

            return jobs.Job(job.name, step, job.due)

        table = {name: metered(job) for name, job in wiring.daily_jobs().items()}
        queue = jobs.InlineTaskQueue()
        queue.send(jobs.Task(PROGRAM, as_of.isoformat(), next(iter(table))))
        task_seconds: list[float] = []
        try:
            while queue.pending:
                task = queue.pending.pop(0)
                began = time.monotonic()
                result = jobs.run_task(settings, table, task.to_message(), queue=queue)
                task_seconds.append(time.monotonic() - began)
                for run in result["runs"]:
                    figures.setdefault(run["job"], JobFigures()).summary = run
        finally:
            meter.close()
            programs.clear_cache()
    return figures, task_seconds, seeded_in, reminder_days


def measure(member_count: int, active_share: float = 0.01) -> dict[str, Any]:
    members = [f"m{n:08d}" for n in range(member_count)]
    active = set(random.Random(7).sample(members, int(member_count * active_share)))
    as_of = dt.date(2027, 6, 15)
    full, tasks, seeded_in, reminder_days = _run_day(members, active, as_of)
    needed_members = _work_members(members, active, as_of, reminder_days)
    needed, _, _, _ = _run_day(needed_members, active & set(needed_members), as_of)
    return {"members": member_count, "active": len(active), "as_of": as_of.isoformat(), "full": full,
            "needed": needed, "needed_members": len(needed_members), "tasks": tasks, "seeded_in": seeded_in}


def project(result: dict[str, Any], members: int = 1_000_000, programs: int = 100) -> dict[str, float]:
    """One day at `members` per program and `programs` programs: the work grows with the members
    (1 % active, a seventh swept, birthdays and expiries a 365th), so per-program figures scale by
    members / seeded members."""
    scale = members / result["members"] * programs
    full: dict[str, JobFigures] = result["full"]
    requests = sum(f.requests for f in full.values()) * scale
    read_units = sum(f.read_units for f in full.values()) * scale
    write_units = sum(f.write_units for f in full.values()) * scale
    from chalicelib import jobs

    seconds = requests * DYNAMODB_MS / 1000
    invocations = max(len(result["tasks"]) * programs, seconds / jobs.TASK_SECONDS) + programs  # + the dispatch
    sqs_requests = invocations * 3  # send, receive, delete
    cost = {
        "dynamodb_reads": read_units / 1e6 * READ_PRICE,
        "dynamodb_writes": write_units / 1e6 * WRITE_PRICE,
        "lambda": invocations / 1e6 * LAMBDA_REQUEST_PRICE + seconds * LAMBDA_MEMORY_GB * LAMBDA_GB_SECOND,
        "sqs": sqs_requests / 1e6 * SQS_PRICE,
    }
    return {"requests": requests, "read_units": read_units, "write_units": write_units, "lambda_seconds": seconds,
            "invocations": invocations, "sqs_requests": sqs_requests, **{f"usd_{k}": v for k, v in cost.items()},
            "usd_total": sum(cost.values())}


def report(result: dict[str, Any]) -> str:
    full, needed = result["full"], result["needed"]
    lines = [
        f"Daily jobs on {result['members']:,} members, {result['active']:,} ({result['active'] / result['members']:.0%}) "
        f"active the day before, as_of {result['as_of']} (seeded in {result['seeded_in']:.0f} s); "
        f"the day's work concerns {result['needed_members']:,} members.",
        "",
        "| job | pages | requests | items read | items the work needs | ratio | write units |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for name, figures in full.items():
        need = needed.get(name, JobFigures()).items_read
        ratio = figures.items_read / need if need else (1.0 if figures.items_read == 0 else float("inf"))
        worst = max(worst, ratio)
        lines.append(f"| {name} | {figures.pages} | {figures.requests:,} | {figures.items_read:,} | {need:,} | "
                     f"{ratio:.2f} | {figures.write_units:,.0f} |")
    tasks = result["tasks"]
    projection = project(result)
    lines += [
        "",
        f"Worst ratio: **{worst:.2f}** (target <= 2). Tasks: {len(tasks)}, longest **{max(tasks):.1f} s** "
        f"(target <= 60 s; a task stops taking pages after {_task_seconds():.0f} s), total {sum(tasks):.0f} s.",
        "",
        "One day at 1,000,000 members per program and 100 programs (same shape: 1 % active, a seventh swept):",
        "",
        f"- DynamoDB: {projection['requests']:,.0f} requests, {projection['read_units']:,.0f} read units, "
        f"{projection['write_units']:,.0f} write units: ${projection['usd_dynamodb_reads']:.2f} reads + "
        f"${projection['usd_dynamodb_writes']:.2f} writes (on demand, us-east-1)",
        f"- Lambda: {projection['invocations']:,.0f} task invocations, {projection['lambda_seconds']:,.0f} s at 512 MB "
        f"(assuming {DYNAMODB_MS:.0f} ms per DynamoDB request): ${projection['usd_lambda']:.2f}",
        f"- SQS: {projection['sqs_requests']:,.0f} requests: ${projection['usd_sqs']:.2f}",
        f"- **Total ${projection['usd_total']:.2f} per day** (${projection['usd_total'] * 30:.0f} per month).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        "moto in-process (task times include moto's own work).",
    ]
    return "\n".join(lines)


def _task_seconds() -> float:
    from chalicelib import jobs

    return jobs.TASK_SECONDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--write", action="store_true", help="write bench/JOBS.md")
    args = parser.parse_args(argv)
    wechat_port = _environment()
    from devstack.wechat_standin import WechatStandin

    os.environ["POWERTOOLS_METRICS_DISABLED"] = "1"
    with WechatStandin(port=wechat_port):
        result = measure(args.members)
    text = report(result)
    print(text)
    if args.write:
        (ROOT / "bench" / "JOBS.md").write_text(
            "# Daily jobs at scale (`make bench`, bench/jobs.py)\n\n" + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
