"""The local stack's lean path for DynamoDB requests (devstack/serial_dynamodb.py, part 8) answers
exactly as moto's own Flask application: the same requests, signed as botocore signs them, go to a
moto server with the lean path and to one without it (from the same empty state each time), and
every answer must have the same status, the same headers and the same body (only what moto makes
anew for each request or each table is set aside: request ids, dates, checksums, stream labels).

Writes that succeed, conditions that fail (a cancelled transaction's reasons), malformed
expressions, a missing table, the stream API, and the requests the lean path leaves to moto (a
cross-origin request, another service) are all in the sequence.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from devstack import serial_dynamodb

TABLE = "lean"
# `connection` is compared apart: the lean path keeps the connection open (werkzeug closes every one).
_VOLATILE_HEADERS = {"date", "x-amzn-requestid", "x-amz-crc32", "content-length", "server", "connection"}
_connections: list[str | None] = []
# Values moto makes anew for each table or request (the stream's label is the table's creation time).
_VOLATILE_VALUES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?|\b1\d{9}(\.\d+)?\b|[0-9a-f]{8}-[0-9a-f-]{27}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def servers():
    from moto.server import ThreadedMotoServer

    serial_dynamodb.install()
    plain = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    lean = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    plain.start()
    lean.start()
    serial_dynamodb.serve_lean(lean)
    try:
        yield {"plain": f"http://127.0.0.1:{plain.get_host_and_port()[1]}",
               "lean": f"http://127.0.0.1:{lean.get_host_and_port()[1]}"}
    finally:
        plain.stop()
        lean.stop()


def _send(url: str, target: str, body: dict[str, Any], *, service: str = "dynamodb",
          extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body)
    request = AWSRequest(method="POST", url=url + "/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target, **(extra or {})})
    SigV4Auth(Credentials("testing", "testing"), service, "us-east-1").add_auth(request)
    answer = requests.post(url + "/", data=data, headers=dict(request.headers.items()), timeout=10)
    _connections.append(answer.headers.get("Connection"))
    headers = {k.lower(): v for k, v in answer.headers.items() if k.lower() not in _VOLATILE_HEADERS}
    try:
        parsed: Any = _masked(json.loads(answer.text))
    except ValueError:
        parsed = _VOLATILE_VALUES.sub("<volatile>", answer.text)
    return answer.status_code, headers, parsed


def _masked(value: Any, key: str = "") -> Any:
    # New for each one (a stream record's size counts its own id and sequence number).
    if key in ("ShardIterator", "NextShardIterator", "eventID", "SequenceNumber", "SizeBytes"):
        return "<volatile>"
    if isinstance(value, dict):
        return {k: _masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str):
        return _VOLATILE_VALUES.sub("<volatile>", value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1_000_000_000:
        return "<volatile>"  # a time in epoch seconds
    return value


def _item(pk: str, sk: str, **more: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **more}


def _sequence(url: str) -> list[tuple[str, tuple[int, dict[str, str], Any]]]:
    requests.post(url + "/moto-api/reset", timeout=10)
    d = "DynamoDB_20120810."
    steps: list[tuple[str, dict[str, Any]]] = [
        ("CreateTable", {"TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
                         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}],
                         "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"}
                                                  for n in ("pk", "sk", "g")],
                         "GlobalSecondaryIndexes": [{"IndexName": "gsi", "KeySchema": [
                             {"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                             "Projection": {"ProjectionType": "ALL"}}],
                         "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}),
        ("PutItem", {"TableName": TABLE, "Item": _item("M#1", "A#ACCOUNT", points={"N": "10"}, version={"N": "1"},
                                                       g={"S": "G#1"}, blob={"B": "AAEC"})}),
        ("PutItem", {"TableName": TABLE, "Item": _item("M#1", "A#LOT#1", remaining={"N": "3"}, g={"S": "G#1"}),
                     "ReturnValues": "ALL_OLD", "ReturnConsumedCapacity": "TOTAL"}),
        ("PutItem", {"TableName": TABLE, "Item": _item("M#1", "A#LOT#1", remaining={"N": "4"}),
                     "ReturnValues": "ALL_OLD"}),
        ("PutItem", {"TableName": TABLE, "Item": _item("M#1", "A#ACCOUNT"),
                     "ConditionExpression": "attribute_not_exists(pk)"}),
        ("GetItem", {"TableName": TABLE, "Key": _item("M#1", "A#ACCOUNT"), "ConsistentRead": True}),
        ("GetItem", {"TableName": TABLE, "Key": _item("M#1", "nothing")}),
        ("GetItem", {"TableName": "missing", "Key": _item("M#1", "A#ACCOUNT")}),
        ("UpdateItem", {"TableName": TABLE, "Key": _item("M#1", "A#ACCOUNT"),
                        "UpdateExpression": "SET #p = #p + :d, #v = :next ADD #n :one",
                        "ConditionExpression": "#v = :v",
                        "ExpressionAttributeNames": {"#p": "points", "#v": "version", "#n": "count"},
                        "ExpressionAttributeValues": {":d": {"N": "5"}, ":next": {"N": "2"}, ":v": {"N": "1"},
                                                      ":one": {"N": "1"}},
                        "ReturnValues": "ALL_NEW"}),
        ("UpdateItem", {"TableName": TABLE, "Key": _item("M#1", "A#ACCOUNT"), "UpdateExpression": "SET #v = :v",
                        "ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
                        "ExpressionAttributeValues": {":v": {"N": "1"}}}),
        ("UpdateItem", {"TableName": TABLE, "Key": _item("M#1", "A#ACCOUNT"), "UpdateExpression": "SET = :v",
                        "ExpressionAttributeValues": {":v": {"N": "1"}}}),
        ("BatchGetItem", {"RequestItems": {TABLE: {"Keys": [_item("M#1", "A#ACCOUNT"), _item("M#1", "A#LOT#1"),
                                                            _item("M#2", "A#ACCOUNT")], "ConsistentRead": True}}}),
        ("TransactWriteItems", {"TransactItems": [
            {"Update": {"TableName": TABLE, "Key": _item("M#1", "A#ACCOUNT"),
                        "UpdateExpression": "SET #v = :next", "ConditionExpression": "#v = :v",
                        "ExpressionAttributeNames": {"#v": "version"},
                        "ExpressionAttributeValues": {":v": {"N": "2"}, ":next": {"N": "3"}}}},
            {"Put": {"TableName": TABLE, "Item": _item("M#1", "L#1", g={"S": "G#1"}),
                     "ConditionExpression": "attribute_not_exists(pk)"}}]}),
        ("TransactWriteItems", {"TransactItems": [
            {"Update": {"TableName": TABLE, "Key": _item("M#1", "A#ACCOUNT"),
                        "UpdateExpression": "SET #v = :next", "ConditionExpression": "#v = :v",
                        "ExpressionAttributeNames": {"#v": "version"},
                        "ExpressionAttributeValues": {":v": {"N": "2"}, ":next": {"N": "3"}}}},
            {"Put": {"TableName": TABLE, "Item": _item("M#1", "L#1"),
                     "ConditionExpression": "attribute_not_exists(pk)"}}]}),
        ("Query", {"TableName": TABLE, "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
                   "ExpressionAttributeValues": {":p": {"S": "M#1"}, ":s": {"S": "A#"}}, "ConsistentRead": True}),
        ("Query", {"TableName": TABLE, "IndexName": "gsi", "KeyConditionExpression": "g = :g",
                   "ExpressionAttributeValues": {":g": {"S": "G#1"}}, "Limit": 1, "ScanIndexForward": False}),
        ("Query", {"TableName": TABLE, "KeyConditionExpression": "nope"}),
        ("Scan", {"TableName": TABLE}),
        ("DeleteItem", {"TableName": TABLE, "Key": _item("M#1", "L#1"), "ReturnValues": "ALL_OLD"}),
        ("BatchWriteItem", {"RequestItems": {TABLE: [{"PutRequest": {"Item": _item("M#3", "A#ACCOUNT")}},
                                                     {"DeleteRequest": {"Key": _item("M#1", "A#LOT#1")}}]}}),
        ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": TABLE, "Key": _item("M#3", "A#ACCOUNT")}}]}),
        ("DescribeTable", {"TableName": TABLE}),
        ("NoSuchOperation", {}),
    ]
    answers = [(name, _send(url, d + name, body)) for name, body in steps]
    streams = _send(url, "DynamoDBStreams_20120810.ListStreams", {"TableName": TABLE})
    answers.append(("ListStreams", streams))
    raw = _raw_stream_arn(url)  # volatile (the table's creation time): read unmasked from this server
    described = _send(url, "DynamoDBStreams_20120810.DescribeStream", {"StreamArn": raw})
    answers.append(("DescribeStream", described))
    shard = _raw_shard_iterator(url, raw)
    answers.append(("GetRecords", _send(url, "DynamoDBStreams_20120810.GetRecords", {"ShardIterator": shard})))
    # Left to moto's application: a cross-origin request (Flask adds its CORS headers), another service.
    answers.append(("GetItem with Origin", _send(url, d + "GetItem", {"TableName": TABLE, "Key": _item("M#3", "A#ACCOUNT")},
                                                 extra={"Origin": "http://example.com"})))
    answers.append(("SQS", _send(url, "AmazonSQS.ListQueues", {}, service="sqs")))
    return answers


def _raw_stream_arn(url: str) -> str:
    data = json.dumps({"TableName": TABLE})
    request = AWSRequest(method="POST", url=url + "/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDBStreams_20120810.ListStreams"})
    SigV4Auth(Credentials("testing", "testing"), "dynamodb", "us-east-1").add_auth(request)
    return requests.post(url + "/", data=data, headers=dict(request.headers.items()), timeout=10).json()[
        "Streams"][0]["StreamArn"]


def _raw_shard_iterator(url: str, arn: str) -> str:
    def call(target: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body)
        request = AWSRequest(method="POST", url=url + "/", data=data, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target})
        SigV4Auth(Credentials("testing", "testing"), "dynamodb", "us-east-1").add_auth(request)
        return requests.post(url + "/", data=data, headers=dict(request.headers.items()), timeout=10).json()

    shard = call("DynamoDBStreams_20120810.DescribeStream", {"StreamArn": arn})["StreamDescription"]["Shards"][0]
    return call("DynamoDBStreams_20120810.GetShardIterator", {
        "StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]


def test_the_lean_path_answers_as_moto_does(servers, monkeypatch):
    _connections.clear()
    plain = _sequence(servers["plain"])
    assert set(_connections) == {"close"}
    _connections.clear()
    taken: list[Any] = []
    chosen = serial_dynamodb._lean_handler
    monkeypatch.setattr(serial_dynamodb, "_lean_handler", lambda *a: taken.append(chosen(*a)) or taken[-1])
    lean = _sequence(servers["lean"])
    # Each lean request is looked at twice (the HTTP handler, then the WSGI application); the
    # three stream reads made to find the ARN and an iterator take the path as well.
    assert sum(handler is not None for handler in taken) == 2 * (len(lean) - 2 + 3)
    closed = [name for (name, _), connection in zip(lean, _connections) if connection == "close"]
    assert closed == ["NoSuchOperation", "GetItem with Origin", "SQS"]  # a 500 closes it, as werkzeug does
    assert [name for name, _ in lean] == [name for name, _ in plain]
    for (name, expected), (_, got) in zip(plain, lean):
        assert got == expected, name
    # The sequence did reach the paths it means to: errors as well as answers.
    for operation in ("PutItem", "GetItem", "UpdateItem", "TransactWriteItems", "Query"):
        assert {answer[0] for name, answer in plain if name == operation} == {200, 400}, operation
    assert plain[-1][1][0] == 200 and "access-control-allow-origin" in plain[-2][1][1]
    records = next(answer for name, answer in plain if name == "GetRecords")[2]["Records"]
    assert len(records) >= 8


def test_a_kept_connection_serves_request_after_request(servers):
    """Several requests on one connection (as botocore sends them), a body's end found by its length."""
    session = requests.Session()
    url = servers["lean"]
    requests.post(url + "/moto-api/reset", timeout=10)
    for n in range(5):
        data = json.dumps({"TableName": "nothing-" + "x" * n, "Key": _item("M#1", "A#ACCOUNT")})
        request = AWSRequest(method="POST", url=url + "/", data=data, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"})
        SigV4Auth(Credentials("testing", "testing"), "dynamodb", "us-east-1").add_auth(request)
        answer = session.post(url + "/", data=data, headers=dict(request.headers.items()), timeout=10)
        assert answer.status_code == 400 and "ResourceNotFoundException" in answer.text
        assert answer.headers.get("Connection") is None
    pool = next(iter(session.adapters["http://"].poolmanager.pools._container.values()))
    assert pool.num_connections == 1


def test_only_dynamodb_requests_take_the_lean_path():
    handlers = {"dynamodb": "D", "dynamodbstreams": "S"}
    auth = "AWS4-HMAC-SHA256 Credential=testing/20261130/us-east-1/dynamodb/aws4_request, SignedHeaders=x, Signature=y"
    base = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "HTTP_AUTHORIZATION": auth}
    assert serial_dynamodb._lean_handler({**base, "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"}, handlers) == "D"
    assert serial_dynamodb._lean_handler({**base, "HTTP_X_AMZ_TARGET": "DynamoDBStreams_20120810.GetRecords"},
                                         handlers) == "S"
    for other in ({"HTTP_X_AMZ_TARGET": "DynamoDB_20111205.GetItem"}, {"HTTP_X_AMZ_TARGET": "AmazonSQS.ListQueues"},
                  {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem", "HTTP_ORIGIN": "http://x"},
                  {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem", "REQUEST_METHOD": "GET"},
                  {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem", "PATH_INFO": "/moto-api/reset"},
                  {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem", "QUERY_STRING": "a=b"},
                  {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem", "HTTP_AUTHORIZATION": auth.replace("dynamodb", "sqs")},
                  {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem", "HTTP_AUTHORIZATION": ""}):
        assert serial_dynamodb._lean_handler({**base, **other}, handlers) is None, other
