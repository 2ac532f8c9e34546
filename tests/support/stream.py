"""Feed the table's real stream records (moto) to the app's stream handler, as Lambda would."""

from __future__ import annotations

from typing import Any

import boto3

_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/loyalty-test/stream/test"


def lambda_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [{**r, "eventSource": "aws:dynamodb", "eventSourceARN": _ARN} for r in records]}


class StreamFeeder:
    """Remembers how far it has read; `pump()` hands every new record to the handler, batch by
    batch, until the stream is quiet (reactions write, and their writes are records too)."""

    def __init__(self) -> None:
        from chalicelib.settings import get_settings

        table = boto3.client("dynamodb", region_name="us-east-1").describe_table(
            TableName=get_settings().table_name)["Table"]
        self._arn = table["LatestStreamArn"]
        self._client = boto3.client("dynamodbstreams", region_name="us-east-1")
        self._iterators: dict[str, str] = {}
        self.delivered: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        shards = self._client.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = self._iterators.get(shard_id) or self._client.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            answer = self._client.get_records(ShardIterator=iterator, Limit=1000)
            records += answer["Records"]
            self._iterators[shard_id] = answer["NextShardIterator"]
        return records

    def pump(self, rounds: int = 10) -> list[dict[str, Any]]:
        from app import on_table_change

        answers = []
        for _ in range(rounds):
            records = self.read()
            if not records:
                break
            self.delivered += records
            answers.append(on_table_change(lambda_event(records), None))
        return answers
