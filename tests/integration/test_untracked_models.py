"""moto no longer keeps every model object it makes (devstack/serial_dynamodb.py, part 12): an
answer's copies of the items, replaced item versions and stream records are freed once nothing of
DynamoDB's holds them, so the local stack's server does not grow with the requests it answers.
S3's models stay tracked (S3's reset closes its objects' files through that list)."""

from __future__ import annotations

import gc
import tracemalloc

import boto3
from moto import mock_aws

from chalicelib.store import schema
from devstack import serial_dynamodb

QUERIES = 300


def _table(client) -> None:
    schema.create_table(client, "t")  # the app's: pk/sk, GSIs, a stream with both images
    for n in range(8):
        client.put_item(TableName="t", Item={"pk": {"S": "M#1"}, "sk": {"S": f"L#{n}"}, "points": {"N": str(n)},
                                             "note": {"S": "x" * 200}})


def _query(client) -> list[dict]:
    return client.query(TableName="t", KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                        ExpressionAttributeValues={":p": {"S": "M#1"}, ":s": {"S": "L#"}})["Items"]


def test_items_queries_and_stream_records_are_not_kept_in_motos_lists():
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import StreamRecord

    serial_dynamodb.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _table(client)
        assert len(_query(client)) == 8  # answers as before
        client.put_item(TableName="t", Item={"pk": {"S": "M#1"}, "sk": {"S": "L#0"}, "points": {"N": "9"}})
        client.update_item(TableName="t", Key={"pk": {"S": "M#1"}, "sk": {"S": "L#1"}},
                           UpdateExpression="SET points = :p", ExpressionAttributeValues={":p": {"N": "7"}})
        assert [i["points"]["N"] for i in _query(client)][:2] == ["9", "7"]
        assert Item.instances_tracked == []
        assert StreamRecord.instances_tracked == []


def test_answering_queries_keeps_no_memory():
    serial_dynamodb.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _table(client)
        for _ in range(50):  # warm: botocore's and moto's caches, the remembered expressions
            _query(client)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(QUERIES):
                _query(client)
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # moto's own tracking kept ~8 item copies (~1.1 KB each with their attributes) per Query:
        # 2.1 MB here (measured before the fix).
        assert kept < 150_000, kept


def test_s3_objects_stay_tracked():
    from moto.s3.models import FakeKey

    serial_dynamodb.install()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="untracked-models")
        s3.put_object(Bucket="untracked-models", Key="k", Body=b"data")
        assert any(key.name == "k" for key in FakeKey.instances_tracked)
        assert s3.get_object(Bucket="untracked-models", Key="k")["Body"].read() == b"data"
