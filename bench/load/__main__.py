"""`python -m bench.load`: one load, soak or smoke run of a fresh local stack, and its report.

Profiles (each setting can be overridden on the command line):

| profile  | members | users | duration | baseline | used by |
|----------|--------:|------:|---------:|----------|---------|
| load     | 10,000  | 16    | 90 s     | yes      | `make load` |
| soak     | 10,000  | 16    | 600 s    | yes (90 s) | `make soak` (`SOAK_SECONDS`) |
| ninety   | 300     | 16    | 90 s     | yes      | the issue's reference profile |
| smoke    | 300     | 8     | 30 s     | no       | `make test` (tests/e2e/test_load_smoke.py) |
| selftest | 300     | 8     | 30 s     | no       | the checks against a stack without the account's version guard: must fail |

`--mix first-wave` runs the issue's first-wave mix (no coupons or stored value: the mix its
"today's 21.5 requests/s" was measured with) instead of the full one; `--write` then records the run
in its own section of bench/LOAD.md (`ninety-first-wave`, say).

Exit status: 0 when every invariant holds (selftest: when the checks caught the broken guard).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devstack.settle import PumpLog

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "demo"
ADMIN_KEY = "dev-admin-key"


# The app's stream functions (app.py): the pump runs each with its own poller.
STREAM_FUNCTIONS = {"on_table_change", "send_notifications", "deliver_webhooks"}


@dataclass(frozen=True)
class Profile:
    name: str
    members: int
    users: int
    seconds: int
    baseline_seconds: int  # 0: no baseline
    hot: int = 20
    rich_share: float = 0.1
    memory_seconds: int = 30
    rate_seconds: int = 30  # the frequent job (rate(5 minutes)) runs this often
    unguarded: str = ""
    mix: str = "full"  # bench/load/locustfile.py MIXES: "full" or "first-wave"
    replay_data: bool = False  # measure the data's memory by replaying the stream (bench/load/replica.py)


PROFILES = {
    "load": Profile("load", 10_000, 16, 90, 90),
    "soak": Profile("soak", 10_000, 16, 600, 90, replay_data=True),
    "ninety": Profile("ninety", 300, 16, 90, 90, rich_share=0.5),
    "smoke": Profile("smoke", 300, 8, 30, 0, rich_share=0.5, memory_seconds=10, rate_seconds=10),
    "selftest": Profile("selftest", 300, 8, 30, 0, hot=2, rich_share=0.5, memory_seconds=10, rate_seconds=10,
                        unguarded="version"),
}


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalStack:
    """`python -m devstack` in its own process group, with the load run's recorders switched on."""

    def __init__(self, run_dir: Path, profile: Profile, stack_dir: Path = ROOT) -> None:
        self.run_dir = run_dir
        self.mix = profile.mix
        api, wechat, dynamodb, webhooks = _free_ports(4)
        self.api = f"http://127.0.0.1:{api}"
        self.dynamodb = f"http://127.0.0.1:{dynamodb}"
        self.wechat = f"http://127.0.0.1:{wechat}"
        self.pump_log = run_dir / "pump.jsonl"
        self.memory_log = run_dir / "memory.jsonl"
        self.record = run_dir / "dynamodb-calls.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_", "DEVSTACK_"))}
        # Every port free-chosen: a run beside another stack (`make run`, another run) must not collide.
        env.update({"PORT": str(api), "WECHAT_PORT": str(wechat), "DYNAMODB_PORT": str(dynamodb),
                    "WEBHOOK_PORT": str(webhooks),
                    "DEVSTACK_PUMP_LOG": str(self.pump_log), "DEVSTACK_MEMORY_LOG": str(self.memory_log),
                    "DEVSTACK_MEMORY_SECONDS": str(profile.memory_seconds),
                    "DEVSTACK_RATE_SECONDS": str(profile.rate_seconds),
                    "DEVSTACK_DYNAMODB_RECORD": str(self.record), "PYTHONUNBUFFERED": "1"})
        if profile.unguarded:
            env["DEVSTACK_UNGUARDED"] = profile.unguarded
        self._output = (run_dir / "stack.log").open("wb")
        # stack_dir: another checkout's stack (an earlier commit, to compare before and after).
        self.process = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=stack_dir, env=env, stdout=self._output,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self._pump_log = PumpLog(self.pump_log)  # read on by settle()

    def wait_ready(self, timeout: float = 90.0) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the local stack exited with {self.process.returncode}; see {self.run_dir}/stack.log")
            try:
                if requests.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the local stack did not answer within {timeout:.0f} s; see {self.run_dir}/stack.log")

    def use_from_here(self) -> None:
        """Point this process's app code (seeding, checks) at the stack, before importing it."""
        os.environ.update({
            "LOYALTY_STAGE": "local", "LOYALTY_TABLE_NAME": "loyalty-local", "LOYALTY_REGION": "us-east-1",
            "LOYALTY_DYNAMODB_ENDPOINT": self.dynamodb, "LOYALTY_WECHAT_API_BASE": self.wechat,
            "LOYALTY_LOG_LEVEL": "WARNING", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        })

    def settle(self, timeout: float) -> float:
        """Wait until every stream function has seen every write made before now; seconds taken."""
        import boto3

        from devstack.settle import settle

        client = boto3.client("dynamodb", endpoint_url=self.dynamodb, region_name="us-east-1")
        try:
            return settle(client, "loyalty-local", self._pump_log, functions=STREAM_FUNCTIONS, timeout=timeout,
                          poll=0.5, prefix="LOAD")
        except TimeoutError as error:
            raise SystemExit(str(error)) from None

    def stop(self) -> int | None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._output.close()
        return self.process.returncode


# The demo's till cap (600 orders a minute for `dev-pos`) is below what the `ninety` profile's orders
# reach (about 20 a second). The load keeps a cap -- its counter item stays in every accrual's
# transaction, as in production -- but one no profile reaches, so a 429 rate_limited is a failure
# of the run, not an expected outcome (the cap itself is proven by tests/e2e, not by load).
LOAD_TILL_CAP = {"orders_per_minute": 100_000}
# A coupon template for the load's claims and 核销: 5 yuan off 10, unlimited, no per-member limit.
LOAD_COUPON_TEMPLATE = ("load-5off", {"name": "满10减5", "kind": "amount_off", "threshold_fen": 1_000, "off_fen": 500,
                                      "valid_days": 30, "total": None, "per_member_limit": None,
                                      "claimable": True, "points_price": 0})


def _prepare_program(api: str) -> None:
    """Holds left open expire after a minute (so the frequent job releases some during the run);
    the reward's stock outlasts any run; the till's cap is out of reach (LOAD_TILL_CAP); the
    load's coupon template exists."""
    import requests

    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    program = requests.get(f"{api}/v1/admin/program", headers=headers, timeout=10).json()
    program = {k: v for k, v in program.items() if k not in ("program_id", "appid")}
    program["holds"]["ttl_minutes"] = 1
    program["risk"]["till_caps"] = {"dev-pos": LOAD_TILL_CAP}
    answer = requests.put(f"{api}/v1/admin/program", headers=headers, data=json.dumps(program), timeout=10)
    assert answer.status_code == 200, answer.text
    reward = {"name": "杯子", "points_price": 100, "stock": 10**9}
    answer = requests.put(f"{api}/v1/admin/rewards/demo-cup", headers=headers, data=json.dumps(reward), timeout=10)
    assert answer.status_code == 200, answer.text
    template_id, template = LOAD_COUPON_TEMPLATE
    answer = requests.put(f"{api}/v1/admin/coupon-templates/{template_id}", headers=headers, data=json.dumps(template),
                          timeout=10)
    assert answer.status_code in (200, 201), answer.text


def _locust(run_dir: Path, mode: str, users: int, seconds: int, stack: LocalStack, members: Path) -> dict[str, Any]:
    out = run_dir / f"{mode}.json"
    env = {**os.environ, "LOAD_MODE": mode, "LOAD_MEMBERS": str(members), "LOAD_OUT": str(out),
           "LOAD_TEMPLATES": str(stack.record), "LOAD_DYNAMODB": stack.dynamodb, "LOAD_WECHAT": stack.wechat,
           "LOAD_MIX": stack.mix, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "load" / "locustfile.py"), "--headless",
               "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", stack.api, "--only-summary",
               "--stop-timeout", "10", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    with (run_dir / f"locust-{mode}.log").open("wb") as log:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"locust ({mode}) failed with {done.returncode}; see {run_dir}/locust-{mode}.log")
    return json.loads(out.read_text(encoding="utf-8"))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))]


def latency_table(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    seconds = results["ended"] - results["started"]
    table = {}
    for op, values in sorted(results["latencies"].items()):
        if values:
            table[op] = {"count": len(values), "per_second": len(values) / seconds, "p50": statistics.median(values),
                         "p95": _percentile(values, 0.95), "p99": _percentile(values, 0.99)}
    return table


def recorder_table(path: Path) -> dict[str, dict[str, float]]:
    by_op: dict[str, list[dict[str, Any]]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            by_op.setdefault(entry["op"], []).append(entry)
    table = {}
    for op, entries in sorted(by_op.items()):
        ok = [e for e in entries if 200 <= e["status"] < 300]
        sample = ok or entries
        table[op] = {"requests": len(entries), "ddb_requests": statistics.mean(len(e["calls"]) for e in sample),
                     "write_units": statistics.mean(e["write_units"] for e in sample),
                     "read_units": statistics.mean(e["read_units"] for e in sample),
                     "retried": sum(1 for e in entries if e["failed_calls"]) / len(entries),
                     "calls": " + ".join(sample[0]["calls"]) if sample else ""}
    return table


def memory_samples(path: Path, started: float, ended: float) -> list[dict[str, Any]]:
    """The memory log's samples from the last before the load (``started``..``ended``, epoch
    seconds) to the last within it."""
    if not path.exists():
        return []
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    before = [s for s in samples if s["ts"] <= started]
    return before[-1:] + [s for s in samples if started < s["ts"] <= ended + 1]


def memory_figures(path: Path, started: float, ended: float, replayed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Samples of the load phase: the last before it, the first a minute or more into it, the last
    within it; ``t`` is seconds into the load. ``data`` is the memory a fresh embedded DynamoDB
    needs for the same items and stream records (``replayed``: bench/load/replica.py), else the
    estimate from sampled object sizes (``estimate``, always shown)."""
    samples = memory_samples(path, started, ended)
    measured = {m["records"]: m["data"] for m in (replayed or {}).get("marks", [])}
    for s in samples:
        s["total_rss"] = s["stack_rss"] + (s.get("chalice_rss") or 0)
        s["estimate"] = s["item_bytes"] + s["stream_bytes"] + s.get("index_bytes", 0)
        s["data"] = measured.get(s["stream_records"], s["estimate"])
        s["rss_less_data"] = s["total_rss"] - s["data"]
        s["t"] = s["ts"] - started
    during = [s for s in samples if s["ts"] > started]
    if not during:
        return {}
    start = samples[0]
    after_minute = next((s for s in during if s["t"] >= 60), during[-1])
    end = during[-1]
    return {"samples": samples, "start": start, "after_first_minute": after_minute, "end": end,
            "data_measured": bool(measured) and all(s["stream_records"] in measured for s in samples),
            "replay": {k: v for k, v in (replayed or {}).items() if k != "marks"},
            "ratio_total": end["total_rss"] / after_minute["total_rss"],
            "ratio_less_data": end["rss_less_data"] / after_minute["rss_less_data"]}


def run(profile: Profile, stack_dir: Path = ROOT) -> dict[str, Any]:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    mix = "" if profile.mix == "full" else f"-{profile.mix}"
    run_dir = ROOT / "build" / "load" / f"{profile.name}{mix}-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"profile": profile.__dict__, "run_dir": str(run_dir),
                              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                              "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                                         f"Python {platform.python_version()}"}
    report["stack_dir"] = str(stack_dir)
    stack = LocalStack(run_dir, profile, stack_dir)
    try:
        began = time.monotonic()
        stack.wait_ready()
        report["stack_ready_seconds"] = round(time.monotonic() - began, 1)
        stack.use_from_here()
        sys.path.insert(0, str(ROOT))
        _prepare_program(stack.api)
        from bench.load import seed

        run_id = uuid.uuid4().hex[:4]
        members, report["seed"] = seed.seed_members(profile.members, hot=profile.hot, rich_share=profile.rich_share,
                                                    run=run_id)
        members_path = run_dir / "members.json"
        members_path.write_text(json.dumps(seed.as_json(members)), encoding="utf-8")
        report["seed"]["stream_drain_seconds"] = round(stack.settle(timeout=900), 1)
        print(f"seeded: {report['seed']}", flush=True)

        api = _locust(run_dir, "api", profile.users, profile.seconds, stack, members_path)
        report["api"] = latency_table(api)
        report["api_seconds"] = round(api["ended"] - api["started"], 1)
        report["api_window"] = [api["started"], api["ended"]]
        report["errors"] = api["errors"]
        report["server_error_samples"] = api["server_errors"][:5]
        report["replays"] = api["replays"]
        report["resigned"] = api.get("resigned", 0)
        settle = [stack.settle(timeout=600) for _ in range(3)]  # jobs made by the first pass, sent by the next
        report["drain_after_seconds"] = round(sum(settle), 1)
        from bench.load import checks

        import boto3

        sqs = boto3.client("sqs", endpoint_url=stack.dynamodb, region_name="us-east-1")
        queue = sqs.get_queue_url(QueueName="loyalty-local-stream-failures")["QueueUrl"]
        began = time.monotonic()
        report["checks"] = checks.check(PROGRAM, api, queue, sqs)
        report["checks_seconds"] = round(time.monotonic() - began, 1)
        print(f"checks: {json.dumps(report['checks'], ensure_ascii=False)[:2000]}", flush=True)
        report["dynamodb"] = recorder_table(stack.record)
        if profile.baseline_seconds:
            bare = _locust(run_dir, "bare", profile.users, profile.baseline_seconds, stack, members_path)
            report["bare"] = latency_table(bare)
            report["bare_errors"] = bare["errors"]
            report["bare_seconds"] = round(bare["ended"] - bare["started"], 1)
        if profile.replay_data:  # the data's memory, measured (bench/load/replica.py)
            from bench.load import replica

            began = time.monotonic()
            report["replayed"] = replica.measure(stack.dynamodb, run_dir,
                                                 memory_samples(stack.memory_log, *report["api_window"]))
            report["replay_seconds"] = round(time.monotonic() - began, 1)
    finally:
        report["stack_exit"] = stack.stop()
    if "api_window" in report:
        report["memory"] = memory_figures(stack.memory_log, *report["api_window"], report.get("replayed"))
    (run_dir / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    return report


# --- the report ---------------------------------------------------------------------------

OP_NAMES = {"card": "card read", "order": "order (accrual)", "refund": "refund", "checkin": "check-in",
            "redemption": "redemption", "hold": "hold", "hold_settle": "hold capture/release", "login": "login",
            "login_new": "login (new person)", "enrol": "enrolment", "coupon_claim": "coupon claim",
            "coupon_redeem": "coupon 核销", "top_up": "top-up (member)", "top_up_confirm": "top-up paid (WeChat Pay "
            "stand-in: confirm + 2 notifications)", "sv_payment": "stored-value till payment"}


_MIX_NAMES = {"full": "full mix", "first-wave": "**first-wave mix** (card read 40 %, order 25 %, refund 5 %, "
              "check-in 10 %, redemption 4 %, hold 3 %, hold capture/release 3 %, login 5 %, enrolment 5 %)"}


def render(report: dict[str, Any]) -> str:
    p = report["profile"]
    api, bare = report.get("api", {}), report.get("bare", {})
    total = sum(r["count"] for r in api.values())
    lines = [
        f"Run {report['date']} on {report['machine']}; profile `{p['name']}`: {p['members']:,} seeded members "
        f"({p['hot']} hot), {p['users']} concurrent clients, {_MIX_NAMES.get(p.get('mix', 'full'), p.get('mix'))}, {report.get('api_seconds', 0):.0f} s"
        + (f", baseline {report.get('bare_seconds', 0):.0f} s" if bare else "") + ".",
        "",
        f"- requests served: **{total:,}** ({total / max(1, report.get('api_seconds', 1)):.1f}/s), of which "
        f"{report.get('replays', 0):,} replays of an earlier request; till requests signed again after the HTTP "
        f"client resent one whose nonce the server had already spent: {report.get('resigned', 0)}",
        f"- answers by status: {_statuses(report)}",
        f"- errors by code: {', '.join(f'{k}: {v}' for k, v in sorted(report.get('errors', {}).items())) or 'none'}",
        f"- seeding: {report['seed']['members']:,} members ({report['seed']['items_written']:,} items in "
        f"{report['seed']['batch_requests']:,} BatchWriteItem requests) in {report['seed']['enrolled_seconds']} s, "
        f"{report['seed']['members_with_points']:,} starting balances (staff adjustments) in "
        f"{report['seed']['points_seconds']} s; stream drained in {report['seed']['stream_drain_seconds']} s",
        f"- after the run: stream functions caught up in {report.get('drain_after_seconds', '?')} s; checks took "
        f"{report.get('checks_seconds', '?')} s",
        "",
        "| operation | API count | API /s | API p50 | API p95 | API p99 | bare /s | bare p50 | bare p95 | bare p99 | "
        "p99 API / bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op, r in api.items():
        b = bare.get(op.removesuffix(" (replay)")) if not op.endswith("(replay)") else None
        name = OP_NAMES.get(op, op)
        lines.append(
            f"| {name} | {r['count']:,} | {r['per_second']:.1f} | {r['p50']:.0f} ms | {r['p95']:.0f} ms | "
            f"{r['p99']:.0f} ms | " + (f"{b['per_second']:.1f} | {b['p50']:.1f} ms | {b['p95']:.1f} ms | {b['p99']:.1f} ms | "
                                        f"{r['p99'] / b['p99']:.2f} |" if b else "| | | | |"))
    if bare:
        api_total = sum(r["count"] for op, r in api.items() if op in bare)
        bare_total = sum(r["count"] for r in bare.values())
        lines += ["", f"Throughput of the operations both ran: API {api_total / report['api_seconds']:.1f}/s, "
                      f"bare {bare_total / report['bare_seconds']:.1f}/s "
                      f"(ratio {api_total / report['api_seconds'] / (bare_total / report['bare_seconds']):.2f}); "
                      f"bare replays with an error: {sum(report.get('bare_errors', {}).values())}."]
    dynamo = report.get("dynamodb", {})
    if dynamo:
        lines += ["", "DynamoDB per operation under load (the stack's recorder; mean over the successful requests):",
                  "", "| operation | requests seen | DynamoDB requests | write units | read units | with a failed call "
                  "(retried) | calls |", "|---|---:|---:|---:|---:|---:|---|"]
        for op, r in dynamo.items():
            lines.append(f"| {OP_NAMES.get(op, op)} | {r['requests']:,} | {r['ddb_requests']:.2f} | "
                         f"{r['write_units']:.2f} | {r['read_units']:.2f} | {r['retried']:.1%} | {r['calls']} |")
    c = report.get("checks", {})
    if c:
        lines += ["", f"Invariants after the run: **{'all hold' if c['ok'] else 'FAILED: ' + '; '.join(c['failures'])}**"
                      f" -- {c['members_checked']:,} members reconciled ({c['members_unreconciled']} with differences); "
                      f"{c['effects_checked']:,} idempotency keys answered 2xx ({c['missing_count']} without their row, "
                      f"{c['wrong_points_count']} with other points, {c['orphans_count']} rows no key explains, "
                      f"{c['settled_twice_count']} holds settled twice), {c['replays']:,} replays "
                      f"({c['replay_mismatches']} answered differently); 5xx other than 503 retry_later: "
                      f"{c['server_errors'] or 'none'}; 429 rate_limited: {c.get('rate_limited', 0)}; notification "
                      f"jobs {c['notification_jobs']}; failure queue: {c['failure_queue_messages']} messages; "
                      f"coupons: {c.get('coupons_checked', 0):,} checked ({c.get('coupon_problems_count', 0)} "
                      f"problems); stored value: {c.get('wallets_checked', 0):,} wallets, "
                      f"{c.get('paid_top_ups', 0):,} paid top-ups ({c.get('stored_value_problems_count', 0)} problems)."]
    m = report.get("memory", {})
    if m:
        mb = 1024 * 1024
        s, a, e = m["start"], m["after_first_minute"], m["end"]
        if m.get("data_measured"):
            how = ("data = the memory a fresh embedded DynamoDB needs to hold the same items and stream records: "
                   "the table's stream replayed into one, record by record, its RSS read at each sample's record "
                   f"count (bench/load/replica.py; {m['replay'].get('dumped', 0):,} records, items matched the "
                   f"stack's at every sample: {'yes' if m['replay'].get('items_match') else 'NO'}); estimate = the "
                   "earlier estimate from sampled Python object sizes, for comparison")
        else:
            how = "data = the embedded DynamoDB's items and stream records, their deep size estimated from samples"
        lines += ["", f"Memory during the load (RSS of the stack's process + `chalice local`, every "
                      f"{p['memory_seconds']} s; t = seconds into the load; {how}):",
                  "", "| when | RSS total | stack | chalice local | items | stream records | data | estimate | "
                      "RSS less data |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for label, x in (("start", s), ("after 1 min", a), ("end", e)):
            lines.append(f"| {label} ({x['t']:.0f} s) | {x['total_rss'] / mb:.0f} MB | {x['stack_rss'] / mb:.0f} MB | "
                         f"{(x.get('chalice_rss') or 0) / mb:.0f} MB | {x['items']:,} | {x['stream_records']:,} | "
                         f"{x['data'] / mb:.0f} MB | {x['estimate'] / mb:.0f} MB | {x['rss_less_data'] / mb:.0f} MB |")
        lines += ["", f"End / after the first minute: RSS {m['ratio_total']:.2f}x, RSS less data "
                      f"{m['ratio_less_data']:.2f}x (target <= 1.2)."]
    return "\n".join(lines)


def _statuses(report: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    run_dir = Path(report["run_dir"])
    api = json.loads((run_dir / "api.json").read_text(encoding="utf-8"))
    for by_status in api["statuses"].values():
        for status, n in by_status.items():
            counts[status] = counts.get(status, 0) + n
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items()))


def write_section(name: str, text: str, path: Path = ROOT / "bench" / "LOAD.md") -> None:
    start, end = f"<!-- {name}: start -->", f"<!-- {name}: end -->"
    current = path.read_text(encoding="utf-8") if path.exists() else "# Load and soak results\n"
    block = f"{start}\n{text}\n{end}"
    if start in current:
        current = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, current, flags=re.S)
    else:
        current = current.rstrip("\n") + f"\n\n## Profile `{name}`\n\n{block}\n"
    path.write_text(current, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="load")
    parser.add_argument("--seconds", type=int, help="duration of the API run")
    parser.add_argument("--members", type=int)
    parser.add_argument("--users", type=int)
    parser.add_argument("--baseline-seconds", type=int)
    parser.add_argument("--mix", choices=("full", "first-wave"), default="full",
                        help="the operations' mix (first-wave: the issue's, without coupons and stored value)")
    parser.add_argument("--write", action="store_true", help="record the report in bench/LOAD.md")
    parser.add_argument("--report-json", type=Path, help="also write the whole report (JSON) here")
    parser.add_argument("--stack-dir", type=Path, default=ROOT,
                        help="run the local stack of another checkout (say, an earlier commit) under the same load")
    parser.add_argument("--section", help="the section of bench/LOAD.md to write (default: the profile's name)")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    overrides = {k: v for k, v in (("seconds", args.seconds), ("members", args.members), ("users", args.users),
                                   ("baseline_seconds", args.baseline_seconds), ("mix", args.mix)) if v is not None}
    profile = replace(profile, **overrides)
    report = run(profile, args.stack_dir.resolve())
    if args.report_json:
        args.report_json.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    text = render(report)
    print(text)
    if args.write:
        default_section = profile.name if profile.mix == "full" else f"{profile.name}-{profile.mix}"
        write_section(args.section or default_section, text)
    ok = report.get("checks", {}).get("ok", False)
    if profile.unguarded:
        print("self-test: the checks " + ("FAILED to catch" if ok else "caught") + " the removed guard")
        return 0 if not ok else 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
