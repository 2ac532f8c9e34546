"""``python -m devstack.triggers``: the stream pump, the scheduler and the job queue's consumer of a
local stack, in a process of their own (started and stopped by devstack/runner.py; not meant to be run by hand).

Why a process of its own: the embedded DynamoDB answers every request under one lock, in one
Python process, so it can use one core at most. Profiled under the load run's `ninety` profile
(py-spy --gil), the stream functions and the jobs -- app code that reaches DynamoDB over HTTP
like `chalice local` does -- took 10 to 13 % of that process's interpreter time and, running in
bursts, lengthened the API's tail. Here they are what they are on AWS: callers of DynamoDB, apart
from it. The environment (endpoints, table, stage) is the stack's, inherited from the parent.

Arguments: ``--failure-queue-url`` (the stream functions' failure queue, created by the parent),
``--pump-log`` (optional, DEVSTACK_PUMP_LOG's file), ``--ready-file`` (touched once both run).
SIGTERM or SIGINT stops both and exits 0. ``DEVSTACK_TRIGGERS_IN_PROCESS=1`` keeps them in the
stack's own process instead, as before.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

logger = logging.getLogger("devstack.triggers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--failure-queue-url", required=True)
    parser.add_argument("--job-queue-url", help="the daily jobs' task queue (its consumer runs here too)")
    parser.add_argument("--pump-log", type=Path)
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument("--ready-file", type=Path, help="touched once both run")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, datefmt="%H:%M:%S",
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in ("werkzeug", "botocore", "pynamodb"):
        logging.getLogger(name).setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if str(args.project_dir) not in sys.path:
        sys.path.insert(0, str(args.project_dir))

    import boto3

    from devstack.runner import STAGE, faster_rates
    from devstack.scheduler import Scheduler, scheduled_targets
    from devstack.stream_pump import StreamPump, stream_targets
    from infra.merge_template import STREAM_MAX_RETRY_ATTEMPTS

    region = os.environ["LOYALTY_REGION"]
    endpoint = os.environ["LOYALTY_DYNAMODB_ENDPOINT"]
    session = boto3.session.Session(region_name=region)
    clients = {name: session.client(name, endpoint_url=endpoint) for name in ("dynamodb", "dynamodbstreams", "sqs")}
    chalice_app = importlib.import_module("app").app
    pump = StreamPump(
        targets=stream_targets(chalice_app, stage=STAGE, region=region, project_dir=args.project_dir),
        table_name=os.environ["LOYALTY_TABLE_NAME"],
        region=region,
        dynamodb_client=clients["dynamodb"],
        streams_client=clients["dynamodbstreams"],
        sqs_client=clients["sqs"],
        failure_queue_url=args.failure_queue_url,
        max_retries=STREAM_MAX_RETRY_ATTEMPTS,
        log_path=args.pump_log,
        # The embedded DynamoDB drops each shard iterator once used (serial_dynamodb.py, part 7).
        forget_iterator=None,
    ).start()
    from devstack.queue_pump import QueuePump, queue_targets

    queue_pumps = [
        QueuePump(target, sqs_client=clients["sqs"], queue_url=args.job_queue_url, region=region).start()
        for target in queue_targets(chalice_app, stage=STAGE, region=region, project_dir=args.project_dir)
    ] if args.job_queue_url else []
    schedules = scheduled_targets(chalice_app, stage=STAGE, region=region, project_dir=args.project_dir)
    scheduler = Scheduler(faster_rates(schedules)).start()
    if args.ready_file is not None:
        args.ready_file.touch()  # the parent waits for it
    stop.wait()
    for part in (scheduler, *queue_pumps, pump):
        try:
            part.stop()
        except Exception:
            logger.exception("stopping %s failed", type(part).__name__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
