"""Replay what the stream functions gave up on: the records named by the failure queue's messages.

    loyalty-replay-failures --queue-url URL [--dry-run] [--max-messages N] [--region R]

A stream event source that exhausts its retries (infra/README.md, "Stream event source") sends
Lambda's on-failure record to `<app>-<stage>-stream-failures`: which function, and which shard
and sequence-number range of the table's stream -- not the records themselves. For each message
this reads that range back from the stream (DynamoDB keeps records 24 hours), invokes the same
function with exactly those records, as Lambda would, and deletes the message once the function
reports no failure. A message whose records the stream no longer has, or whose replay fails
again, stays in the queue (visible again after its visibility timeout) and is reported; the
handlers are idempotent, so replaying a range twice changes nothing.

On AWS it uses the normal credentials and `lambda:InvokeFunction`; `--endpoint-url` points
DynamoDB Streams and SQS elsewhere (the local stack, tests). Exit status 0 when every message was
replayed and deleted, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
# How many empty pages in a row end the read of an open shard (DynamoDB can answer empty pages).
_EMPTY_PAGES = 3


@dataclass
class Outcome:
    message_id: str
    function: str
    shard: str
    records: int
    expected: int
    status: str  # replayed | failed | expired | dry_run
    detail: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.status in ("replayed", "dry_run") for o in self.outcomes)


def _lambda_value(value: Any) -> Any:
    """boto3 hands binary attributes back as bytes; Lambda's JSON event carries base64."""
    if isinstance(value, dict):
        return {k: _lambda_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lambda_value(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    return value


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A `get_records` record in the shape Lambda delivers to the function."""
    source = dict(raw["dynamodb"])
    created = source.get("ApproximateCreationDateTime")
    if created is not None and not isinstance(created, (int, float)):
        source["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": raw.get("eventID"), "eventName": raw["eventName"], "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb", "awsRegion": raw.get("awsRegion", region), "eventSourceARN": stream_arn,
        "dynamodb": _lambda_value(source),
    }


def read_range(streams: Any, info: dict[str, Any], region: str) -> list[dict[str, Any]]:
    """The stream records from startSequenceNumber to endSequenceNumber of one shard, in order."""
    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    try:
        iterator = streams.get_shard_iterator(StreamArn=info["streamArn"], ShardId=info["shardId"],
                                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              SequenceNumber=info["startSequenceNumber"])["ShardIterator"]
    except streams.exceptions.TrimmedDataAccessException:
        return []
    except streams.exceptions.ResourceNotFoundException:
        return []
    found: list[dict[str, Any]] = []
    empty = 0
    while iterator and empty < _EMPTY_PAGES:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records = page.get("Records", [])
        empty = 0 if records else empty + 1
        for record in records:
            sequence = int(record["dynamodb"]["SequenceNumber"])
            if sequence > end:
                return found
            if sequence >= start:
                found.append(lambda_record(record, info["streamArn"], region))
        iterator = page.get("NextShardIterator")
    return found


def lambda_invoker(client: Any) -> Invoke:
    """Invoke the deployed function synchronously with the event; its answer as a dict."""

    def invoke(function_arn: str, event: dict[str, Any]) -> dict[str, Any]:
        answer = client.invoke(FunctionName=function_arn, InvocationType="RequestResponse",
                               Payload=json.dumps(event).encode())
        payload = answer["Payload"].read()
        body = json.loads(payload) if payload else {}
        if answer.get("FunctionError"):
            return {"functionError": answer["FunctionError"], "detail": body}
        return body if isinstance(body, dict) else {}

    return invoke


def _messages(sqs: Any, queue_url: str, limit: int, visibility: int) -> Iterator[dict[str, Any]]:
    """Each message once per run: one that comes back (its replay failed and it became visible
    again) ends the run rather than being retried in a loop."""
    seen: set[str] = set()
    while len(seen) < limit:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=min(10, limit - len(seen)),
                                     VisibilityTimeout=visibility, WaitTimeSeconds=0)
        batch = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
        if not batch:
            return
        for message in batch:
            seen.add(message["MessageId"])
            yield message


def replay(sqs: Any, streams: Any, queue_url: str, invoke: Invoke, *, region: str, dry_run: bool = False,
           max_messages: int = 1000, visibility: int = 300) -> Report:
    report = Report()
    for message in _messages(sqs, queue_url, max_messages, visibility):
        body = json.loads(message["Body"])
        info = body.get("DDBStreamBatchInfo")
        function = body.get("requestContext", {}).get("functionArn", "")
        if info is None:
            report.outcomes.append(Outcome(message["MessageId"], function, "", 0, 0, "failed",
                                           "not a DynamoDB stream on-failure record"))
            continue
        records = read_range(streams, info, region)
        outcome = Outcome(message["MessageId"], function, info["shardId"], len(records), int(info["batchSize"]), "")
        report.outcomes.append(outcome)
        if not records:
            outcome.status, outcome.detail = "expired", ("the stream no longer holds this range (older than 24 h, "
                                                         "or its shard is gone): repair from the table (infra/README.md)")
            continue
        if dry_run:
            outcome.status = "dry_run"
            continue
        answer = invoke(function, {"Records": records})
        failures = answer.get("batchItemFailures") or []
        if answer.get("functionError") or failures:
            outcome.status = "failed"
            outcome.detail = json.dumps(answer.get("detail") or failures, default=str)[:500]
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        outcome.status = "replayed"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loyalty-replay-failures", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--queue-url", required=True, help="the stack's StreamFailureQueueUrl output")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="SQS and DynamoDB Streams endpoint (local stack)")
    parser.add_argument("--dry-run", action="store_true", help="read the ranges and report; invoke and delete nothing")
    parser.add_argument("--max-messages", type=int, default=1000)
    args = parser.parse_args(argv)
    import boto3

    session = boto3.session.Session(region_name=args.region)
    region = session.region_name or "us-east-1"
    sqs = session.client("sqs", endpoint_url=args.endpoint_url)
    streams = session.client("dynamodbstreams", endpoint_url=args.endpoint_url)
    started = time.monotonic()
    report = replay(sqs, streams, args.queue_url, lambda_invoker(session.client("lambda")), region=region,
                    dry_run=args.dry_run, max_messages=args.max_messages)
    for outcome in report.outcomes:
        print(json.dumps(vars(outcome)))
    print(f"replay-failures: {len(report.outcomes)} messages in {time.monotonic() - started:.1f} s: "
          + ", ".join(f"{s} {sum(o.status == s for o in report.outcomes)}"
                      for s in ("replayed", "failed", "expired", "dry_run")), file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
