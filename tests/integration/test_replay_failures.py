"""`loyalty-replay-failures` against moto: SQS holding Lambda's on-failure records, the table's
DynamoDB stream holding the records they name, the app's stream handlers receiving them again."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from loyalty_admin import replay_failures

REGION = "us-east-1"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:loyalty-local-{}"


@pytest.fixture
def stream(api: Any) -> dict[str, Any]:
    """Some traffic, then every record of the table's stream as get_records returns them."""
    from chalicelib.settings import get_settings

    token = api.enrolled("replayer", nickname="Replayer")
    member_id = api.member("GET", "/v1/members/me", token).json["member_id"]
    order = {"order_id": "rp-1", "member_id": member_id, "amount_fen": 5000, "paid_at": "2026-11-30T10:00:00+08:00"}
    assert api.till("POST", "/v1/orders", order).status_code == 201
    table = get_settings().table_name
    arn = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    assert len(records) > 6
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="loyalty-local-stream-failures")["QueueUrl"]
    return {"arn": arn, "shard": shard["ShardId"], "records": records, "sqs": sqs, "queue": queue,
            "streams": streams}


def on_failure_record(stream: dict[str, Any], function: str, first: int, last: int) -> str:
    """Lambda's on-failure record for records[first..last] (docs: 'on-failure destination', DynamoDB)."""
    records = stream["records"]
    return json.dumps({
        "requestContext": {"requestId": "316aa6d0-8154-4ae0-9af7-85d5f4a6bc81", "functionArn": FUNCTION.format(function),
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": "2026-11-30T02:13:49.717Z",
        "DDBStreamBatchInfo": {
            "shardId": stream["shard"],
            "startSequenceNumber": records[first]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[last]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": "2026-11-30T02:13:19Z",
            "approximateArrivalOfLastRecord": "2026-11-30T02:13:19Z",
            "batchSize": last - first + 1, "streamArn": stream["arn"],
        },
    })


class AppInvoker:
    """Stands in for lambda:Invoke: the function's handler from app.py, called as Lambda calls it."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def __call__(self, function_arn: str, event: dict[str, Any]) -> dict[str, Any]:
        import app

        self.calls.append((function_arn, event))
        if self.fail:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]}
        handler = getattr(app, function_arn.rsplit(":", 1)[1].removeprefix("loyalty-local-"))
        return handler(event, None) or {}


def _queue_size(stream: dict[str, Any]) -> int:
    attributes = stream["sqs"].get_queue_attributes(QueueUrl=stream["queue"], AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_replays_exactly_the_named_range_to_the_named_function_then_deletes_the_message(stream):
    stream["sqs"].send_message(QueueUrl=stream["queue"], MessageBody=on_failure_record(stream, "on_table_change", 2, 5))
    stream["sqs"].send_message(QueueUrl=stream["queue"],
                               MessageBody=on_failure_record(stream, "send_notifications", 6, 6))
    invoke = AppInvoker()
    report = replay_failures.replay(stream["sqs"], stream["streams"], stream["queue"], invoke, region=REGION)
    assert [o.status for o in report.outcomes] == ["replayed", "replayed"] and report.ok
    (first_arn, first), (second_arn, second) = invoke.calls
    assert first_arn.endswith("loyalty-local-on_table_change") and second_arn.endswith("send_notifications")
    expected = [r["dynamodb"]["SequenceNumber"] for r in stream["records"][2:6]]
    assert [r["dynamodb"]["SequenceNumber"] for r in first["Records"]] == expected
    record = first["Records"][0]
    assert record["eventSource"] == "aws:dynamodb" and record["eventSourceARN"] == stream["arn"]
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    assert [r["dynamodb"]["SequenceNumber"] for r in second["Records"]] == [stream["records"][6]["dynamodb"]["SequenceNumber"]]
    assert _queue_size(stream) == 0


def test_a_replay_that_fails_again_keeps_the_message(stream):
    stream["sqs"].send_message(QueueUrl=stream["queue"], MessageBody=on_failure_record(stream, "on_table_change", 0, 1))
    report = replay_failures.replay(stream["sqs"], stream["streams"], stream["queue"], AppInvoker(fail=True),
                                    region=REGION, visibility=0)
    assert [o.status for o in report.outcomes] == ["failed"] and not report.ok
    assert _queue_size(stream) == 1


def test_dry_run_reads_the_range_and_changes_nothing(stream):
    sqs, queue = stream["sqs"], stream["queue"]
    sqs.send_message(QueueUrl=queue, MessageBody=on_failure_record(stream, "on_table_change", 1, 3))
    invoke = AppInvoker()
    report = replay_failures.replay(sqs, stream["streams"], queue, invoke, region=REGION, dry_run=True, visibility=0)
    (outcome,) = report.outcomes
    assert (outcome.status, outcome.records, outcome.expected) == ("dry_run", 3, 3)
    assert invoke.calls == [] and _queue_size(stream) == 1


def test_a_range_the_stream_no_longer_holds_is_kept_and_reported(stream):
    from botocore.stub import Stubber

    sqs, queue = stream["sqs"], stream["queue"]
    sqs.send_message(QueueUrl=queue, MessageBody=on_failure_record(stream, "on_table_change", 0, 0))
    trimmed = boto3.client("dynamodbstreams", region_name=REGION)
    with Stubber(trimmed) as stub:  # what DynamoDB answers for records older than 24 hours
        stub.add_client_error("get_shard_iterator", "TrimmedDataAccessException")
        report = replay_failures.replay(sqs, trimmed, queue, AppInvoker(), region=REGION, visibility=0)
    (outcome,) = report.outcomes
    assert outcome.status == "expired" and "repair from the table" in outcome.detail and not report.ok
    assert _queue_size(stream) == 1
