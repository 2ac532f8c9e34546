"""The embedded DynamoDB's cheaper expression work (devstack/serial_dynamodb.py, part 6) gives
what moto's own gives: the node-by-node copy of an update expression's tree is the tree
`copy.deepcopy` makes by its generic path, and the remembered lexing of a condition expression
yields the tokens moto's lexer yields; and (part 9) moto's update-validation passes walked without
rebuilding their tables per node leave the same trees, items and errors as moto's own walk."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest

from devstack import serial_dynamodb

UPDATES = [
    "SET #0 = :0, #1 = :1, #2 = :2, #3 = :3, #4 = :4, #5 = :5, #6 = :6, #7 = :7 REMOVE #8, #9",
    "SET #a.#b[2] = if_not_exists(#c, :zero) + :one, #d = list_append(#d, :l) ADD #n :one DELETE #s :v",
    "REMOVE #x[1], #x[3] SET #y = :y",
    "ADD #counter :delta",
]
CONDITIONS = [
    "attribute_not_exists (#0)",
    "(#0 = :0) AND (#1 >= :1)",
    "attribute_not_exists (#0) OR (#1 = :0)",
    "#a.#b[1] BETWEEN :lo AND :hi OR NOT (size(#c) IN (:x, :y)) AND begins_with(#d, :p)",
    "attribute_exists(pk) AND contains(#tags, :t) AND attribute_type(#v, :type) AND #z <> :z",
]


@pytest.fixture(scope="module", autouse=True)
def installed():
    serial_dynamodb.install()


def _shape(node):
    from moto.dynamodb.parsing.ast_nodes import Node

    if isinstance(node, Node):
        return (type(node).__name__, type(node.parent).__name__,
                {k: _shape(v) for k, v in vars(node).items() if k != "parent"})
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return (type(node).__name__, node)


@pytest.mark.parametrize("expression", UPDATES)
def test_the_update_tree_copies_as_deepcopy_copies_it(expression):
    from moto.dynamodb.parsing.ast_nodes import Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    tree = UpdateExpressionParser.make(expression)
    fast = copy.deepcopy(tree)
    generic = Node.__deepcopy__
    try:
        del Node.__deepcopy__
        slow = copy.deepcopy(tree)
    finally:
        Node.__deepcopy__ = generic
    assert _shape(fast) == _shape(slow) == _shape(tree)

    def parents(node):  # every copied child points at its copied parent, as deepcopy's do
        for child in node.children or []:
            if isinstance(child, Node):
                assert child.parent is node
                parents(child)

    parents(fast)
    originals = {id(n) for n in _walk(tree)}
    assert not any(id(n) in originals for n in _walk(fast))


def _walk(node):
    from moto.dynamodb.parsing.ast_nodes import Node

    yield node
    for child in node.children or []:
        if isinstance(child, Node):
            yield from _walk(child)


@pytest.mark.parametrize("expression", CONDITIONS)
def test_remembered_lexing_yields_moto_tokens(expression):
    from moto.dynamodb.comparisons import ConditionExpressionParser

    parser = ConditionExpressionParser(expression, {}, {})
    for _ in range(2):  # the second is answered from memory
        assert list(parser._lex_condition_expression()) == list(ConditionExpressionParser._moto_lex(parser))


def test_a_condition_moto_cannot_lex_still_fails_the_same_way():
    from moto.dynamodb.comparisons import ConditionExpressionParser

    parser = ConditionExpressionParser("#a = :b ~ c", {}, {})
    with pytest.raises(ValueError, match="Cannot parse condition"):
        parser._lex_condition_expression()


@pytest.mark.parametrize("expression", UPDATES)
def test_remembered_update_trees_are_moto_trees(expression):
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    assert UpdateExpressionParser.make(expression) is UpdateExpressionParser.make(expression)
    assert _shape(UpdateExpressionParser.make(expression)) == _shape(UpdateExpressionParser._moto_make(expression))


def test_writes_leave_the_remembered_tree_as_parsed():
    """Updates of a new and of an existing item (moto validates the tree once or twice, on its
    copies), in and out of a transaction: the answers are right and the tree is untouched."""
    import boto3
    from moto import mock_aws
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    expression = "SET #n = if_not_exists(#n, :zero) + :one, #tags = list_append(if_not_exists(#tags, :empty), :t)"
    names = {"#n": "n", "#tags": "tags"}
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        before = _shape(UpdateExpressionParser.make(expression))
        for n in range(3):
            values = {":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"L": []}, ":t": {"L": [{"S": f"t{n}"}]}}
            dynamodb.update_item(TableName="t", Key={"pk": {"S": "a"}}, UpdateExpression=expression,
                                 ExpressionAttributeNames=names, ExpressionAttributeValues=values)
            dynamodb.transact_write_items(TransactItems=[{"Update": {
                "TableName": "t", "Key": {"pk": {"S": f"b{n}"}}, "UpdateExpression": expression,
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
                "ConditionExpression": "attribute_not_exists(pk)"}}])
            assert _shape(UpdateExpressionParser.make(expression)) == before
        item = dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]
        assert item["n"] == {"N": "3"} and item["tags"] == {"L": [{"S": "t0"}, {"S": "t1"}, {"S": "t2"}]}
        assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "b2"}})["Item"]["n"] == {"N": "1"}


# --- part 9: moto's update validation passes, walked without rebuilding their tables per node ---

# (update expression, names, values): each runs against two equal tables, once walked by moto's
# DepthFirstTraverser and once by part 9's; the answers (item after, or the error) must be equal.
_UPDATE_CASES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("SET #p = #p + :d, #v = :next ADD #n :one", {"#p": "points", "#v": "version", "#n": "count"},
     {":d": {"N": "5"}, ":next": {"N": "2"}, ":one": {"N": "1"}}),
    ("SET #p = #p - :d, #m.#k = :d", {"#p": "points", "#m": "months", "#k": "2026-11"}, {":d": {"N": "3"}}),
    ("SET #l = list_append(#l, :l), #f = if_not_exists(#f, :zero) + :one", {"#l": "list", "#f": "fresh"},
     {":l": {"L": [{"S": "x"}]}, ":zero": {"N": "0"}, ":one": {"N": "1"}}),
    ("SET #l = list_append(:l, #l) REMOVE #l[0], #gone", {"#l": "list", "#gone": "nickname"},
     {":l": {"L": [{"N": "1"}, {"N": "2"}]}}),
    ("SET #l[1] = :s, #m.#new = :m", {"#l": "list", "#m": "months", "#new": "nested"},
     {":s": {"S": "second"}, ":m": {"M": {"a": {"SS": ["x", "y"]}}}}),
    ("ADD #ss :ss, #p :big DELETE #tags :t", {"#ss": "set", "#p": "points", "#tags": "tags"},
     {":ss": {"SS": ["a", "b"]}, ":big": {"N": "12345678901234567890"}, ":t": {"SS": ["old"]}}),
    ("SET #a.#b.#c = :v", {"#a": "nope", "#b": "deeper", "#c": "deepest"}, {":v": {"N": "1"}}),  # no such path
    ("SET #p = #p + :s", {"#p": "points"}, {":s": {"S": "text"}}),  # a number plus a string
    ("ADD #p :s", {"#p": "nickname"}, {":s": {"N": "1"}}),  # a number added to a string
    ("SET #p = :v, #p = :w", {"#p": "points"}, {":v": {"N": "1"}, ":w": {"N": "2"}}),  # overlapping paths
    ("SET #m = :v REMOVE #m.#k", {"#m": "months", "#k": "2026-11"}, {":v": {"M": {}}}),  # overlapping
    ("SET pk = :v", {}, {":v": {"S": "other"}}),  # the key
    ("SET #g = :empty", {"#g": "g"}, {":empty": {"S": ""}}),  # an index key set to the empty string
    ("SET #g = :n", {"#g": "g"}, {":n": {"N": "1"}}),  # an index key of the wrong type
    ("SET #p = :missing", {"#p": "points"}, {}),  # a value not given
    ("SET #p = #unnamed", {"#p": "points"}, {}),  # a name not given
    ("REMOVE #l[5], #absent", {"#l": "list", "#absent": "absent"}, {}),
    ("SET #p = if_not_exists(#absent, :d) - #p", {"#p": "points", "#absent": "absent"}, {":d": {"N": "100"}}),
    ("SET #s = size(#l)", {"#s": "size", "#l": "list"}, {}),  # not an update function
    ("SET #p = :d ADD #p :d", {"#p": "points"}, {":d": {"N": "1"}}),  # two actions on one path
    ("DELETE #ss :n", {"#ss": "set"}, {":n": {"NS": ["1"]}}),  # wrong set type
]


def _seed_item() -> dict[str, Any]:
    return {"pk": {"S": "M#1"}, "sk": {"S": "A#ACCOUNT"}, "points": {"N": "10"}, "version": {"N": "1"},
            "months": {"M": {"2026-11": {"N": "4"}}}, "list": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}]},
            "set": {"SS": ["z"]}, "tags": {"SS": ["old", "new"]}, "nickname": {"S": "n"}, "g": {"S": "G#1"}}


def _run_updates(client: Any, table: str) -> list[Any]:
    answers = []
    for expression, names, values in _UPDATE_CASES:
        kwargs: dict[str, Any] = {"TableName": table, "Key": {"pk": {"S": "M#1"}, "sk": {"S": "A#ACCOUNT"}},
                                  "UpdateExpression": expression, "ReturnValues": "ALL_NEW"}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            answers.append(("ok", client.update_item(**kwargs)["Attributes"]))
        except client.exceptions.ClientError as error:
            answers.append(("error", error.response["Error"]["Code"], error.response["Error"]["Message"]))
        # and the same in a transaction, next to a put that always succeeds
        transact = {k: v for k, v in kwargs.items() if k != "ReturnValues"}
        try:
            client.transact_write_items(TransactItems=[{"Update": transact}, {"Put": {
                "TableName": table, "Item": {"pk": {"S": "O#1"}, "sk": {"S": str(len(answers))}}}}])
            answers.append(("ok", client.get_item(TableName=table, Key=kwargs["Key"])["Item"]))
        except client.exceptions.ClientError as error:
            answers.append(("error", error.response["Error"]["Code"], error.response["Error"]["Message"],
                            error.response.get("CancellationReasons")))
    answers.append(client.scan(TableName=table)["Items"])
    return answers


def test_update_passes_walk_as_moto_walks_them():
    import boto3
    from moto import mock_aws

    from chalicelib.store import schema

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for table in ("walked-by-moto", "walked-here"):
            kwargs = schema.create_table_kwargs(table)
            kwargs["AttributeDefinitions"] = kwargs["AttributeDefinitions"] + [
                {"AttributeName": "g", "AttributeType": "S"}]
            kwargs["GlobalSecondaryIndexes"] = kwargs.get("GlobalSecondaryIndexes", []) + [{
                "IndexName": "g-index", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"}}]
            client.create_table(**kwargs)
            client.put_item(TableName=table, Item=_seed_item())
        with serial_dynamodb.moto_walks_update_expressions():
            expected = _run_updates(client, "walked-by-moto")
        got = _run_updates(client, "walked-here")
    assert got == expected
    outcomes = [answer[0] for answer in expected[:-1]]
    assert outcomes.count("ok") >= 10 and outcomes.count("error") >= 10  # both kinds were exercised


@pytest.mark.parametrize("expression", UPDATES + [case[0] for case in _UPDATE_CASES])
def test_each_pass_leaves_the_tree_moto_leaves(expression):
    """Pass by pass on the validator's own tree: the same tree after each, or the same error."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    names = {f"#{k}": k for k in ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "n", "s",
                                  "x", "y", "counter")}
    for _, case_names, _ in _UPDATE_CASES:
        names.update(case_names)
    values = {":0": {"N": "1"}, ":1": {"S": "x"}, ":2": {"N": "2"}, ":3": {"N": "3"}, ":4": {"S": "y"},
              ":5": {"N": "5"}, ":6": {"N": "6"}, ":7": {"N": "7"}, ":zero": {"N": "0"}, ":one": {"N": "1"},
              ":l": {"L": [{"S": "x"}]}, ":v": {"SS": ["v"]}, ":y": {"N": "9"}, ":delta": {"N": "2"}}
    for _, _, case_values in _UPDATE_CASES:
        values.update(case_values)
    table = SimpleNamespace(table_key_attrs=["pk", "sk"], attr=[{"AttributeName": "pk", "AttributeType": "S"},
                                                                {"AttributeName": "sk", "AttributeType": "S"}],
                            attribute_keys=["pk", "sk"])
    seed = _seed_item()
    seed.update({"a": {"M": {"b": {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}]}}}, "c": {"N": "1"},
                 "d": {"L": []}, "s": {"SS": ["v", "w"]}, "x": {"L": [{"N": "1"}] * 4}})

    def passes() -> list[Any]:
        item = Item(seed["pk"], seed["sk"], seed)
        try:
            tree = UpdateExpressionParser.make(expression)
        except Exception as error:  # not an update expression at all: no pass runs
            return [(type(error).__name__, str(error))]
        validator = UpdateExpressionValidator(tree, names, values, item, table)
        trees: list[Any] = []
        node = validator.node_to_validate
        for processor in validator.processors:
            try:
                node = processor.traverse(node)
            except Exception as error:  # moto's own validation errors
                trees.append((type(error).__name__, str(error)))
                break
            trees.append(_shape(node))
        return trees

    with serial_dynamodb.moto_walks_update_expressions():
        expected = passes()
    assert passes() == expected


# --- part 10: condition expressions parsed once per text, names and scalar values ---------------

_CONDITION_CASES: list[tuple[str, dict[str, str] | None, dict[str, Any] | None]] = [
    ("attribute_not_exists(pk)", None, None),
    ("attribute_exists(pk)", None, None),
    ("attribute_not_exists(pk) OR #version = :v", {"#version": "version"}, {":v": {"N": "1"}}),
    ("attribute_not_exists(pk) OR #version = :v", {"#version": "version"}, {":v": {"N": "2"}}),
    ("#status = :held AND #points >= :p", {"#status": "status", "#points": "points"},
     {":held": {"S": "held"}, ":p": {"N": "5"}}),
    ("begins_with(#n, :p) OR contains(#tags, :t)", {"#n": "nickname", "#tags": "tags"},
     {":p": {"S": "n"}, ":t": {"S": "old"}}),
    ("#b = :b AND #flag = :yes AND attribute_type(#nothing, :null)", {"#b": "blob", "#flag": "flag",
                                                                       "#nothing": "nothing"},
     {":b": {"B": b"\x00\x01"}, ":yes": {"BOOL": True}, ":null": {"S": "NULL"}}),
    ("#points BETWEEN :lo AND :hi AND NOT (#status IN (:a, :b))", {"#points": "points", "#status": "status"},
     {":lo": {"N": "1"}, ":hi": {"N": "100"}, ":a": {"S": "x"}, ":b": {"S": "y"}}),
    ("contains(#tags, :set)", {"#tags": "tags"}, {":set": {"SS": ["old"]}}),  # not scalar: parsed anew
    ("size(#l) > :n", {"#l": "list"}, {":n": {"N": "2"}}),
    ("#missing = :v", None, {":v": {"N": "1"}}),  # a name not given
    ("#points = :missing", {"#points": "points"}, {}),  # a value not given
    ("#points = = :v", {"#points": "points"}, {":v": {"N": "1"}}),  # not an expression
]


def _condition_outcomes() -> list[Any]:
    from moto.dynamodb.models import table as table_module
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    seed = _seed_item()
    seed.update({"status": {"S": "held"}, "blob": {"B": b"\x00\x01"}, "flag": {"BOOL": True}})
    items = [None, Item(DynamoType(seed["pk"]), DynamoType(seed["sk"]), seed),
             Item(DynamoType({"S": "M#2"}), DynamoType({"S": "A"}), {"pk": {"S": "M#2"}, "sk": {"S": "A"},
                                                                     "version": {"N": "2"}, "points": {"N": "0"}})]
    outcomes = []
    for expression, names, values in _CONDITION_CASES * 2:  # the second round from memory
        try:
            condition = table_module.get_filter_expression(expression, names, values)
            outcomes.append([condition.expr(item) for item in items])
        except Exception as error:
            outcomes.append((type(error).__name__, str(error)))
    return outcomes


def test_remembered_conditions_answer_as_moto_parses_them():
    with serial_dynamodb.moto_parses_conditions():
        expected = _condition_outcomes()
    assert _condition_outcomes() == expected
    assert any(o == [True, False, True] or o == [False, True, False] for o in expected)
    assert sum(isinstance(o, tuple) for o in expected) >= 4  # errors too


def test_writes_under_remembered_conditions_answer_as_moto():
    import boto3
    from moto import mock_aws

    from chalicelib.store import schema

    def run(client: Any, table: str) -> list[Any]:
        answers = []
        key = {"pk": {"S": "M#1"}, "sk": {"S": "A#ACCOUNT"}}
        for version in (0, 1, 1, 2, 5, 3):
            expression = "attribute_not_exists(pk) OR #version = :v"
            try:
                client.transact_write_items(TransactItems=[
                    {"Update": {"TableName": table, "Key": key, "UpdateExpression": "SET #version = :next",
                                "ConditionExpression": expression, "ExpressionAttributeNames": {"#version": "version"},
                                "ExpressionAttributeValues": {":v": {"N": str(version)},
                                                              ":next": {"N": str(version + 1)}}}},
                    {"Put": {"TableName": table, "ConditionExpression": "attribute_not_exists(pk)",
                             "Item": {"pk": {"S": "M#1"}, "sk": {"S": f"L#{version}"}}}}])
                answers.append("ok")
            except client.exceptions.ClientError as error:
                answers.append((error.response["Error"]["Code"], error.response.get("CancellationReasons")))
            try:
                client.put_item(TableName=table, Item={"pk": {"S": "M#1"}, "sk": {"S": "ROW"}, "n": {"N": str(version)}},
                                ConditionExpression="attribute_not_exists(pk) OR #n < :n",
                                ExpressionAttributeNames={"#n": "n"}, ExpressionAttributeValues={":n": {"N": str(version)}})
                answers.append("ok")
            except client.exceptions.ClientError as error:
                answers.append(error.response["Error"]["Code"])
        answers.append(client.query(TableName=table, KeyConditionExpression="pk = :p",
                                    FilterExpression="attribute_exists(#n) OR begins_with(sk, :l)",
                                    ExpressionAttributeNames={"#n": "n"},
                                    ExpressionAttributeValues={":p": {"S": "M#1"}, ":l": {"S": "L#"}})["Items"])
        return answers

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for table in ("parsed-by-moto", "parsed-here"):
            client.create_table(**schema.create_table_kwargs(table))
        with serial_dynamodb.moto_parses_conditions():
            expected = run(client, "parsed-by-moto")
        got = run(client, "parsed-here")
    assert got == expected
    assert "ok" in expected and any(isinstance(a, tuple) for a in expected)


def test_a_remembered_parse_leaves_on_the_parser_what_moto_leaves():
    """The handlers check unused names and values with what a parse found (`expr_attr_*_found`)."""
    from moto.dynamodb.comparisons import ConditionExpressionParser

    def found(expression: str, names: Any, values: Any) -> Any:
        parser = ConditionExpressionParser(expression, names, values)
        try:
            parser.parse()
        except Exception as error:
            return type(error).__name__, str(error)
        return parser.expr_attr_names_found, parser.expr_attr_values_found

    for expression, names, values in _CONDITION_CASES:
        with serial_dynamodb.moto_parses_conditions():
            expected = found(expression, names, values)
        assert found(expression, names, values) == found(expression, names, values) == expected, expression
