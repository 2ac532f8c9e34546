"""The local stack's partitioned Queries (devstack/serial_dynamodb.py, part 3) answer exactly as
moto's own walk of the table: the same items, in the same order, in the same pages.

One table (the app's schema: pk/sk and two GSIs) is written by every kind of write -- puts,
updates that move an item between index partitions or out of an index, deletes, batches,
transactions that commit and transactions that are cancelled and rolled back -- and after each
round a battery of Queries runs twice, once partitioned and once with moto walking the table
(`moto_walks_the_table`), and every page of every answer must be equal.
"""

from __future__ import annotations

import json
import random
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.store import schema
from devstack import serial_dynamodb

TABLE = "query-index"
PARTITIONS = [f"P#{n}" for n in range(4)]
GSI_PARTITIONS = ["G#a", "G#b", "G#c"]


@pytest.fixture
def dynamodb():
    serial_dynamodb.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**schema.create_table_kwargs(TABLE))
        yield client


def _item(rng: random.Random, pk: str, sk: str) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": sk}, "n": {"N": str(rng.randint(0, 9))},
                            "kind": {"S": rng.choice(["lot", "row", "hold"])}}
    if rng.random() < 0.8:
        item["gsi1pk"] = {"S": rng.choice(GSI_PARTITIONS)}
        item["gsi1sk"] = {"S": f"{rng.randint(0, 5):02d}"}  # ties: moto orders them by table keys
    if rng.random() < 0.4:
        item["gsi2pk"] = {"S": rng.choice(GSI_PARTITIONS)}
        if rng.random() < 0.9:  # sometimes without its sort key: then not in the index
            item["gsi2sk"] = {"S": f"d{rng.randint(0, 30):03d}"}
    return item


def _key(rng: random.Random) -> tuple[str, str]:
    return rng.choice(PARTITIONS), f"S#{rng.randint(0, 40):03d}"


def _writes(client: Any, rng: random.Random, count: int) -> None:
    for _ in range(count):
        pk, sk = _key(rng)
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        kind = rng.choice(["put", "put", "update", "remove", "delete", "batch", "tx", "tx-cancelled"])
        if kind == "put":
            client.put_item(TableName=TABLE, Item=_item(rng, pk, sk))
        elif kind == "update":  # moves the item to another GSI partition and sort key (or creates it)
            client.update_item(TableName=TABLE, Key=key, UpdateExpression="SET gsi1pk = :g, gsi1sk = :s, n = :n",
                               ExpressionAttributeValues={":g": {"S": rng.choice(GSI_PARTITIONS)},
                                                          ":s": {"S": f"{rng.randint(0, 5):02d}"},
                                                          ":n": {"N": str(rng.randint(0, 9))}})
        elif kind == "remove":  # out of GSI1
            client.update_item(TableName=TABLE, Key=key, UpdateExpression="REMOVE gsi1pk")
        elif kind == "delete":
            client.delete_item(TableName=TABLE, Key=key)
        elif kind == "batch":
            requests = []
            seen = set()
            for _ in range(rng.randint(1, 10)):
                bpk, bsk = _key(rng)
                if (bpk, bsk) in seen:
                    continue
                seen.add((bpk, bsk))
                if rng.random() < 0.7:
                    requests.append({"PutRequest": {"Item": _item(rng, bpk, bsk)}})
                else:
                    requests.append({"DeleteRequest": {"Key": {"pk": {"S": bpk}, "sk": {"S": bsk}}}})
            client.batch_write_item(RequestItems={TABLE: requests})
        else:
            entries: list[dict[str, Any]] = []
            seen = set()
            for _ in range(rng.randint(2, 5)):
                tpk, tsk = _key(rng)
                if (tpk, tsk) in seen:
                    continue
                seen.add((tpk, tsk))
                if rng.random() < 0.5:
                    entries.append({"Put": {"TableName": TABLE, "Item": _item(rng, tpk, tsk)}})
                else:
                    entries.append({"Update": {"TableName": TABLE, "Key": {"pk": {"S": tpk}, "sk": {"S": tsk}},
                                               "UpdateExpression": "SET gsi1pk = :g, gsi1sk = :s",
                                               "ExpressionAttributeValues": {":g": {"S": rng.choice(GSI_PARTITIONS)},
                                                                             ":s": {"S": "03"}}}})
            if kind == "tx-cancelled":  # the last one's condition fails: everything before is undone
                entries[-1][next(iter(entries[-1]))]["ConditionExpression"] = "attribute_exists(nothing_has_this)"
                with pytest.raises(client.exceptions.TransactionCanceledException):
                    client.transact_write_items(TransactItems=entries)
            else:
                client.transact_write_items(TransactItems=entries)


def _queries(rng: random.Random) -> list[dict[str, Any]]:
    """Key conditions of every kind, both directions, limits, filters and projections."""
    found: list[dict[str, Any]] = []
    ranges = [
        (None, {}),
        ("#r = :a", {":a": "S#010"}),
        ("#r < :a", {":a": "S#020"}),
        ("#r <= :a", {":a": "S#020"}),
        ("#r > :a", {":a": "S#005"}),
        ("#r >= :a", {":a": "S#005"}),
        ("begins_with(#r, :a)", {":a": "S#01"}),
        ("#r BETWEEN :a AND :b", {":a": "S#008", ":b": "S#031"}),
    ]
    gsi_ranges = [
        (None, {}),
        ("#r = :a", {":a": "03"}),
        ("#r < :a", {":a": "03"}),
        ("#r >= :a", {":a": "02"}),
        ("begins_with(#r, :a)", {":a": "0"}),
        ("#r BETWEEN :a AND :b", {":a": "01", ":b": "04"}),
    ]
    gsi2_ranges = [(None, {}), ("#r <= :a", {":a": "d015"}), ("begins_with(#r, :a)", {":a": "d01"})]
    targets = ([(None, "pk", "sk", p, ranges) for p in PARTITIONS + ["P#none"]]
               + [("gsi1", "gsi1pk", "gsi1sk", g, gsi_ranges) for g in GSI_PARTITIONS + ["G#none"]]
               + [("gsi2", "gsi2pk", "gsi2sk", g, gsi2_ranges) for g in GSI_PARTITIONS])
    for index, hash_name, range_name, value, conditions in targets:
        for condition, values in conditions:
            expression = "#h = :h" + (f" AND {condition}" if condition else "")
            names = {"#h": hash_name, **({"#r": range_name} if condition else {})}
            query: dict[str, Any] = {
                "TableName": TABLE, "KeyConditionExpression": expression, "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {":h": {"S": value}, **{k: {"S": v} for k, v in values.items()}},
                "ScanIndexForward": rng.random() < 0.5,
            }
            if index:
                query["IndexName"] = index
            if rng.random() < 0.6:
                query["Limit"] = rng.randint(1, 7)
            if rng.random() < 0.3:
                query["FilterExpression"] = "#n >= :low"
                query["ExpressionAttributeNames"]["#n"] = "n"
                query["ExpressionAttributeValues"][":low"] = {"N": "4"}
            if rng.random() < 0.2:
                query["ProjectionExpression"] = "pk, sk, #k"
                query["ExpressionAttributeNames"]["#k"] = "kind"
            if rng.random() < 0.1:
                query["Select"] = "COUNT"
                query.pop("ProjectionExpression", None)
                query["ExpressionAttributeNames"].pop("#k", None)
            found.append(query)
    return found


def _all_pages(client: Any, query: dict[str, Any]) -> list[dict[str, Any]]:
    pages = []
    start = None
    for _ in range(200):
        answer = client.query(**query, **({"ExclusiveStartKey": start} if start else {}))
        answer.pop("ResponseMetadata", None)
        pages.append(answer)
        start = answer.get("LastEvaluatedKey")
        if not start:
            return pages
    raise AssertionError(f"no end to the pages of {query}")


@pytest.mark.parametrize("seed", [1, 2])
def test_partitioned_queries_answer_as_moto_does(dynamodb, seed):
    rng = random.Random(seed)
    compared = 0
    for _round in range(4):
        _writes(dynamodb, rng, 60)
        for query in _queries(rng):
            partitioned = _all_pages(dynamodb, query)
            with serial_dynamodb.moto_walks_the_table():
                walked = _all_pages(dynamodb, query)
            assert partitioned == walked, query
            compared += 1
    assert compared > 200


def test_an_exclusive_start_key_from_elsewhere_pages_the_same(dynamodb):
    """A start key taken from another partition's page (DynamoDB refuses it; moto skips by
    order): still the same answer both ways."""
    rng = random.Random(7)
    _writes(dynamodb, rng, 200)
    for index, hash_name, value in ((None, "pk", "P#1"), ("gsi1", "gsi1pk", "G#b")):
        query = {"TableName": TABLE, "KeyConditionExpression": "#h = :h", "ExpressionAttributeNames": {"#h": hash_name},
                 "ExpressionAttributeValues": {":h": {"S": value}}, "Limit": 3,
                 **({"IndexName": index} if index else {})}
        start = dynamodb.query(**query)["LastEvaluatedKey"]
        for other in ("P#2", "G#a"):
            moved = {**query, "ExpressionAttributeValues": {":h": {"S": other}}, "ExclusiveStartKey": start}
            if (index is None) != other.startswith("P#"):
                continue
            partitioned = dynamodb.query(**moved)
            with serial_dynamodb.moto_walks_the_table():
                walked = dynamodb.query(**moved)
            partitioned.pop("ResponseMetadata"), walked.pop("ResponseMetadata")
            assert partitioned == walked


def test_errors_are_moto_s(dynamodb):
    bad = [
        {"TableName": TABLE, "IndexName": "nope", "KeyConditionExpression": "gsi1pk = :h",
         "ExpressionAttributeValues": {":h": {"S": "G#a"}}},
        {"TableName": TABLE, "IndexName": "gsi1", "ConsistentRead": True, "KeyConditionExpression": "gsi1pk = :h",
         "ExpressionAttributeValues": {":h": {"S": "G#a"}}},
    ]
    for query in bad:
        with pytest.raises(dynamodb.exceptions.ClientError) as partitioned:
            dynamodb.query(**query)
        with serial_dynamodb.moto_walks_the_table(), pytest.raises(dynamodb.exceptions.ClientError) as walked:
            dynamodb.query(**query)
        assert partitioned.value.response["Error"] == walked.value.response["Error"]


def test_a_query_reads_its_partition_only(dynamodb):
    """The point of it: a Query never walks the table (moto's walk is made to fail here)."""
    rng = random.Random(11)
    _writes(dynamodb, rng, 100)
    from moto.dynamodb.models.table import Table

    walked = []
    original = serial_dynamodb._partitioned
    assert original is True
    patched_all_items = Table.all_items

    def counting(self):
        items = patched_all_items(self)
        walked.append(len(items))
        return items

    Table.all_items = counting
    try:
        dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :h", ExpressionAttributeValues={":h": {"S": "P#1"}})
        dynamodb.query(TableName=TABLE, IndexName="gsi1", KeyConditionExpression="gsi1pk = :h",
                       ExpressionAttributeValues={":h": {"S": "G#a"}})
    finally:
        Table.all_items = patched_all_items
    total = dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"]
    assert len(walked) == 2 and max(walked) < total / 2, (walked, total)


def test_direct_json_answers_parse_as_moto_s_serializer_answers(dynamodb):
    """Part 4: the data operations' answers, dumped as they are, read back exactly as moto's
    serializer's do (binary values, sets, numbers, empty answers, errors, every operation)."""
    rng = random.Random(5)
    _writes(dynamodb, rng, 120)
    item = {"pk": {"S": "P#bin"}, "sk": {"S": "x"}, "b": {"B": b"\x00\xff"}, "bs": {"BS": [b"a", b"b"]},
            "ns": {"NS": ["1", "2.5"]}, "ss": {"SS": ["a", "b"]}, "n": {"N": "-0.50"}, "nul": {"NULL": True},
            "m": {"M": {"l": {"L": [{"BOOL": False}, {"S": "é"}]}}}}
    key = {"pk": {"S": "P#bin"}, "sk": {"S": "x"}}
    calls = [
        ("put_item", {"TableName": TABLE, "Item": item, "ReturnValues": "ALL_OLD"}),
        ("put_item", {"TableName": TABLE, "Item": item, "ReturnValues": "ALL_OLD",
                      "ReturnConsumedCapacity": "TOTAL"}),
        ("get_item", {"TableName": TABLE, "Key": key}),
        ("get_item", {"TableName": TABLE, "Key": {"pk": {"S": "none"}, "sk": {"S": "x"}}}),
        ("update_item", {"TableName": TABLE, "Key": key, "UpdateExpression": "SET n = n + :o",
                         "ExpressionAttributeValues": {":o": {"N": "1"}}, "ReturnValues": "ALL_NEW"}),
        ("update_item", {"TableName": TABLE, "Key": key, "UpdateExpression": "SET n = :o",
                         "ConditionExpression": "attribute_not_exists(pk)",
                         "ExpressionAttributeValues": {":o": {"N": "1"}},
                         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
        ("batch_get_item", {"RequestItems": {TABLE: {"Keys": [key, {"pk": {"S": "P#1"}, "sk": {"S": "S#001"}},
                                                              {"pk": {"S": "no"}, "sk": {"S": "no"}}]}}}),
        ("query", {"TableName": TABLE, "KeyConditionExpression": "pk = :p",
                   "ExpressionAttributeValues": {":p": {"S": "P#1"}}, "Limit": 3}),
        ("query", {"TableName": TABLE, "KeyConditionExpression": "pk = :p",
                   "ExpressionAttributeValues": {":p": {"S": "nothing"}}}),
        ("query", {"TableName": TABLE, "IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :p",
                   "ExpressionAttributeValues": {":p": {"S": "G#a"}}, "Select": "COUNT"}),
        ("scan", {"TableName": TABLE, "Limit": 5}),
        ("transact_write_items", {"TransactItems": [{"Put": {"TableName": TABLE, "Item": {**key, "sk": {"S": "y"}}}}]}),
        ("transact_write_items", {"TransactItems": [
            {"Put": {"TableName": TABLE, "Item": key, "ConditionExpression": "attribute_not_exists(pk)"}}]}),
        ("transact_get_items", {"TransactItems": [{"Get": {"TableName": TABLE, "Key": key}}]}),
        ("batch_write_item", {"RequestItems": {TABLE: [{"PutRequest": {"Item": {**key, "sk": {"S": "z"}}}}]}}),
        ("delete_item", {"TableName": TABLE, "Key": {**key, "sk": {"S": "z"}}, "ReturnValues": "ALL_OLD"}),
        ("describe_table", {"TableName": TABLE}),
    ]

    from moto.core.responses import ActionResult

    patched = ActionResult.execute_result
    compared: list[str] = []

    def both(self: Any, context: Any) -> Any:
        """Serialise the very same answer both ways (no request is made twice)."""
        status, headers, body = patched(self, context)
        with serial_dynamodb.moto_parses_and_serialises():
            moto_status, moto_headers, moto_body = patched(self, context)
        assert (status, sorted(headers)) == (moto_status, sorted(moto_headers)), context.operation_model.name
        assert json.loads(body) == json.loads(moto_body), context.operation_model.name
        compared.append(context.operation_model.name)
        return status, headers, body

    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    ActionResult.execute_result = both
    try:
        for name, params in calls:
            try:
                getattr(dynamodb, name)(**params)
            except dynamodb.exceptions.ClientError:
                pass  # errors are moto's own either way
        arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        streams.list_streams()
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        assert streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]  # images, binary, times
    finally:
        ActionResult.execute_result = patched
    expected = {op for ops in serial_dynamodb._DIRECT_OPERATIONS.values() for op in ops} - {"TransactGetItems"}
    assert expected <= set(compared)


def test_attribute_values_parse_as_moto_s_parser_parses_them():
    """Part 4, requests: attribute values taken as they are parse to what moto's shape walk gives."""
    from moto.core.parse import JSONParser
    from moto.core.utils import get_service_model

    serial_dynamodb.install()
    value = {"S": "x", "N": "-1.5", "B": "AAE=", "BS": ["YQ==", "Yg=="], "SS": ["a"], "NS": ["1", "2"],
             "NULL": True, "BOOL": False, "Unknown": "dropped", "M": {"k": {"L": [{"S": "é"}, {"B": "/w=="},
                                                                                  {"M": {}}, {"NULL": True}]}}}
    bodies = {
        "PutItem": {"TableName": "t", "Item": {"pk": {"S": "a"}, "v": value, "gone": {"S": None, "N": "1"}},
                    "ExpressionAttributeValues": {":v": value}, "ConditionExpression": "attribute_not_exists(pk)"},
        "Query": {"TableName": "t", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": value},
                  "ExclusiveStartKey": {"pk": {"S": "a"}, "sk": {"B": "AAE="}}, "Limit": 3},
        "TransactWriteItems": {"TransactItems": [{"Update": {"TableName": "t", "Key": {"pk": value},
                                                             "UpdateExpression": "SET a = :a",
                                                             "ExpressionAttributeValues": {":a": value}}}]},
        "BatchWriteItem": {"RequestItems": {"t": [{"PutRequest": {"Item": {"pk": value}}},
                                                  {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]}},
        "BatchGetItem": {"RequestItems": {"t": {"Keys": [{"pk": value}], "ConsistentRead": True}}},
    }
    model = get_service_model("dynamodb")
    for operation, body in bodies.items():
        request = {"method": "POST", "values": {}, "headers": {}, "body": json.dumps(body).encode(),
                   "url_path": "/", "url_params": {}}
        direct = JSONParser(model.operation_model(operation), map_type=dict).parse(request)
        with serial_dynamodb.moto_parses_and_serialises():
            walked = JSONParser(model.operation_model(operation), map_type=dict).parse(request)
        assert direct == walked, operation
