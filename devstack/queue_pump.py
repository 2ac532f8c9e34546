"""Feeds the app's ``@app.on_sqs_message`` handlers from SQS queues in moto, as Lambda's SQS event
source mapping does on AWS: long-poll the queue, hand a batch to the handler as Lambda's SQS
event, delete the batch when the handler returns, leave it when the handler raises (SQS then
delivers it again after the visibility timeout, and after ``max_receives`` deliveries moves it to
the queue's failure queue, as the stack's redrive policy does).

The job queue (``chalicelib/jobs.py``) runs through this locally: the daily schedule sends the
tasks, this pump works them with the same consumer code, and a task that is left unfinished
sends itself again with a delay, which SQS (moto) honours.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.lambda_runtime import ACCOUNT_ID, FunctionIdentity, LambdaHandler, find_handler, function_identity

logger = logging.getLogger("devstack.queue_pump")


@dataclass(frozen=True)
class QueueTarget:
    identity: FunctionIdentity
    handler: LambdaHandler
    batch_size: int


def queue_targets(chalice_app: Any, *, stage: str, region: str, project_dir: Path | None = None) -> list[QueueTarget]:
    """Every ``on_sqs_message`` handler of a Chalice app."""
    from chalice.app import SQSEventConfig

    return [
        QueueTarget(function_identity(chalice_app, source.name, stage=stage, region=region, project_dir=project_dir),
                    find_handler(chalice_app, source), source.batch_size)
        for source in chalice_app.event_sources
        if isinstance(source, SQSEventConfig)
    ]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda hands an SQS-triggered function."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region,
    } for m in messages]}


class QueuePump:
    """One daemon thread per (queue, handler): ``start()`` / ``stop()``."""

    def __init__(self, target: QueueTarget, *, sqs_client: Any, queue_url: str, region: str) -> None:
        self.target = target
        self.client = sqs_client
        self.queue_url = queue_url
        self.region = region
        name = queue_url.rsplit("/", 1)[-1]
        self.queue_arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"queue-{name}", daemon=True)
        self.batches = 0
        self.failures = 0

    def start(self) -> QueuePump:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def poll_once(self, wait_seconds: int = 1) -> int:
        """Receive one batch and work it; the number of messages handled."""
        answer = self.client.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.target.batch_size,
                                             WaitTimeSeconds=wait_seconds, AttributeNames=["All"])
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        started = time.monotonic()
        try:
            result = self.target.handler(sqs_event(messages, self.queue_arn, self.region),
                                         self.target.identity.new_context())
        except Exception:
            self.failures += 1
            logger.exception("%s raised; SQS delivers the batch again", self.target.identity.handler_name)
            return len(messages)
        self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        self.batches += 1
        text = str(result)
        logger.info("%s worked %d message(s) in %.0f ms: %s", self.target.identity.handler_name, len(messages),
                    (time.monotonic() - started) * 1000, text if len(text) <= 500 else text[:500] + "...")
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("polling %s failed", self.queue_url)
                self._stop.wait(1.0)
