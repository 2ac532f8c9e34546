"""Starts and stops the whole local stack; ``python -m devstack`` and tests use `Stack`.

Order matters: the environment is set before anything imports ``chalicelib`` or ``app`` (the
settings and PynamoDB read it once), the table exists and is seeded before the triggers start,
and ``chalice local`` starts last, so an answer on ``/health`` means everything is ready.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when starting: the environment must be set first
    from moto.server import ThreadedMotoServer

    from devstack.scheduler import Scheduler
    from devstack.stream_pump import StreamPump
    from devstack.webhook_receiver import WebhookReceiver
    from devstack.wechat_standin import WechatStandin

logger = logging.getLogger("devstack")

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STAGE = "local"
HEALTH_TIMEOUT_SECONDS = 60.0

# Variables this stack decides; a `.chalice/config.json` that sets them differently for the
# local stage would point `chalice local` somewhere the triggers are not.
_STACK_OWNED = (
    "LOYALTY_STAGE",
    "LOYALTY_TABLE_NAME",
    "LOYALTY_REGION",
    "LOYALTY_DYNAMODB_ENDPOINT",
    "LOYALTY_WECHAT_API_BASE",
    "LOYALTY_WECHATPAY_API_BASE",
    "LOYALTY_WECHATPAY_NOTIFY_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "LOYALTY_JOB_QUEUE_URL",
    "LOYALTY_SQS_ENDPOINT",
)


class StackError(RuntimeError):
    """The stack cannot start, for a reason the message tells the developer how to fix."""


@dataclass(frozen=True)
class Ports:
    api: int = 8000
    wechat: int = 8001
    dynamodb: int = 8002
    webhooks: int = 8003

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str] = os.environ) -> Ports:
        values = {}
        for field_name, variable, default in (
            ("api", "PORT", cls.api),
            ("wechat", "WECHAT_PORT", cls.wechat),
            ("dynamodb", "DYNAMODB_PORT", cls.dynamodb),
            ("webhooks", "WEBHOOK_PORT", cls.webhooks),
        ):
            text = environ.get(variable) or str(default)
            if not text.isdigit() or not 0 < int(text) < 65536:
                raise StackError(f"{variable}={text!r} is not a port number")
            values[field_name] = int(text)
        if len(set(values.values())) != len(values):
            raise StackError(f"PORT, WECHAT_PORT, DYNAMODB_PORT and WEBHOOK_PORT must differ: {values}")
        return cls(**values)


def configure_environment(ports: Ports) -> dict[str, str]:
    """Point this process (and ``chalice local``, which inherits it) at the local stack.

    Returns the variables set. Table name and region may be chosen by the caller; endpoints,
    stage and credentials are the stack's: it never talks to a real AWS account.
    """
    region = os.environ.get("LOYALTY_REGION") or "us-east-1"
    values = {
        "LOYALTY_STAGE": STAGE,
        "LOYALTY_TABLE_NAME": os.environ.get("LOYALTY_TABLE_NAME") or "loyalty-local",
        "LOYALTY_REGION": region,
        "LOYALTY_DYNAMODB_ENDPOINT": f"http://{HOST}:{ports.dynamodb}",
        "LOYALTY_WECHAT_API_BASE": f"http://{HOST}:{ports.wechat}",
        # WeChat Pay's stand-in shares the WeChat stand-in's port; its notifications come to the API.
        "LOYALTY_WECHATPAY_API_BASE": f"http://{HOST}:{ports.wechat}",
        "LOYALTY_WECHATPAY_NOTIFY_URL": f"http://{HOST}:{ports.api}/v1/payments/wechat/notify",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        # botocore >= 1.44 otherwise sends stream calls to an account-id host moto does not match.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    # A named profile could be missing here (botocore then refuses to start) or real.
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(variable, None)
    os.environ.update(values)
    return values


def check_chalice_config(project_dir: Path, wanted: dict[str, str]) -> None:
    """Refuse a chalice config whose local stage would override what the stack set."""
    path = project_dir / ".chalice" / "config.json"
    if not path.is_file():
        raise StackError(f"{path} is missing: `chalice local` needs it (with a '{STAGE}' stage)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise StackError(f"{path} is not valid JSON: {error}") from None
    merged = {
        **config.get("environment_variables", {}),
        **config.get("stages", {}).get(STAGE, {}).get("environment_variables", {}),
    }
    clashes = sorted(k for k in _STACK_OWNED if k in merged and merged[k] != wanted.get(k))
    if clashes:
        raise StackError(
            f"{path} sets {', '.join(clashes)} for the '{STAGE}' stage; the local stack sets these itself "
            "(endpoints follow PORT, WECHAT_PORT, DYNAMODB_PORT): remove them from that stage"
        )


def _ensure_port_free(port: int, variable: str) -> None:
    # moto's server thread dies silently on a busy port, so check first and say which one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise StackError(f"{HOST}:{port} ({variable}) is in use: is another local stack running?") from None


class Stack:
    """The local stack in this process, ``chalice local`` in a child process.

    ``with Stack(Ports(...)) as stack:`` starts everything and waits for ``/health``; leaving the
    block stops it all. ``stop()`` is safe to call more than once and after a failed start.
    Starting sets this process's environment (`configure_environment`) and imports ``app``, so a
    test suite is better served by running ``python -m devstack`` (tests/e2e/conftest.py).
    """

    def __init__(
        self,
        ports: Ports = Ports(),
        *,
        project_dir: Path = REPO_ROOT,
        pump_log: Path | None = None,
        health_timeout: float = HEALTH_TIMEOUT_SECONDS,
    ) -> None:
        self.ports = ports
        self.project_dir = project_dir
        self.pump_log = pump_log
        self.health_timeout = health_timeout
        self.table_name = ""
        self.region = ""
        self.failure_queue_url = ""
        self.started_in: float | None = None
        self._moto: ThreadedMotoServer | None = None
        self._wechat: WechatStandin | None = None
        self._webhooks: WebhookReceiver | None = None
        self._pump: StreamPump | None = None
        self._scheduler: Scheduler | None = None
        self._queue_pumps: list[Any] = []
        self.job_queue_url = ""
        self._chalice: subprocess.Popen[bytes] | None = None
        self._triggers: subprocess.Popen[bytes] | None = None
        self._memory: Any = None

    # --- addresses ----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.ports.api}"

    @property
    def wechat_url(self) -> str:
        return f"http://{HOST}:{self.ports.wechat}"

    @property
    def webhooks_url(self) -> str:
        return f"http://{HOST}:{self.ports.webhooks}"

    @property
    def dynamodb_url(self) -> str:
        return f"http://{HOST}:{self.ports.dynamodb}"

    @property
    def pump(self) -> StreamPump | None:
        return self._pump

    @property
    def queue_pumps(self) -> list[Any]:
        return list(self._queue_pumps)

    @property
    def scheduler(self) -> Scheduler | None:
        return self._scheduler

    # --- life cycle ---------------------------------------------------------------------

    def start(self, abort: threading.Event | None = None) -> Stack:
        """Start everything; returns once ``/health`` answers (or early if ``abort`` is set)."""
        began = time.monotonic()
        for port, variable in (
            (self.ports.api, "PORT"),
            (self.ports.wechat, "WECHAT_PORT"),
            (self.ports.dynamodb, "DYNAMODB_PORT"),
            (self.ports.webhooks, "WEBHOOK_PORT"),
        ):
            _ensure_port_free(port, variable)
        environment = configure_environment(self.ports)
        check_chalice_config(self.project_dir, environment)
        self.table_name, self.region = environment["LOYALTY_TABLE_NAME"], environment["LOYALTY_REGION"]
        if str(self.project_dir) not in sys.path:
            sys.path.insert(0, str(self.project_dir))

        self._start_moto()
        clients = self._clients()
        self._create_job_queue(clients["sqs"])
        self._create_table_and_seed(clients["dynamodb"])

        from devstack.webhook_receiver import WebhookReceiver
        from devstack.wechat_standin import WechatStandin

        self._wechat = WechatStandin(HOST, self.ports.wechat).start()
        self._webhooks = WebhookReceiver(HOST, self.ports.webhooks).start()
        self._start_triggers(clients)
        self._start_chalice()
        self._wait_until_healthy(abort)
        self._start_memory_sampler()
        self.started_in = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop everything that was started, newest first; never raises."""
        if self._memory is not None:
            self._memory.stop()
            self._memory = None
        if self._chalice is not None:
            _terminate(self._chalice, "chalice local")
            self._chalice = None
        if self._triggers is not None:
            _terminate(self._triggers, "the triggers process")
            self._triggers = None
        for pump in self._queue_pumps:
            pump.stop()
        self._queue_pumps = []
        for name in ("_scheduler", "_pump", "_webhooks", "_wechat", "_moto"):
            part = getattr(self, name)
            if part is None:
                continue
            try:
                part.stop()
            except Exception:
                logger.exception("stopping %s failed", name.strip("_"))
            setattr(self, name, None)

    def chalice_exit_code(self) -> int | None:
        """None while ``chalice local`` runs (or was never started), else its exit code."""
        return None if self._chalice is None else self._chalice.poll()

    def triggers_exit_code(self) -> int | None:
        """None while the triggers process runs (or runs in this process), else its exit code."""
        return None if self._triggers is None else self._triggers.poll()

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the parts ----------------------------------------------------------------------

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        from devstack import serial_dynamodb

        # The API (its own threads) and the stream handlers write concurrently; moto must take
        # them one at a time as DynamoDB would, and a cancelled transaction must leave the table's
        # one stream shard in place (see serial_dynamodb).
        serial_dynamodb.install()

        # Load runs' self-test only (bench/load): a DynamoDB that drops one kind of guard.
        unguarded = os.environ.get("DEVSTACK_UNGUARDED")
        if unguarded:
            logger.warning("DEVSTACK_UNGUARDED=%s: transactions lose their conditions on it (self-test only)",
                           unguarded)
            serial_dynamodb.remove_guard(unguarded)

        # One line per request (the pump polls five times a second) would drown the output, and
        # botocore and PynamoDB announce their settings on every client.
        for name in ("werkzeug", "botocore", "pynamodb"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._moto = ThreadedMotoServer(ip_address=HOST, port=self.ports.dynamodb, verbose=False)
        self._moto.start()
        if not os.environ.get("DEVSTACK_FLASK_ROUTING"):  # 1: every request through moto's Flask app
            serial_dynamodb.serve_lean(self._moto)
        if os.environ.get("DEVSTACK_GC_FREEZE", "1") != "0":  # 0: CPython's collections as they are
            serial_dynamodb.freeze_after_full_collections()

    def _clients(self) -> dict[str, Any]:
        import boto3

        session = boto3.session.Session(region_name=self.region)
        # Explicit endpoints for every client: never a default AWS host.
        services = ("dynamodb", "dynamodbstreams", "sqs")
        return {name: session.client(name, endpoint_url=self.dynamodb_url) for name in services}

    def _create_job_queue(self, sqs: Any) -> None:
        """The daily jobs' task queue, with the deployed queue's visibility timeout and redrive
        (infra/merge_template.py); the app finds it through LOYALTY_JOB_QUEUE_URL."""
        from infra.merge_template import JOB_QUEUE_MAX_RECEIVES, JOB_QUEUE_VISIBILITY_SECONDS

        failures = sqs.create_queue(QueueName="loyalty-local-job-failures")["QueueUrl"]
        failures_arn = sqs.get_queue_attributes(QueueUrl=failures, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.job_queue_url = sqs.create_queue(QueueName="loyalty-local-jobs", Attributes={
            "VisibilityTimeout": str(JOB_QUEUE_VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": failures_arn,
                                         "maxReceiveCount": str(JOB_QUEUE_MAX_RECEIVES)}),
        })["QueueUrl"]
        os.environ["LOYALTY_JOB_QUEUE_URL"] = self.job_queue_url
        os.environ["LOYALTY_SQS_ENDPOINT"] = self.dynamodb_url
        from chalicelib.settings import clear_settings

        clear_settings()  # read again with the queue

    def _create_table_and_seed(self, dynamodb: Any) -> None:
        from chalicelib.store import schema

        schema.create_table(dynamodb, self.table_name)
        try:
            seed = importlib.import_module("chalicelib.seed")
        except ModuleNotFoundError as error:
            if error.name != "chalicelib.seed":
                raise
            raise StackError(
                "chalicelib/seed.py is missing: the local stack calls chalicelib.seed.seed_demo_program() "
                "to write the demo program"
            ) from None
        seed.seed_demo_program()
        if os.environ.get("LOYALTY_DEMO_ACTIVITY") == "1":  # figures for the daily report (issue 15)
            seed.seed_demo_activity()

    def _start_triggers(self, clients: dict[str, Any]) -> None:
        from devstack.scheduler import scheduled_targets
        from devstack.stream_pump import stream_targets

        chalice_app = importlib.import_module("app").app
        # Named and retried as the deployed event source's failure queue (infra/merge_template.py).
        queue_name = f"{chalice_app.app_name}-{STAGE}-stream-failures"
        self.failure_queue_url = clients["sqs"].create_queue(QueueName=queue_name)["QueueUrl"]
        if os.environ.get("DEVSTACK_TRIGGERS_IN_PROCESS"):
            self._start_triggers_here(clients, chalice_app)
            return
        # The stream pump and the scheduler run in a process of their own (devstack/triggers.py says
        # why); here only what they run, for the banner.
        self._pump = TriggersHandle(stream_targets(chalice_app, stage=STAGE, region=self.region,  # type: ignore[assignment]
                                                   project_dir=self.project_dir))
        schedules = scheduled_targets(chalice_app, stage=STAGE, region=self.region, project_dir=self.project_dir)
        self._scheduler = TriggersHandle(faster_rates(schedules))  # type: ignore[assignment]
        from devstack.queue_pump import queue_targets

        self._queue_pumps = [QueuePumpHandle(target) for target in queue_targets(
            chalice_app, stage=STAGE, region=self.region, project_dir=self.project_dir)]
        from devstack import serial_dynamodb

        serial_dynamodb.forget_used_shard_iterators()
        ready = Path(tempfile.mkdtemp(prefix="devstack-triggers-")) / "ready"
        command = [sys.executable, "-m", "devstack.triggers", "--failure-queue-url", self.failure_queue_url,
                   "--job-queue-url", self.job_queue_url,
                   "--project-dir", str(self.project_dir), "--ready-file", str(ready)]
        if self.pump_log is not None:
            command += ["--pump-log", str(self.pump_log)]
        self._triggers = subprocess.Popen(command, cwd=self.project_dir, env=dict(os.environ))
        deadline = time.monotonic() + self.health_timeout
        while not ready.exists():
            if self._triggers.poll() is not None:
                raise StackError(f"the triggers process exited with code {self._triggers.returncode} (see above)")
            if time.monotonic() > deadline:
                raise StackError(f"the triggers process was not ready within {self.health_timeout:.0f} s")
            time.sleep(0.1)
        ready.unlink()
        ready.parent.rmdir()

    def _start_triggers_here(self, clients: dict[str, Any], chalice_app: Any) -> None:
        """DEVSTACK_TRIGGERS_IN_PROCESS=1: the pump and the scheduler in this process, as before."""
        from devstack.scheduler import Scheduler, scheduled_targets
        from devstack.stream_pump import StreamPump, stream_targets
        from infra.merge_template import STREAM_MAX_RETRY_ATTEMPTS

        self._pump = StreamPump(
            targets=stream_targets(chalice_app, stage=STAGE, region=self.region, project_dir=self.project_dir),
            table_name=self.table_name,
            region=self.region,
            dynamodb_client=clients["dynamodb"],
            streams_client=clients["dynamodbstreams"],
            sqs_client=clients["sqs"],
            failure_queue_url=self.failure_queue_url,
            max_retries=STREAM_MAX_RETRY_ATTEMPTS,
            log_path=self.pump_log,
            forget_iterator=self._forget_moto_iterator,
        ).start()
        from devstack.queue_pump import QueuePump, queue_targets

        self._queue_pumps = [
            QueuePump(target, sqs_client=clients["sqs"], queue_url=self.job_queue_url, region=self.region).start()
            for target in queue_targets(chalice_app, stage=STAGE, region=self.region, project_dir=self.project_dir)
        ]
        schedules = scheduled_targets(chalice_app, stage=STAGE, region=self.region, project_dir=self.project_dir)
        self._scheduler = Scheduler(faster_rates(schedules)).start()

    def _start_memory_sampler(self) -> None:
        path = os.environ.get("DEVSTACK_MEMORY_LOG")
        if not path:
            return
        from devstack.memory import MemorySampler

        interval = float(os.environ.get("DEVSTACK_MEMORY_SECONDS") or 30)
        chalice, triggers = self._chalice, self._triggers
        self._memory = MemorySampler(Path(path), interval, lambda: chalice.pid if chalice else None,
                                     lambda: triggers.pid if triggers else None).start()

    def _forget_moto_iterator(self, iterator: str) -> None:
        """Free a used shard iterator in moto, which runs in this process.

        moto keeps every iterator it ever handed out (about 1.7 KB each); at five polls a second
        that is some 30 MB an hour for a stack left running all day.
        """
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][self.region].shard_iterators.pop(iterator, None)

    def _start_chalice(self) -> None:
        # No autoreload: its watcher would stat the whole tree (.venv included) and leave a worker
        # process behind on SIGTERM; the triggers here would not reload either. Restart instead.
        # Through devstack.chalice_local: chalice's own CLI with a larger listen backlog.
        command = [sys.executable, "-m", "devstack.chalice_local", "local", "--host", HOST,
                   "--port", str(self.ports.api), "--stage", STAGE, "--no-autoreload"]
        self._chalice = subprocess.Popen(command, cwd=self.project_dir, env=dict(os.environ))

    def _wait_until_healthy(self, abort: threading.Event | None) -> None:
        deadline = time.monotonic() + self.health_timeout
        url = f"{self.api_url}/health"
        while time.monotonic() < deadline:
            if abort is not None and abort.is_set():
                return
            code = self.chalice_exit_code()
            if code is not None:
                raise StackError(f"chalice local exited with code {code} before answering {url} (see above)")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise StackError(f"{url} did not answer within {self.health_timeout:.0f} s")


@dataclass(frozen=True)
class QueuePumpHandle:
    """A queue consumer the triggers process runs, for the banner."""

    target: Any

    def stop(self) -> None:
        """The process is stopped by `Stack.stop`."""


@dataclass(frozen=True)
class TriggersHandle:
    """What the triggers process runs (stream targets or schedules), for the banner."""

    targets: list[Any]

    def stop(self) -> None:
        """The process is stopped by `Stack.stop`."""


def faster_rates(targets: list[Any]) -> list[Any]:
    """``DEVSTACK_RATE_SECONDS=n`` runs every ``rate(...)`` schedule every n seconds instead (load
    runs: the 5-minute job runs throughout a short run); cron schedules are left alone."""
    import dataclasses
    from datetime import timedelta

    from devstack.scheduler import RateSchedule

    seconds = os.environ.get("DEVSTACK_RATE_SECONDS")
    if not seconds:
        return targets
    faster = []
    for target in targets:
        if isinstance(target.schedule, RateSchedule):
            schedule = RateSchedule(f"{target.schedule.expression} every {seconds} s (DEVSTACK_RATE_SECONDS)",
                                    timedelta(seconds=float(seconds)))
            target = dataclasses.replace(target, schedule=schedule)
        faster.append(target)
    return faster


def _terminate(process: subprocess.Popen[bytes], name: str, timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning("%s did not stop within %.0f s; killing it", name, timeout)
        process.kill()
        process.wait()
