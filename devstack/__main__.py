"""``python -m devstack`` (``make run``): the whole local stack in the foreground.

Ports come from PORT, WECHAT_PORT, DYNAMODB_PORT and WEBHOOK_PORT (8000, 8001, 8002, 8003 by default); if
DEVSTACK_PUMP_LOG names a file, the stream pump appends one JSON line per invocation to it.
Ctrl-C or SIGTERM stops everything and exits 0; a start-up failure or a crash of ``chalice
local`` exits 1. SIGUSR1 prints every thread's stack (to see what a stuck handler is doing).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devstack.runner import Ports, Stack, StackError

logger = logging.getLogger("devstack")

# The demo program's published defaults (shared/API.md, "The local stack"), for the banner.
DEMO_DEFAULTS = (
    ("appid", "wxdemo0000000000"),
    ("admin key", "dev-admin-key"),
    ("till key id / secret", "dev-pos / dev-pos-secret"),
    ("wx.login code", "dev-<openid>"),
    ("phone code", "phone-<11 digits>"),
    ("reward", "demo-cup (100 points)"),
    ("templates", "tmpl-tier, tmpl-points, tmpl-expiring"),
)


def banner(stack: Stack) -> str:
    pump, scheduler = stack.pump, stack.scheduler
    assert pump is not None and scheduler is not None and stack.started_in is not None, "the stack is not running"
    streams = ", ".join(t.identity.handler_name for t in pump.targets) or "none"
    schedules = ", ".join(f"{t.identity.handler_name} {t.schedule.expression}" for t in scheduler.targets) or "none"
    rule = "-" * 78
    lines = [
        rule,
        f" Loyalty local stack is up (ready in {stack.started_in:.1f} s)",
        f"   API              {stack.api_url}   (GET /health)",
        f"   DynamoDB (moto)  {stack.dynamodb_url}   table {stack.table_name}, region {stack.region}",
        f"                    aws dynamodb scan --table-name {stack.table_name} --endpoint-url {stack.dynamodb_url}",
        f"   WeChat stand-in  {stack.wechat_url}   (GET /_sent, /_stats)",
        f"   webhook receiver {stack.webhooks_url}   (POST any path; GET /_received, POST /_fail, /_slow)",
        f"   stream handlers  {streams}; failures go to SQS {stack.failure_queue_url}",
        f"   schedules        {schedules} (UTC)",
        f"   job queue        {stack.job_queue_url} -> "
        f"{', '.join(p.target.identity.handler_name for p in stack.queue_pumps) or 'none'}",
        " Demo program 'demo':",
        *(f"   {name:<21}{value}" for name, value in DEMO_DEFAULTS),
        " Ctrl-C stops everything. Code changes need a restart.",
        rule,
    ]
    return "\n".join(lines)


def main() -> int:
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    # `kill -USR1 <pid>` prints every thread's stack: what a stuck handler or trigger is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    pump_log = os.environ.get("DEVSTACK_PUMP_LOG")
    try:
        stack = Stack(Ports.from_env(), pump_log=Path(pump_log) if pump_log else None)
    except StackError as error:
        logger.error("%s", error)
        return 1
    try:
        stack.start(abort=stop)
    except StackError as error:
        logger.error("the local stack did not start: %s", error)
        stack.stop()
        return 1
    except Exception:
        logger.exception("the local stack did not start")
        stack.stop()
        return 1
    exit_code = 0
    if not stop.is_set():  # a signal may have come while starting
        print(banner(stack), flush=True)
        exit_code = _run_until_stopped(stack, stop)
    stack.stop()
    logger.info("stopped")
    return exit_code


def _run_until_stopped(stack: Stack, stop: threading.Event) -> int:
    """Wait for a signal (0) or for ``chalice local`` or the triggers process to die on its own (1)."""
    while not stop.wait(0.5):
        code = stack.chalice_exit_code()
        triggers = stack.triggers_exit_code()
        if code is None and triggers is not None and not stop.wait(1.0):
            logger.error("the triggers process exited with code %s; stopping the stack", triggers)
            return 1
        if code is None:
            continue
        # Ctrl-C reaches chalice too (same process group); give our own handler a moment to see it.
        if stop.wait(1.0):
            return 0
        logger.error("chalice local exited with code %s; stopping the stack", code)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
