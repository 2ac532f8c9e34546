"""Feeds the table's DynamoDB stream to the app's ``on_dynamodb_record`` handlers, as Lambda does.

On AWS an event source mapping polls the stream and invokes the function; ``chalice local`` has no
such thing, so this pump does it against the moto server:

- every ``DynamoDBEventConfig`` in ``app.app.event_sources`` is a target, fed from the table's
  stream (the placeholder ARN in ``app.py`` is for packaging); each target reads every shard on
  its own, from TRIM_HORIZON, so nothing written before the pump started is missed;
- a batch is at most the handler's ``batch_size`` records, shaped like Lambda's event;
- the handler's partial batch response is honoured like ``ReportBatchItemFailures`` with
  ``BisectBatchOnFunctionError``: records before the lowest failed sequence number are done, the
  rest are retried (a raised exception splits the batch in two, which costs no retry); after
  ``max_retries`` retries Lambda's on-failure record goes to an SQS queue and the shard moves on.

Each invocation is logged as one JSON line (logger ``devstack.pump``, and the file named by
``log_path`` if given) with the keys of the records it carried, so tests can see what arrived.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from devstack.lambda_runtime import FunctionIdentity, LambdaHandler, find_handler, function_identity

logger = logging.getLogger("devstack.pump")

Record = dict[str, Any]

POLL_INTERVAL_SECONDS = 0.2
SHARD_REFRESH_SECONDS = 5.0
ERROR_BACKOFF_SECONDS = 1.0
DEFAULT_MAX_RETRIES = 3


@dataclass(frozen=True)
class StreamTarget:
    identity: FunctionIdentity
    handler: LambdaHandler
    batch_size: int


def stream_targets(
    chalice_app: Any, *, stage: str, region: str, project_dir: Path | None = None
) -> list[StreamTarget]:
    """Every ``on_dynamodb_record`` handler of a Chalice app, found from its event sources."""
    from chalice.app import DynamoDBEventConfig

    return [
        StreamTarget(
            identity=function_identity(chalice_app, source.name, stage=stage, region=region, project_dir=project_dir),
            handler=find_handler(chalice_app, source),
            batch_size=source.batch_size,
        )
        for source in chalice_app.event_sources
        if isinstance(source, DynamoDBEventConfig)
    ]


# --- the Lambda event ---------------------------------------------------------------------


def _lambda_attribute_value(value: Any) -> Any:
    """botocore hands binary attributes back as bytes; Lambda's JSON event carries base64."""
    if isinstance(value, dict):
        return {k: _lambda_attribute_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lambda_attribute_value(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return value


def to_lambda_record(raw: Record, *, stream_arn: str, region: str) -> Record:
    """A ``get_records`` record (as boto3 returns it) in the shape Lambda delivers."""
    source = raw["dynamodb"]
    created = source.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        created = created.timestamp()
    change: Record = {
        "ApproximateCreationDateTime": float(created if created is not None else time.time()),
        "Keys": _lambda_attribute_value(source["Keys"]),
        "SequenceNumber": source["SequenceNumber"],
        "SizeBytes": source.get("SizeBytes", 0),
        "StreamViewType": source["StreamViewType"],
    }
    for image in ("NewImage", "OldImage"):
        if image in source:
            change[image] = _lambda_attribute_value(source[image])
    record: Record = {
        "eventID": raw.get("eventID") or uuid.uuid4().hex,
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,  # moto writes us-east-1 whatever the region
        "eventSourceARN": stream_arn,
        "dynamodb": change,
    }
    if "userIdentity" in raw:  # TTL deletions carry it on AWS
        record["userIdentity"] = raw["userIdentity"]
    return record


def _plain_keys(record: Record) -> dict[str, Any]:
    """``{"pk": {"S": "x"}}`` -> ``{"pk": "x"}``, for the log."""
    return {name: next(iter(value.values()), None) for name, value in record["dynamodb"]["Keys"].items()}


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


# --- delivering one batch like Lambda -----------------------------------------------------


@dataclass(frozen=True)
class InvocationResult:
    # Index in the batch of the first record to retry; None when the whole batch succeeded.
    retry_from: int | None = None
    # Set when the handler raised (Lambda's "function error"), which splits the batch.
    function_error: str | None = None


def parse_batch_response(response: Any, batch: Sequence[Record]) -> int | None:
    """Where to retry from, per Lambda's rules for ReportBatchItemFailures.

    No answer, no ``batchItemFailures`` or an empty list: success. An identifier that is empty,
    missing or not a sequence number of this batch makes the whole batch a failure.
    """
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return None
    failures = response["batchItemFailures"]
    position = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(batch)}
    if not isinstance(failures, list):
        return 0
    indexes = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if identifier not in position:
            return 0
        indexes.append(position[identifier])
    return min(indexes)


def deliver(
    records: Sequence[Record],
    invoke: Callable[[Sequence[Record]], InvocationResult],
    *,
    max_retries: int,
    wait: Callable[[float], bool],
    give_up: Callable[[Sequence[Record], InvocationResult, int], None],
) -> bool:
    """Invoke until every record succeeded or was given up on; False if ``wait`` said stop.

    Bounded: a split halves a batch (at most log2(n) levels, and splitting costs no retry), and
    every other failure spends one of ``max_retries`` retries on a shorter-or-equal batch.
    """
    # Last in, first out, and the earlier half pushed last: records are invoked in shard order.
    pending: list[tuple[Sequence[Record], int, int]] = [(records, 0, 0)]  # batch, retries, invokes
    while pending:
        batch, retries, invokes = pending.pop()
        result = invoke(batch)
        invokes += 1
        if result.retry_from is None:
            continue
        if result.function_error is not None and len(batch) > 1:
            middle = len(batch) // 2
            pending.append((batch[middle:], retries, invokes))
            pending.append((batch[:middle], retries, invokes))
            continue
        remaining = batch[result.retry_from:]
        if retries >= max_retries:
            give_up(remaining, result, invokes)
            continue
        if not wait(min(0.2 * 2**retries, 2.0)):
            return False
        pending.append((remaining, retries + 1, invokes))
    return True


# --- the pump -----------------------------------------------------------------------------


@dataclass
class _ShardReader:
    """One target's position in one shard."""

    target: StreamTarget
    shard_id: str
    parent_shard_id: str | None
    iterator: str | None = None
    last_sequence_number: str | None = None
    finished: bool = False


@dataclass
class PumpStats:
    invocations: int = 0
    records_delivered: int = 0
    failed_invocations: int = 0
    records_dead_lettered: int = 0
    by_function: dict[str, int] = field(default_factory=dict)


class StreamPump:
    """Polls the stream on one daemon thread per target and invokes it; ``start()`` / ``stop()``."""

    def __init__(
        self,
        *,
        targets: Iterable[StreamTarget],
        table_name: str,
        region: str,
        dynamodb_client: Any,
        streams_client: Any,
        sqs_client: Any,
        failure_queue_url: str,
        log_path: Path | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        poll_interval: float = POLL_INTERVAL_SECONDS,
        forget_iterator: Callable[[str], None] | None = None,
    ) -> None:
        self._targets = list(targets)
        self._table_name = table_name
        self._region = region
        self._dynamodb = dynamodb_client
        self._streams = streams_client
        self._sqs = sqs_client
        self._failure_queue_url = failure_queue_url
        self._log_path = log_path
        self._max_retries = max_retries
        self._poll_interval = poll_interval
        # Called with each shard iterator once used up (the runner frees moto's copy of it).
        self._forget_iterator = forget_iterator
        self._stop = threading.Event()
        # One poller per function, as Lambda runs one event source mapping per function: a slow
        # function does not hold back the other one's records.
        self._threads = [
            threading.Thread(target=self._run, args=(target,), name=f"stream-pump-{target.identity.handler_name}",
                             daemon=True)
            for target in self._targets
        ]
        self._readers: dict[tuple[str, str], _ShardReader] = {}  # (function name, shard id) -> reader
        self._stream_arn: str | None = None
        self._log_file: TextIO | None = None
        self._stats = PumpStats()
        self._stats_lock = threading.Lock()

    @property
    def targets(self) -> list[StreamTarget]:
        return list(self._targets)

    def stats(self) -> PumpStats:
        with self._stats_lock:
            return dataclasses.replace(self._stats, by_function=dict(self._stats.by_function))

    def start(self) -> StreamPump:
        if self._log_path is not None:
            self._log_file = self._log_path.open("a", encoding="utf-8", buffering=1)
        self._stream_arn = self._dynamodb.describe_table(TableName=self._table_name)["Table"]["LatestStreamArn"]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # --- the loop ---------------------------------------------------------------------

    def _run(self, target: StreamTarget) -> None:
        next_refresh = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_refresh:
                    self._refresh_shards(target)
                    next_refresh = time.monotonic() + SHARD_REFRESH_SECONDS
                busy = False
                for reader in [r for r in list(self._readers.values()) if r.target is target]:
                    if self._stop.is_set():
                        return
                    busy |= self._poll(reader)
            except (BotoCoreError, ClientError) as error:
                # moto unreachable (going away at shutdown, say): report, wait, retry; never die.
                if not self._stop.is_set():
                    logger.warning("stream pump: %s; retrying in %.0f s", error, ERROR_BACKOFF_SECONDS)
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            except Exception:
                logger.exception("stream pump: unexpected error; retrying in %.0f s", ERROR_BACKOFF_SECONDS)
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            if not busy:  # drain a backlog at full speed, otherwise sleep between polls
                self._stop.wait(self._poll_interval)

    def _refresh_shards(self, target: StreamTarget) -> None:
        """Start reading shards that appeared; a child shard waits until its parent is read."""
        assert self._stream_arn is not None
        shards: list[dict[str, Any]] = []
        start_after: str | None = None
        for _page in range(1000):  # bounded pagination; a stream has a handful of shards
            kwargs: dict[str, Any] = {"StreamArn": self._stream_arn}
            if start_after:
                kwargs["ExclusiveStartShardId"] = start_after
            description = self._streams.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            start_after = description.get("LastEvaluatedShardId")
            if not start_after:
                break
        for shard in shards:
            key = (target.identity.handler_name, shard["ShardId"])
            if key not in self._readers:
                self._readers[key] = _ShardReader(target, shard["ShardId"], shard.get("ParentShardId"))

    def _parent_done(self, reader: _ShardReader) -> bool:
        if reader.parent_shard_id is None:
            return True
        parent = self._readers.get((reader.target.identity.handler_name, reader.parent_shard_id))
        return parent is None or parent.finished  # an unknown parent has been trimmed away

    def _poll(self, reader: _ShardReader) -> bool:
        """Read and deliver one batch from a shard; True if there were records."""
        if reader.finished or not self._parent_done(reader):
            return False
        if reader.iterator is None:
            reader.iterator = self._new_iterator(reader)
        used = reader.iterator
        try:
            answer = self._streams.get_records(ShardIterator=used, Limit=reader.target.batch_size)
        except self._streams.exceptions.ExpiredIteratorException:
            reader.iterator = None  # re-opened after the last sequence number on the next poll
            return True
        if self._forget_iterator is not None:
            self._forget_iterator(used)
        reader.iterator = answer.get("NextShardIterator")
        if reader.iterator is None:
            reader.finished = True  # a closed shard, read to its end
        raw_records = answer.get("Records", [])
        if not raw_records:
            return False
        assert self._stream_arn is not None
        batch = [to_lambda_record(r, stream_arn=self._stream_arn, region=self._region) for r in raw_records]
        completed = deliver(
            batch,
            lambda records: self._invoke(reader, records),
            max_retries=self._max_retries,
            wait=lambda seconds: not self._stop.wait(seconds),
            give_up=lambda records, result, invokes: self._dead_letter(reader, records, result, invokes),
        )
        if completed:
            reader.last_sequence_number = batch[-1]["dynamodb"]["SequenceNumber"]
        return True

    def _new_iterator(self, reader: _ShardReader) -> str:
        assert self._stream_arn is not None
        kwargs: dict[str, Any] = {"StreamArn": self._stream_arn, "ShardId": reader.shard_id}
        if reader.last_sequence_number is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=reader.last_sequence_number)
        return self._streams.get_shard_iterator(**kwargs)["ShardIterator"]

    # --- invoking and reporting -------------------------------------------------------

    def _invoke(self, reader: _ShardReader, records: Sequence[Record]) -> InvocationResult:
        target = reader.target
        # A JSON round trip gives each invocation its own copy, serialisable as Lambda's would be.
        event = json.loads(json.dumps({"Records": list(records)}))
        started = time.monotonic()
        try:
            response = target.handler(event, target.identity.new_context())
        except Exception as error:
            logger.exception("stream handler %s raised", target.identity.handler_name)
            result = InvocationResult(retry_from=0, function_error=f"{type(error).__name__}: {error}"[:300])
        else:
            result = InvocationResult(retry_from=parse_batch_response(response, records))
        outcome = "ok" if result.retry_from is None else ("error" if result.function_error else "partial")
        with self._stats_lock:
            self._stats.invocations += 1
            name = target.identity.handler_name
            self._stats.by_function[name] = self._stats.by_function.get(name, 0) + 1
            if outcome == "ok":
                self._stats.records_delivered += len(records)
            else:
                self._stats.failed_invocations += 1
        self._log_line(
            {
                "kind": "stream",
                "function": target.identity.handler_name,
                "shard": reader.shard_id,
                "outcome": outcome,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                "records": [
                    {"seq": r["dynamodb"]["SequenceNumber"], "event": r["eventName"], "keys": _plain_keys(r)}
                    for r in records
                ],
                "retry_from_seq": None
                if result.retry_from is None
                else records[result.retry_from]["dynamodb"]["SequenceNumber"],
                "error": result.function_error,
            }
        )
        return result

    def _dead_letter(
        self, reader: _ShardReader, records: Sequence[Record], result: InvocationResult, invokes: int
    ) -> None:
        """Send Lambda's on-failure record (metadata, not the records) to the failure queue."""
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if result.function_error:
            response_context["functionError"] = "Unhandled"
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": reader.target.identity.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invokes,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "DDBStreamBatchInfo": {
                "shardId": reader.shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first["ApproximateCreationDateTime"]),
                "approximateArrivalOfLastRecord": _iso(last["ApproximateCreationDateTime"]),
                "batchSize": len(records),
                "streamArn": self._stream_arn,
            },
        }
        with self._stats_lock:
            self._stats.records_dead_lettered += len(records)
        self._log_line(
            {
                "kind": "stream",
                "function": reader.target.identity.handler_name,
                "shard": reader.shard_id,
                "outcome": "dead_lettered",
                "records": [{"seq": r["dynamodb"]["SequenceNumber"], "event": r["eventName"], "keys": _plain_keys(r)}
                            for r in records],
            }
        )
        try:
            self._sqs.send_message(QueueUrl=self._failure_queue_url, MessageBody=json.dumps(message))
        except (BotoCoreError, ClientError):
            logger.exception("stream pump: could not send the on-failure record to %s", self._failure_queue_url)

    def _log_line(self, entry: dict[str, Any]) -> None:
        line = json.dumps({"ts": _iso(time.time()), **entry}, ensure_ascii=False)
        logger.info("%s", line)
        if self._log_file is not None:
            self._log_file.write(line + "\n")
