"""The stream pump: Lambda's event shape, its partial-batch and bisect rules, and a run against a
private moto server with a handler that keeps failing (the shared stack's handler never fails)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from aws_lambda_powertools.utilities.parser.models.dynamodb import DynamoDBStreamLambdaOnFailureDestinationModel
from chalice import Chalice

from devstack.lambda_runtime import FunctionIdentity
from devstack.stream_pump import (
    InvocationResult,
    StreamPump,
    StreamTarget,
    deliver,
    parse_batch_response,
    stream_targets,
    to_lambda_record,
)

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"


def _records(count: int) -> list[dict[str, Any]]:
    return [
        {"eventName": "INSERT", "dynamodb": {"SequenceNumber": str(100 + i), "Keys": {"pk": {"S": f"K{i}"}}}}
        for i in range(count)
    ]


def _seqs(records: Sequence[dict[str, Any]]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in records]


# --- the event ----------------------------------------------------------------------------


def test_records_take_lambdas_shape() -> None:
    raw = {
        "eventID": "e1",
        "eventName": "MODIFY",
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc),
            "Keys": {"pk": {"S": "P#demo#M#1"}, "sk": {"S": "A#ACCOUNT"}},
            "NewImage": {"pk": {"S": "P#demo#M#1"}, "secret": {"B": b"\x00\xff"}, "n": {"N": "3"}},
            "OldImage": {"pk": {"S": "P#demo#M#1"}, "tags": {"BS": [b"a"]}, "n": {"N": "2"}},
            "SequenceNumber": "111",
            "SizeBytes": 42,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }

    record = to_lambda_record(raw, stream_arn=STREAM_ARN, region="us-east-1")

    DynamoDBStreamModel.model_validate({"Records": [record]})  # what Powertools expects from Lambda
    assert record["eventSourceARN"] == STREAM_ARN and record["eventSource"] == "aws:dynamodb"
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1714564800.0
    assert record["dynamodb"]["NewImage"]["secret"] == {"B": "AP8="}  # base64, as in Lambda's JSON
    assert record["dynamodb"]["OldImage"]["tags"] == {"BS": ["YQ=="]}
    json.dumps(record)


def test_stream_handlers_are_found_from_the_apps_event_sources() -> None:
    app = Chalice(app_name="probe")

    @app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=7)
    def first(event: Any) -> None:
        return None

    @app.schedule("rate(1 hour)")
    def not_a_stream_handler(event: Any) -> None:
        return None

    targets = stream_targets(app, stage="local", region="us-east-1")

    assert [(t.identity.function_name, t.batch_size) for t in targets] == [("probe-local-first", 7)]
    assert targets[0].handler is first


# --- the partial batch response -----------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, None),
        ({}, None),
        ({"batchItemFailures": []}, None),
        ({"batchItemFailures": [{"itemIdentifier": "103"}, {"itemIdentifier": "101"}]}, 1),  # the lowest
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, 0),  # malformed: the whole batch failed
        ({"batchItemFailures": [{"itemIdentifier": "999"}]}, 0),  # not in this batch
        ({"batchItemFailures": [{"id": "101"}]}, 0),
        ({"batchItemFailures": "101"}, 0),
    ],
)
def test_partial_batch_responses_follow_lambdas_rules(response: Any, expected: int | None) -> None:
    assert parse_batch_response(response, _records(5)) == expected


class _Recorder:
    """A fake invoke: answers from a script of results, remembers every batch."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.batches: list[list[int]] = []
        self.given_up: list[tuple[list[int], int]] = []

    def invoke(self, batch: Sequence[dict[str, Any]]) -> InvocationResult:
        self.batches.append(_seqs(batch))
        return self.answer(batch)

    def give_up(self, batch: Sequence[dict[str, Any]], result: InvocationResult, invokes: int) -> None:
        self.given_up.append((_seqs(batch), invokes))

    def run(self, records: list[dict[str, Any]], max_retries: int = 3) -> bool:
        return deliver(records, self.invoke, max_retries=max_retries, wait=lambda s: True, give_up=self.give_up)


def test_a_partial_failure_retries_from_the_failed_record() -> None:
    failed_once: set[int] = set()

    def answer(batch: Sequence[dict[str, Any]]) -> InvocationResult:
        if 102 in _seqs(batch) and 102 not in failed_once:
            failed_once.add(102)
            return InvocationResult(retry_from=_seqs(batch).index(102))
        return InvocationResult()

    recorder = _Recorder(answer)
    assert recorder.run(_records(5))

    assert recorder.batches == [[100, 101, 102, 103, 104], [102, 103, 104]]
    assert recorder.given_up == []


def test_a_record_that_always_fails_is_given_up_after_the_retries() -> None:
    def answer(batch: Sequence[dict[str, Any]]) -> InvocationResult:
        seqs = _seqs(batch)
        return InvocationResult(retry_from=seqs.index(103)) if 103 in seqs else InvocationResult()

    recorder = _Recorder(answer)
    recorder.run(_records(5), max_retries=2)

    assert recorder.batches == [[100, 101, 102, 103, 104], [103, 104], [103, 104]]
    assert recorder.given_up == [([103, 104], 3)]


def test_an_exception_splits_the_batch_until_the_poison_record_is_alone() -> None:
    def answer(batch: Sequence[dict[str, Any]]) -> InvocationResult:
        if 105 in _seqs(batch):
            return InvocationResult(retry_from=0, function_error="ValueError: poison")
        return InvocationResult()

    recorder = _Recorder(answer)
    recorder.run(_records(8), max_retries=1)

    # Halves in shard order; splitting costs no retry; the poison record alone gets one retry.
    assert recorder.batches == [
        list(range(100, 108)), [100, 101, 102, 103], [104, 105, 106, 107], [104, 105], [104], [105], [105], [106, 107]
    ]
    assert recorder.given_up == [([105], 5)]


def test_stopping_abandons_the_retries() -> None:
    calls: list[int] = []

    def invoke(batch: Sequence[dict[str, Any]]) -> InvocationResult:
        calls.append(len(batch))
        return InvocationResult(retry_from=0)

    assert not deliver(_records(2), invoke, max_retries=5, wait=lambda s: False, give_up=lambda *a: None)
    assert calls == [2]


# --- against a private moto server --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _put(dynamodb: Any, table: str, pk: str) -> None:
    dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "S"}})


def test_the_pump_delivers_in_order_and_dead_letters_what_keeps_failing(moto_endpoint: str, tmp_path: Path) -> None:
    from chalicelib.store import schema

    dynamodb, streams, sqs = (_client(s, moto_endpoint) for s in ("dynamodb", "dynamodbstreams", "sqs"))
    table = "pump-test"
    schema.create_table(dynamodb, table)
    queue_url = sqs.create_queue(QueueName=f"{table}-stream-failures")["QueueUrl"]
    # Written before the pump runs (TRIM_HORIZON must catch them), so the batches are predictable.
    for pk in ("before-start", "a", "poison", "b"):
        _put(dynamodb, table, pk)

    seen: list[str] = []
    lock = threading.Lock()

    def recorder(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            seen.extend(r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"])
        assert context.function_name == "loyalty-local-recorder"
        return {"batchItemFailures": []}

    def picky(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
                                      for r in event["Records"] if r["dynamodb"]["Keys"]["pk"]["S"] == "poison"]}

    targets = [
        StreamTarget(FunctionIdentity("loyalty", "local", "recorder", "us-east-1"), recorder, batch_size=2),
        StreamTarget(FunctionIdentity("loyalty", "local", "picky", "us-east-1"), picky, batch_size=100),
    ]
    forgotten: list[str] = []
    pump = StreamPump(targets=targets, table_name=table, region="us-east-1", dynamodb_client=dynamodb,
                      streams_client=streams, sqs_client=sqs, failure_queue_url=queue_url,
                      log_path=tmp_path / "pump.jsonl", max_retries=1, poll_interval=0.05,
                      forget_iterator=forgotten.append).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pump.stats().records_dead_lettered < 2:
            time.sleep(0.05)
        _put(dynamodb, table, "after-start")  # the shard moved on past the dead-lettered records
        while time.monotonic() < deadline and len(seen) < 5:
            time.sleep(0.05)
    finally:
        pump.stop()

    assert seen == ["before-start", "a", "poison", "b", "after-start"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    failure = DynamoDBStreamLambdaOnFailureDestinationModel.model_validate_json(messages[0]["Body"])
    assert failure.request_context.condition == "RetryAttemptsExhausted"
    assert failure.request_context.function_arn.endswith(":function:loyalty-local-picky")
    assert failure.ddb_stream_batch_info.batch_size == 2  # "poison" and everything after it in the batch
    stream_arn = failure.ddb_stream_batch_info.stream_arn
    assert stream_arn.startswith(f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/")

    entries = [json.loads(line) for line in (tmp_path / "pump.jsonl").read_text().splitlines()]
    picky_outcomes = [e["outcome"] for e in entries if e["function"] == "picky"]
    assert "dead_lettered" in picky_outcomes and picky_outcomes.count("partial") == 2  # first try, one retry
    assert forgotten  # used iterators are handed back so moto can forget them


def test_a_cancelled_transaction_leaves_the_stream_alone(moto_endpoint: str) -> None:
    from chalicelib.store import schema
    from devstack import serial_dynamodb

    # Unpatched, moto swaps a copy of the table (and of its stream shard) in on a cancelled
    # transaction: earlier iterators go silent and read the cancelled writes.
    serial_dynamodb.install()
    dynamodb, streams = _client("dynamodb", moto_endpoint), _client("dynamodbstreams", moto_endpoint)
    table = "transactions-test"
    schema.create_table(dynamodb, table)
    _put(dynamodb, table, "first")
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    first = streams.get_records(ShardIterator=iterator["ShardIterator"])

    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "phantom"}, "sk": {"S": "S"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "first"}, "sk": {"S": "S"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    _put(dynamodb, table, "second")
    after = streams.get_records(ShardIterator=first["NextShardIterator"])

    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in first["Records"]] == ["first"]
    # The iterator from before still reads the live shard, without the cancelled write.
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in after["Records"]] == ["second"]
