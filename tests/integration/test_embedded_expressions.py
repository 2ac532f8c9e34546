"""The embedded DynamoDB's cheaper expression work (devstack/serial_dynamodb.py, part 6) gives
what moto's own gives: the node-by-node copy of an update expression's tree is the tree
`copy.deepcopy` makes by its generic path, and the remembered lexing of a condition expression
yields the tokens moto's lexer yields."""

from __future__ import annotations

import copy

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
