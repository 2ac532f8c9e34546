"""The running local stack for end-to-end tests.

The session fixture ``stack`` starts ``python -m devstack`` in its own process group on free
ports, waits for ``/health``, and at the end sends SIGTERM to the group and checks that the stack
exited 0 and left no process behind. Tests talk to it only over loopback HTTP and the DynamoDB
endpoint, like the mini-program, a till or a developer with the AWS CLI would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from devstack.settle import PumpLog, settle

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0

# Settings for the stack under test on top of its `make run` defaults; inherited LOYALTY_*
# variables (the unit and integration tests set some) are dropped so runs are reproducible.
STACK_SETTINGS: dict[str, str] = {}

PumpEntry = dict[str, Any]


@dataclass
class RunningStack:
    """Addresses of the stack under test, and helpers to observe it."""

    api: str  # e.g. http://127.0.0.1:40123, no trailing slash
    wechat: str
    webhooks: str  # the webhook receiver stand-in
    dynamodb_endpoint: str
    region: str
    table_name: str
    pump_log: Path  # JSON lines, one per stream handler invocation (devstack/README.md)
    output: Path  # the stack's stdout and stderr
    _pump_log: PumpLog | None = field(default=None, repr=False)  # read on by settle()

    def dynamodb(self) -> Any:
        return boto3.client("dynamodb", endpoint_url=self.dynamodb_endpoint, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.dynamodb_endpoint, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def wechat_sent(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.wechat}/_sent", timeout=5)
        answer.raise_for_status()
        return answer.json()

    def pump_entries(self) -> list[PumpEntry]:
        """Every stream invocation so far (``outcome`` ok, partial, error or dead_lettered)."""
        if not self.pump_log.exists():
            return []
        # The pump may be writing a line as we read (a long one goes out in pieces): only whole lines.
        text = self.pump_log.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")[:-1]
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for_stream_record(
        self, matches: Callable[[dict[str, Any]], bool], *, outcome: str = "ok", timeout: float = 10.0,
        function: str | None = None,
    ) -> tuple[PumpEntry, dict[str, Any]]:
        """The first invocation with the given outcome (of ``function``, if given: both stream
        functions read every record, in no fixed order) that carried a record ``matches`` accepts.

        A record in the log is ``{"seq", "event", "keys": {"pk": ..., "sk": ...}}``.
        """
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.pump_entries():
                if entry["outcome"] != outcome or (function is not None and entry["function"] != function):
                    continue
                for record in entry["records"]:
                    if matches(record):
                        return entry, record
            if time.monotonic() > deadline:
                raise AssertionError(f"no stream invocation ({outcome}) carried a matching record in {timeout} s")
            time.sleep(0.1)

    def settle(self, timeout: float = 15.0, rounds: int = 1) -> None:
        """Wait until every stream function has been handed every write made before this call
        (``rounds=2``: and what their reactions wrote meanwhile, e.g. a ledger row's notification
        job, sent or dropped); devstack/settle.py."""
        if self._pump_log is None:
            self._pump_log = PumpLog(self.pump_log)
        try:
            settle(self.dynamodb(), self.table_name, self._pump_log, rounds=rounds, timeout=timeout, prefix="E2E")
        except TimeoutError as error:
            raise AssertionError(str(error)) from None

def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):  # held open together so the ports differ
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process we cannot signal still exists
        return True
    return True


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    workdir = tmp_path_factory.mktemp("devstack")
    api_port, wechat_port, dynamodb_port, webhook_port = _free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(STACK_SETTINGS)
    env.update(
        PORT=str(api_port),
        WECHAT_PORT=str(wechat_port),
        DYNAMODB_PORT=str(dynamodb_port),
        WEBHOOK_PORT=str(webhook_port),
        DEVSTACK_PUMP_LOG=str(workdir / "pump.jsonl"),
        PYTHONUNBUFFERED="1",
    )
    output = workdir / "stack.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: teardown signals chalice local too
        )
    pgid = process.pid
    running = RunningStack(
        api=f"http://127.0.0.1:{api_port}",
        wechat=f"http://127.0.0.1:{wechat_port}",
        webhooks=f"http://127.0.0.1:{webhook_port}",
        dynamodb_endpoint=f"http://127.0.0.1:{dynamodb_port}",
        region=env.get("LOYALTY_REGION", "us-east-1"),
        table_name=env.get("LOYALTY_TABLE_NAME", "loyalty-local"),
        pump_log=workdir / "pump.jsonl",
        output=output,
    )
    try:
        _wait_for_health(process, running)
        yield running
    finally:
        _stop(process, pgid, output)


def _wait_for_health(process: subprocess.Popen[bytes], running: RunningStack) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited with {process.returncode} while starting:\n{_tail(running.output)}")
        try:
            if requests.get(f"{running.api}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(
        f"the local stack did not answer /health within {START_TIMEOUT_SECONDS:.0f} s:\n{_tail(running.output)}"
    )


def _stop(process: subprocess.Popen[bytes], pgid: int, output: Path) -> None:
    """SIGTERM to the whole group; the stack must exit 0 and leave nothing running."""
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    try:
        code = process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"the local stack ignored SIGTERM for {STOP_TIMEOUT_SECONDS:.0f} s:\n{_tail(output)}")
    deadline = time.monotonic() + 5
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
        pytest.fail("the local stack left processes behind after stopping")
    if code != 0:
        pytest.fail(f"the local stack exited with {code} on SIGTERM:\n{_tail(output)}")


# --- the browser tests' Chromium (Debian's package; `make browser` installs it) --------------------

CHROMIUM = os.environ.get("LOYALTY_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright (a dev requirement; it never downloads a browser)."""
    from playwright import sync_api

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses to run as root
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()
