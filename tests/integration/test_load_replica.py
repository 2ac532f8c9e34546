"""The soak's measure of the data's memory (bench/load/replica.py): the table's stream, dumped
from a moto server and replayed in order into a fresh embedded DynamoDB, holds exactly the items
the table held -- puts, updates in place, transactions, deletes, binary and nested values alike --
and the replay stops at the record counts it is given."""

from __future__ import annotations

import socket

import boto3
from moto.server import ThreadedMotoServer

from bench.load import replica
from chalicelib.store import schema
from devstack import serial_dynamodb


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _items(client) -> list[dict]:
    pages = client.get_paginator("scan").paginate(TableName=replica.TABLE)
    return sorted((item for page in pages for item in page["Items"]), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def _write(client) -> None:
    table = replica.TABLE
    for n in range(20):
        client.put_item(TableName=table, Item={
            "pk": {"S": f"P#demo#M#{n % 4}"}, "sk": {"S": f"L#{n:03d}"}, "points": {"N": str(n)},
            "gsi1pk": {"S": f"P#demo#KIND#{n % 3}"}, "gsi1sk": {"S": f"{n:03d}"},
            "phone": {"B": bytes([n, 255, 0])}, "meta": {"M": {"tags": {"L": [{"S": "a"}, {"N": "1"}]}}}})
    for n in range(0, 20, 3):
        client.update_item(TableName=table, Key={"pk": {"S": f"P#demo#M#{n % 4}"}, "sk": {"S": f"L#{n:03d}"}},
                           UpdateExpression="SET points = points + :one REMOVE meta",
                           ExpressionAttributeValues={":one": {"N": "1"}})
    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {"pk": {"S": "P#demo#ORDER#1"}, "sk": {"S": "ORDER"}}}},
        {"Update": {"TableName": table, "Key": {"pk": {"S": "P#demo#M#1"}, "sk": {"S": "L#001"}},
                    "UpdateExpression": "SET gsi1pk = :k", "ExpressionAttributeValues": {":k": {"S": "moved"}}}}])
    for n in (2, 5, 11):
        client.delete_item(TableName=table, Key={"pk": {"S": f"P#demo#M#{n % 4}"}, "sk": {"S": f"L#{n:03d}"}})


def test_the_replayed_stream_holds_what_the_table_held(tmp_path):
    serial_dynamodb.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        client = boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        schema.create_table(client, replica.TABLE)
        _write(client)
        held = _items(client)
        path = tmp_path / "stream.jsonl"
        assert replica.dump_stream(url, path, upto=10**6) == 20 + 7 + 2 + 3
        assert replica.dump_stream(url, tmp_path / "first.jsonl", upto=5) == 5
    finally:
        server.stop()

    copy = replica.Replica()
    try:
        for record in replica._records(path):
            copy.apply(record)
        replayed = _items(boto3.client("dynamodb", region_name="us-east-1"))
        assert replayed == held
        assert copy.records() == 32  # the replay's own stream: the same events
        moved = boto3.client("dynamodb", region_name="us-east-1").query(
            TableName=replica.TABLE, IndexName="gsi1", KeyConditionExpression="gsi1pk = :k",
            ExpressionAttributeValues={":k": {"S": "moved"}})["Items"]
        assert [i["sk"]["S"] for i in moved] == ["L#001"]  # the GSI partitions followed the writes
    finally:
        copy.stop()


def test_the_replay_stops_at_each_mark(tmp_path):
    path = tmp_path / "stream.jsonl"
    path.write_text("".join(
        f'{{"event": "INSERT", "keys": {{"pk": {{"S": "P#x#{n}"}}, "sk": {{"S": "A"}}}}, '
        f'"new": {{"pk": {{"S": "P#x#{n}"}}, "sk": {{"S": "A"}}, "v": {{"N": "{n}"}}}}}}\n' for n in range(30)))
    figures = replica.replay(path, [10, 25, 30])
    assert [(m["records"], m["items"]) for m in figures["marks"]] == [(10, 10), (25, 25), (30, 30)]
