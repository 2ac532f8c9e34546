"""Make moto's DynamoDB answer one request at a time, and make its transactions cheap.

1. Real DynamoDB makes every request atomic (transactions are serialisable). moto's in-memory
   backend is not thread-safe: two transactions at once can interleave or crash while it
   snapshots the table. The local stack and the tests send truly concurrent requests (that is the
   point of the concurrency tests), so every DynamoDB and DynamoDB Streams request goes through
   one lock.

2. For its rollback, moto deep-copies the whole table, stream history included, once per item of
   every transaction: the cost of a write grows with the table, and a 10,000-item table exhausts
   memory within a hundred transactions. Under the lock nothing else can change the table during a
   transaction, so a snapshot of just the items it touches (and the stream's length) restores
   exactly the same state on failure.

3. moto answers every Query, base table and index alike, by walking and sorting every item of the
   table (``Table.query`` iterates ``all_items()``): a 9-item Query costs 100 ms at 4,000 items and
   grows with the table, where DynamoDB's cost follows the partition. Here a Query is handed only
   its partition's items -- the base table's own per-hash bucket, or a per-partition index of each
   GSI kept current on every write (put, update, delete, transactions and batches, which moto runs
   as those, and their rollback) -- and moto's own code does the rest (key conditions, order,
   paging, filters, projections), so the answers are moto's (tests/integration/test_query_index.py
   runs the same queries against both).

4. moto 5.2 writes every answer through a generic serializer that walks botocore's output shape
   for each attribute of each item (a third of the stack's CPU under load, more than the
   requests' own work). DynamoDB's answers are already the wire's JSON: the data operations' and
   the stream reads' answers are dumped as they are (binary values base64-encoded and times in
   epoch seconds, as the serializer does), and
   anything else, errors included, still goes through moto's serializer
   (tests/integration/test_query_index.py compares the two). Likewise a request's attribute
   values are taken from its JSON as they are (binary ones decoded) instead of walked member by
   member through their shape.

5. moto's server remembers each handler's methods and the host-to-backend match.

6. Expression work moto repeats on every write is made cheaper: its update-expression validator's
   deep copy of the parsed tree copies node by node (same result, without the generic
   reduce/reconstruct per object), update expressions are parsed and condition expressions lexed
   once per text (tests/integration/test_embedded_expressions.py compares all three with moto's
   own, and checks that writes leave the remembered trees as parsed).

7. (The local stack's server only) shard iterators are dropped once used.

8. (The local stack's server only) DynamoDB requests go straight to moto's handler instead of
   through its Flask application, on a kept connection (tests/integration/test_lean_dynamodb.py
   compares every answer with moto's application's).

9. moto's update-validation passes walk each tree with their processing table built once per pass
   (tests/integration/test_embedded_expressions.py compares them with moto's own walk).

10. Condition (and filter) expressions are parsed once per text, names and scalar values
   (tests/integration/test_embedded_expressions.py compares the answers with moto's parse).

11. (The local stack's server only) what survives a full garbage collection is frozen, so the next
   one does not rescan the whole table with the GIL held.

12. moto no longer keeps every model object it ever made (every item, every copy of one a Query,
   Scan or transaction made, every stream record, every queue message): the stack's server stops
   growing with the requests it answers (tests/integration/test_untracked_models.py).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import functools
import json
import threading
from types import SimpleNamespace
from collections.abc import Iterator
from typing import Any

_lock = threading.RLock()
_installed = False


def install() -> None:
    """Idempotent; call before moto serves any request (server or in-process)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action

        @functools.wraps(original)
        def call_action(self: Any, _original: Any = original) -> Any:
            with _lock:
                return _original(self)

        handler.call_action = call_action  # type: ignore[method-assign]
    _cheap_transaction_rollback()
    _partition_queries()
    _direct_json_answers()
    _direct_attribute_values()
    _remembered_dispatch()
    _fast_expression_copies()
    _fast_update_traversals()
    _remembered_conditions()
    _untracked_models()
    _installed = True


def lock() -> threading.RLock:
    """The lock every DynamoDB request holds (to read moto's state consistently in-process)."""
    return _lock


def remove_guard(attribute: str) -> None:
    """A deliberately broken DynamoDB, for the self-test of the load run's checks only
    (``DEVSTACK_UNGUARDED``): transactions lose every condition that names ``attribute`` (the
    account's ``version``: concurrent changes to one member then overwrite each other)."""
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items

    def unguarded(self: Any, transact_items: list[dict[str, Any]]) -> None:
        for entry in transact_items:
            (_, op), = entry.items()
            if attribute in (op.get("ExpressionAttributeNames") or {}).values():
                op.pop("ConditionExpression", None)
        original(self, transact_items)

    models.DynamoDBBackend.transact_write_items = unguarded  # type: ignore[method-assign]


def _cheap_transaction_rollback() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    # moto's own snapshot becomes the live table (no copy); we snapshot the touched items instead.
    models.copy = SimpleNamespace(  # type: ignore[attr-defined]
        deepcopy=lambda value, *a, **k: value if isinstance(value, Table) else copy.deepcopy(value, *a, **k),
        copy=copy.copy,
    )
    original = models.DynamoDBBackend.transact_write_items

    def touched(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
        found = []
        for entry in transact_items:
            (_, op), = entry.items()
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or {name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr)
                                    if name and name in op.get("Item", {})}
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            found.append((table, hash_value, range_value))
        return found

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        items = touched(self, transact_items)
        saved = [(table, h, r, copy.deepcopy(table.get_item(h, r))) for table, h, r in items]
        streams = {id(t): (t, len(t.stream_shard.items)) for t, _, _ in items if t.stream_shard is not None}
        try:
            original(self, transact_items)
        except Exception:
            for table, h, r, before in reversed(saved):
                _restore(table, h, r, before)
            for table, length in streams.values():
                del table.stream_shard.items[length:]
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _restore(table: Any, hash_value: Any, range_value: Any, before: Any) -> None:
    if table.range_key_attr:
        bucket = table.items[hash_value]
        if before is None:
            bucket.pop(range_value, None)
            if not bucket:
                table.items.pop(hash_value, None)
        else:
            bucket[range_value] = before
    elif before is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = before


# --- 3. Queries that follow the partition ---------------------------------------------------------

_INDEX_ATTRIBUTE = "_devstack_partitions"  # on moto's Table: GSI name -> _GsiPartitions
_query_candidates = threading.local()  # the items one Query may see, while it runs
_partitioned = True  # False: moto walks the whole table, as unpatched (tests compare the two)


@contextlib.contextmanager
def moto_walks_the_table() -> Iterator[None]:
    """Within the block Queries are answered by moto's own walk of the table, as if unpatched
    (writes still keep the partitions current). For tests that compare the two."""
    global _partitioned
    with _lock:
        _partitioned = False
    try:
        yield
    finally:
        with _lock:
            _partitioned = True


class _GsiPartitions:
    """One GSI's items grouped by their index hash key: key -> {primary key: None} (ordered set),
    and the reverse map to move an item when its index key changes."""

    def __init__(self, hash_attributes: list[str]) -> None:
        self.hash_attributes = hash_attributes
        self.members: dict[tuple[Any, ...], dict[tuple[Any, Any], None]] = {}
        self.where: dict[tuple[Any, Any], tuple[Any, ...]] = {}

    def place(self, primary: tuple[Any, Any], item: Any) -> None:
        old = self.where.pop(primary, None)
        if old is not None:
            bucket = self.members[old]
            bucket.pop(primary, None)
            if not bucket:
                del self.members[old]
        key = None if item is None else _index_key(item.attrs, self.hash_attributes)
        if key is not None:
            self.members.setdefault(key, {})[primary] = None
            self.where[primary] = key


def _index_key(attrs: dict[str, Any], names: list[str]) -> tuple[Any, ...] | None:
    """The item's index hash key, or None when it is not in the index. Only string and binary
    keys are indexed: number equality in moto does not follow the hash of the value's text."""
    values = tuple(attrs.get(name) for name in names)
    if any(value is None or value.type not in ("S", "B") for value in values):
        return None
    return values


def _partitions(table: Any) -> dict[str, _GsiPartitions]:
    """The table's GSI partitions, built on first use by one walk of the table."""
    built = table.__dict__.get(_INDEX_ATTRIBUTE)
    if built is None:
        built = {}
        for index in table.global_indexes or []:
            names = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
            partitions = built[index.name] = _GsiPartitions(names)
            for item in _items_of(table):
                partitions.place((item.hash_key, item.range_key), item)
        table.__dict__[_INDEX_ATTRIBUTE] = built
    return built


def _items_of(table: Any) -> list[Any]:
    if table.range_key_attr:
        return [item for bucket in list(table.items.values()) for item in bucket.values()]
    return list(table.items.values())


def _current(table: Any, hash_value: Any, range_value: Any) -> Any:
    # Never through table.get_item or table.items[...]: the defaultdict would grow empty buckets.
    bucket = table.items.get(hash_value)
    if bucket is None:
        return None
    return bucket.get(range_value) if table.range_key_attr else bucket


def _forget(table: Any) -> None:
    table.__dict__.pop(_INDEX_ATTRIBUTE, None)


def _reindex(backend: Any, table_name: Any, keys: list[tuple[Any, Any]]) -> None:
    """Move the items at ``keys`` to where they now belong in every GSI (or drop the table's
    partitions if the keys cannot be read: they are rebuilt on the next index Query)."""
    table = backend.tables.get(table_name) if isinstance(table_name, str) else None
    if table is None or table.__dict__.get(_INDEX_ATTRIBUTE) is None:
        return
    for partitions in table.__dict__[_INDEX_ATTRIBUTE].values():
        for hash_value, range_value in keys:
            partitions.place((hash_value, range_value), _current(table, hash_value, range_value))


def _primary(table: Any, attrs: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _after_write(backend: Any, table_name: Any, key_of: Any) -> None:
    table = backend.tables.get(table_name) if isinstance(table_name, str) else None
    if table is None or table.__dict__.get(_INDEX_ATTRIBUTE) is None:
        return
    try:
        keys = [_primary(table, key_of(table))]
    except Exception:  # a malformed request moto refused: whatever it did, start afresh
        _forget(table)
        return
    _reindex(backend, table_name, keys)


def _partition_queries() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    backend_class = models.DynamoDBBackend

    def wrap(name: str, key_of: Any) -> None:
        original = getattr(backend_class, name)

        @functools.wraps(original)
        def write(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, table_name, key, *args, **kwargs)
            finally:
                _after_write(self, table_name, lambda table: key_of(table, key))

        setattr(backend_class, name, write)

    # Batches, transactions and PartiQL's writes go through these three.
    wrap("put_item", lambda table, item: item)
    wrap("delete_item", lambda table, key: key)
    wrap("update_item", lambda table, key: key)

    original_transact = backend_class.transact_write_items

    @functools.wraps(original_transact)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            original_transact(self, transact_items)
        finally:  # rolled back or not, every item it touched is where it now is
            for entry in transact_items:
                (_, op), = entry.items()
                _after_write(self, op.get("TableName"), lambda table, op=op: op.get("Key") or op["Item"])

    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]

    # Anything that changes indexes or items wholesale: forget, rebuild on the next index Query.
    for name in ("update_table", "update_table_global_indexes", "execute_statement", "execute_transaction",
                 "batch_execute_statement"):
        original = getattr(backend_class, name)

        def forgetting(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            try:
                return _original(self, *args, **kwargs)
            finally:
                for table in self.tables.values():
                    _forget(table)

        setattr(backend_class, name, functools.wraps(original)(forgetting))

    original_query = Table.query
    original_all_items = Table.all_items

    @functools.wraps(original_query)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        candidates = (_partition_of(self, hash_key, index_name, kwargs.get("hash_key_conditions"))
                      if _partitioned else None)
        if candidates is None:
            return original_query(self, hash_key, *args, **kwargs)
        # moto sorts all_items() by primary key before its own work; so do we, on the partition.
        candidates.sort(key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
        _query_candidates.value = (self, candidates)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _query_candidates.value = None

    def all_items(self: Any) -> Any:
        pending = getattr(_query_candidates, "value", None)
        if pending is not None and pending[0] is self:
            return list(pending[1])
        return original_all_items(self)

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


def _partition_of(table: Any, hash_key: Any, index_name: str | None, hash_conditions: Any) -> list[Any] | None:
    """Every item that may match the Query's hash key (a superset moto then filters), or None to
    let moto walk the table (a shape this does not index: moto answers, errors included)."""
    if not index_name:
        if hash_key is None:
            return None
        bucket = table.items.get(hash_key)
        if bucket is None:
            return []
        return list(bucket.values()) if table.range_key_attr else [bucket]
    index = next((i for i in table.indexes or [] if i.name == index_name), None)
    if index is not None:  # a local index shares the table's partition
        if not hash_conditions or hash_conditions[0][0] != table.hash_key_attr:
            return None
        return _partition_of(table, hash_conditions[0][1], None, None)
    partitions = _partitions(table).get(index_name)
    if partitions is None or not hash_conditions:
        return None
    wanted = dict(hash_conditions)
    if set(wanted) != set(partitions.hash_attributes):
        return None
    key = _index_key(wanted, partitions.hash_attributes)
    if key is None:
        return None
    found = (_current(table, h, r) for h, r in partitions.members.get(key, {}))
    return [item for item in found if item is not None]


# --- 4. Answers written as the JSON they already are ----------------------------------------------

_DIRECT_OPERATIONS = {
    "dynamodb": frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem",
                           "TransactWriteItems", "TransactGetItems", "BatchWriteItem"}),
    # The stream pump polls these several times a second.
    "dynamodbstreams": frozenset({"GetRecords", "GetShardIterator", "DescribeStream", "ListStreams"}),
}
_direct = True  # False: every answer through moto's serializer (tests compare the two)


@contextlib.contextmanager
def moto_parses_and_serialises() -> Iterator[None]:
    """Within the block every request and answer goes through moto's own parser and serializer.
    For tests."""
    global _direct
    with _lock:
        _direct = False
    try:
        yield
    finally:
        with _lock:
            _direct = True


def _base64(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)  # a datetime, say: moto's serializer knows its format


def _shaped(value: Any, shape: Any) -> Any:
    """``value`` with only what the output shape has (moto's answers carry a few extra keys, which
    its serializer leaves out). Attribute values are the wire's JSON already: not walked."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        if shape.name == "AttributeValue":
            return value
        members = shape.members
        return {k: _shaped(v, members[k]) for k, v in value.items() if k in members and v is not None}
    if kind == "list":
        return [_shaped(v, shape.member) for v in value]
    if kind == "map":
        return {k: _shaped(v, shape.value) for k, v in value.items()}
    if kind == "timestamp" and isinstance(value, datetime.datetime):
        from moto.core.serialize import TimestampSerializer

        return TimestampSerializer._timestamp_unixtimestamp(value)  # the JSON protocols' format
    return value


def _direct_json_answers() -> None:
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    original = ActionResult.execute_result

    @functools.wraps(original)
    def execute_result(self: Any, context: Any) -> Any:
        if (not _direct or type(self) not in (ActionResult, DynamoResult)
                or context.operation_model.name not in _DIRECT_OPERATIONS.get(context.service_model.service_name, ())
                or not isinstance(self.result, dict)):
            return original(self, context)
        try:
            body = json.dumps(_shaped(self.result, context.operation_model.output_shape), default=_base64)
        except TypeError:
            return original(self, context)
        # Status and headers (content type, request id, date) as moto makes them for an answer.
        status, headers = _answer_head(original, context)
        return status, headers, body

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]


_heads: dict[tuple[str, str, str], tuple[Any, dict[str, Any]] | None] = {}
_remember_heads = True  # False: made for every answer (bench/embedded_tx.py compares the two)


def _answer_head(original: Any, context: Any) -> tuple[Any, dict[str, Any]]:
    """moto's status and headers for an answer of this operation: they depend on the operation and
    the serializer alone (moto adds the request id and date later), so they are made once and
    handed out as copies -- unless two makings differ, then they are made every time."""
    from moto.core.responses import ActionResult

    key = (context.service_model.service_name, context.operation_model.name, context.serializer_class.__name__)
    known = _heads.get(key, False) if _remember_heads else None
    if known is False:
        first = original(ActionResult({}), context)[:2]
        second = original(ActionResult({}), context)[:2]
        known = _heads[key] = first if first == second else None
    if known is None:
        status, headers, _ = original(ActionResult({}), context)
        return status, headers
    return known[0], dict(known[1])


_ATTRIBUTE_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})
_AS_IS = frozenset({"S", "N", "BOOL", "NULL", "SS", "NS"})


def _direct_attribute_values() -> None:
    """Requests' AttributeValues parsed as moto's JSON parser does, without walking their shape:
    ``{"S": "x"}`` stays as it is, binary values are decoded, unknown and null members dropped."""
    from moto.core.parse import BaseJSONParser

    original = BaseJSONParser._parse_structure

    @functools.wraps(original)
    def parse_structure(self: Any, shape: Any, value: Any) -> Any:
        if (not _direct or shape.name != "AttributeValue" or not isinstance(value, dict)
                or self.operation_model.service_model.service_name not in _ATTRIBUTE_SERVICES):
            return original(self, shape, value)
        return _attribute_value(self, shape, value)

    BaseJSONParser._parse_structure = parse_structure  # type: ignore[method-assign]


def _attribute_value(parser: Any, shape: Any, value: Any) -> Any:
    if not isinstance(value, dict):  # not an attribute value at all: moto says what it makes of it
        return parser._parse_shape(shape, value)
    parsed: dict[str, Any] = {}
    for kind, inner in value.items():
        if inner is None:
            continue
        if kind in _AS_IS:
            parsed[kind] = inner
        elif kind == "B":
            parsed[kind] = parser._blob_parser(inner)
        elif kind == "BS":
            parsed[kind] = [parser._blob_parser(v) for v in inner]
        elif kind == "M":
            parsed[kind] = {k: _attribute_value(parser, shape, v) for k, v in inner.items()}
        elif kind == "L":
            parsed[kind] = [_attribute_value(parser, shape, v) for v in inner]
    return parsed


# --- 5. What moto's server looks up on every request, remembered ----------------------------------

def _remembered_dispatch() -> None:
    from moto.core import responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)

    original = DomainDispatcherApplication.get_backend_for_host
    found: dict[str, Any] = {}

    @functools.wraps(original)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return original(self, host)
        backend = found.get(host)
        if backend is None:
            backend = original(self, host)
            if backend is not None and len(found) < 1000:  # only a few hosts ever ask
                found[host] = backend
        return backend

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


# --- 6. Expression work moto repeats on every write, made cheaper ---------------------------------
# Profiled under the load run's `ninety` profile (py-spy --gil on the stack's process): 13 % of the
# GIL went to `copy.deepcopy` of the update expression's parsed tree (moto's Validator copies it
# before validating, through the generic reduce/reconstruct path, ~1.6 ms for an account update),
# 7 % to lexing condition expressions (a transaction's item is lexed twice: once by
# `transact_write_items`, once by the put/update/delete it then runs), and after the first of these
# 8 % to parsing update expressions (twice per transaction item as well).

_ATOMIC = (str, int, bool, float, type(None))


def _fast_expression_copies() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.ast_nodes import Node

    def copy_value(value: Any, memo: dict[int, Any]) -> Any:
        kind = type(value)
        if kind in _ATOMIC:
            return value
        done = memo.get(id(value))
        if done is not None:
            return done
        if isinstance(value, Node):
            return node_deepcopy(value, memo)
        if kind is list:
            copied: list[Any] = []
            memo[id(value)] = copied
            copied.extend(copy_value(v, memo) for v in value)
            return copied
        return copy.deepcopy(value, memo)

    def node_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        """What `copy.deepcopy` makes of a node (same classes, same sharing through `memo`,
        parents included), without its reduce/reconstruct round trip per object."""
        cls = self.__class__
        new = cls.__new__(cls)
        memo[id(self)] = new
        state = new.__dict__
        for name, value in self.__dict__.items():
            state[name] = copy_value(value, memo)
        return new

    Node.__deepcopy__ = node_deepcopy  # type: ignore[attr-defined]

    # Lexing depends on the expression's text alone; the tokens are remembered as plain tuples
    # and handed out as fresh nodes (later passes build new nodes, never reuse these lists).
    original_lex = ConditionExpressionParser._lex_condition_expression

    @functools.lru_cache(maxsize=4096)
    def lexed(expression: str) -> tuple[tuple[Any, Any, Any, Any], ...]:
        parser = ConditionExpressionParser(expression, {}, {})
        return tuple((n.nonterminal, n.kind, n.text, n.value) for n in original_lex(parser))

    def lex_condition_expression(self: Any) -> Any:
        from collections import deque

        node = self.Node
        return deque(node(nonterminal, kind, text, value, []) for nonterminal, kind, text, value
                     in lexed(self.condition_expression))

    ConditionExpressionParser._lex_condition_expression = lex_condition_expression  # type: ignore[method-assign]

    # An update expression is parsed twice per write (the handler's check of the names it uses,
    # then update_item) into a tree that depends on its text alone; nothing changes that tree
    # (the validator works on its own copy, above), so one parse per text serves every write.
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    original_make = UpdateExpressionParser.make.__func__  # type: ignore[attr-defined]
    parsed = functools.lru_cache(maxsize=4096)(lambda text: original_make(UpdateExpressionParser, text))

    def make(cls: Any, expression: str) -> Any:
        return parsed(expression) if cls is UpdateExpressionParser else original_make(cls, expression)

    UpdateExpressionParser.make = classmethod(make)  # type: ignore[method-assign,assignment]
    UpdateExpressionParser._moto_make = classmethod(original_make)  # type: ignore[attr-defined]
    ConditionExpressionParser._moto_lex = original_lex  # type: ignore[attr-defined]  # the tests compare the two


# --- 7. Shard iterators forgotten once used (the local stack's server only) -----------------------

def forget_used_shard_iterators() -> None:
    """moto keeps every shard iterator it ever handed out (about 1.7 KB each; at five polls a
    second some 30 MB an hour for a stack left running all day). The stream pump never reuses one
    (each answer hands it the next), so the local stack's server drops an iterator once a
    GetRecords has used it. The pump did this itself while it ran in the server's process; it now
    runs in its own (devstack/triggers.py). Not part of `install()`: tests that read a stream
    twice from one iterator keep moto's behaviour."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original = DynamoDBStreamsBackend.get_records
    if getattr(original, "_forgets", False):
        return

    def get_records(self: Any, iterator_arn: str, limit: int) -> Any:
        answer = original(self, iterator_arn, limit)
        self.shard_iterators.pop(iterator_arn, None)
        return answer

    get_records._forgets = True  # type: ignore[attr-defined]
    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


# --- 8. DynamoDB requests served without moto's Flask routing (the local stack's server only) ----
# Profiled under the `ninety` profile, werkzeug/Flask dispatch was about 15 % of the stack process's
# interpreter: for every request moto's DomainDispatcherApplication takes its own lock to work out
# the backend from the signature, then Flask matches the URL against the backend's rules, pushes
# its contexts, runs the CORS hooks and wraps the answer. A DynamoDB request names its handler in
# its `X-Amz-Target` header; this path hands it straight to that handler, as moto's view
# (`moto.core.utils.convert_to_flask_response`) does: the same request class (moto's Request, as
# received by a WSGI server), the same call, the same answer object. Anything else -- another
# service, a cross-origin request (whose CORS headers Flask adds), a path other than "/", a request
# not signed for DynamoDB -- goes through moto's own application unchanged.
# tests/integration/test_lean_dynamodb.py sends the same requests to both and compares the answers.

_LEAN_TARGETS = {"DynamoDB_20120810": "dynamodb", "DynamoDBStreams_20120810": "dynamodbstreams"}


def lean_dynamodb_application(moto_app: Any) -> Any:
    """A WSGI application: DynamoDB and DynamoDB Streams requests straight to moto's handler,
    everything else to ``moto_app`` (moto's DomainDispatcherApplication)."""
    from flask import Response
    from moto.core.request import Request
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.moto_api import recorder
    from botocore.exceptions import ClientError

    handlers = {"dynamodb": DynamoHandler, "dynamodbstreams": DynamoDBStreamsHandler}
    from moto.settings import DISABLE_GLOBAL_CORS

    # Flask-CORS, with moto's settings (every origin, always sent), adds this one header to an
    # answer to a request without an Origin (one with an Origin takes moto's own path).
    cors = {} if DISABLE_GLOBAL_CORS else {"Access-Control-Allow-Origin": "*"}

    class ServerRequest(Request):
        from_wsgi_server = True  # as moto's BackendRequest: the server supplies the Date header

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        handler = _lean_handler(environ, handlers)
        if handler is None:
            return moto_app(environ, start_response)
        request = ServerRequest(environ)
        try:  # moto's convert_to_flask_response, step by step
            recorder._record_request(request)
            result = handler.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
        if len(result) == 3:
            status, headers, content = result
        else:
            status, headers, content = 200, {}, result
        response = Response(response=content, status=status, headers=headers)
        for name, value in cors.items():
            response.headers[name] = value
        return response(environ, start_response)

    return application


def _lean_handler(environ: dict[str, Any], handlers: dict[str, Any]) -> Any:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if not target or environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/":
        return None
    if "HTTP_ORIGIN" in environ or environ.get("QUERY_STRING"):
        return None
    service = _LEAN_TARGETS.get(target.partition(".")[0])
    if service is None:
        return None
    # moto finds the backend from the signature's credential scope (…/<region>/dynamodb/aws4_request),
    # then from the target: only requests it would send to this same handler take this path.
    try:
        scope = environ["HTTP_AUTHORIZATION"].split(",")[0].split()[1].split("/")
    except (KeyError, IndexError):
        return None
    if len(scope) != 5 or scope[3].lower() != "dynamodb":
        return None
    return handlers[service]


def serve_lean(server: Any) -> None:
    """Put the lean path in front of a started ThreadedMotoServer's application, and let its
    DynamoDB requests keep their connection (below)."""
    wsgi_server = server._server
    if wsgi_server is None:
        raise RuntimeError("start the server first")
    wsgi_server.app = lean_dynamodb_application(wsgi_server.app)
    wsgi_server.RequestHandlerClass = _keep_alive_handler(wsgi_server.RequestHandlerClass)


# werkzeug's development server closes every connection after one answer (it cannot tell where a
# request's body ends, so it reads whatever follows and throws it away), and its threaded server
# starts a thread per connection: every DynamoDB call of the API paid a new TCP connection, a new
# server thread and a 10 ms wait for more input, and botocore in `chalice local` set up a new
# connection for each. A DynamoDB request that takes the lean path always says how long its body
# is (botocore sends Content-Length): it is read exactly, answered with its length in one write,
# and the connection stays open for the client's next request (HTTP/1.1 keep-alive), unless the
# client asked to close it. Everything else is served by werkzeug as before, connection closed.


def _keep_alive_handler(base: type) -> type:
    import io

    from werkzeug.exceptions import InternalServerError

    class KeepAliveHandler(base):  # type: ignore[misc,valid-type]
        def run_wsgi(self) -> None:
            headers = self.headers
            path, _, query = self.path.partition("?")
            length = headers.get("Content-Length")
            probe = {"REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
                     "HTTP_X_AMZ_TARGET": headers.get("X-Amz-Target"),
                     "HTTP_AUTHORIZATION": headers.get("Authorization")}
            if headers.get("Origin") is not None:
                probe["HTTP_ORIGIN"] = headers["Origin"]
            if (length is None or not length.isdigit() or headers.get("Transfer-Encoding") or headers.get("Expect")
                    or _lean_handler(probe, _LEAN_SERVICES) is None):
                return super().run_wsgi()  # type: ignore[no-any-return]
            environ = self.make_environ()
            environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)))
            answer: dict[str, Any] = {}

            def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                answer["status"], answer["headers"] = status, response_headers
                return None

            try:
                body = b"".join(self.server.app(environ, start_response))
            except Exception as error:  # as werkzeug does: a 500, the traceback in the log, connection closed
                from werkzeug.debug.tbtools import DebugTraceback

                self.close_connection = True
                body = b"".join(InternalServerError()(environ, start_response))
                self.server.log("error", f"Error on request:\n{DebugTraceback(error).render_traceback_text()}")
            code, _, message = answer["status"].partition(" ")
            self.send_response(int(code), message)
            names = set()
            for name, value in answer["headers"]:
                self.send_header(name, value)
                names.add(name.lower())
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(body)))
            if self.close_connection:  # the client asked to close (or the answer failed)
                self.send_header("Connection", "close")
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(body)
            self.flush_headers()  # head and body in one write

    return KeepAliveHandler


_LEAN_SERVICES = {"dynamodb": "dynamodb", "dynamodbstreams": "dynamodbstreams"}


# --- 9. moto's update validation, each pass walked once without rebuilding its table per node -----
# Under the `ninety` profile moto's `Validator.validate` was the largest item left (about 23 % of the
# stack process): every update expression is walked by ten passes (DepthFirstTraverser), and for
# every node each pass builds its `_processing_map()` dict twice (once for the node types it
# handles, once to find the function). Those maps are literals: node class -> a method of the pass.
# Here each pass builds its map once per walk and visits the nodes in the same order, with the same
# hooks (`pre_processing_of_child`), the same functions and the same replacement of each processed
# node in its parent. A pass that overrides how it walks, which nodes it processes or how falls
# back to moto's walk. tests/integration/test_embedded_expressions.py runs every pass both ways over
# many expressions and items and compares the trees, results and errors.

_moto_traverse: Any = None


def _fast_update_traversals() -> None:
    global _moto_traverse
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node

    base = DepthFirstTraverser
    original = base.traverse
    _moto_traverse = original

    def traverse(self: Any, node: Any) -> Any:
        cls = type(self)
        if (cls.traverse_node_recursively is not base.traverse_node_recursively
                or cls.nodes_to_be_processed is not base.nodes_to_be_processed
                or cls.process is not base.process or not _fast_traversal):
            return original(self, node)
        processors = tuple(self._processing_map().items())
        kinds = tuple(kind for kind, _ in processors)
        pre = self.pre_processing_of_child if cls.pre_processing_of_child is not base.pre_processing_of_child else None

        def visit(node: Any, child_id: int) -> Any:
            if isinstance(node, Node):
                parent_node = node.parent
                children = node.children
                if children is not None:
                    for i, child_node in enumerate(children):
                        if pre is not None:
                            pre(node, i)
                        visit(child_node, i)
                if isinstance(node, kinds):
                    for kind, processor in processors:  # the first that matches, as `process` picks it
                        if isinstance(node, kind):
                            node = processor(node)
                            break
                    node.parent = parent_node
                    if parent_node:
                        parent_node.children[child_id] = node
            return node

        return visit(node, -1)

    base.traverse = traverse  # type: ignore[method-assign]


_fast_traversal = True  # False: moto's own walk (tests compare the two)


@contextlib.contextmanager
def moto_walks_update_expressions() -> Iterator[None]:
    """Within the block moto's own DepthFirstTraverser walks every pass. For tests."""
    global _fast_traversal
    with _lock:
        _fast_traversal = False
    try:
        yield
    finally:
        with _lock:
            _fast_traversal = True


# --- 10. Condition expressions parsed once per text, names and values ----------------------------
# After parts 8 and 9, parsing condition expressions was about 9 % of the stack process under the
# `ninety` profile: a transaction's put or update parses its condition three times (the handler's
# check of the names it uses, moto's `transact_write_items`, then the put/update it runs), a Query
# its filter twice, and most conditions repeat exactly (`attribute_not_exists(pk)`). The parser's
# `parse` is remembered, with what it leaves on the parser (the names and values it found). The parsed tree (comparisons.Op/Func)
# depends on the expression, its names and its values alone, and evaluating it changes nothing in
# it (only constructors assign). Values are remembered only when every one is a scalar (S, N, B,
# BOOL, NULL: the tree then holds only immutable strings, never a list or map a later write could
# change in place); otherwise, and for anything that fails to parse, moto parses as before.

_CONDITION_SCALARS = frozenset({"S", "N", "B", "BOOL", "NULL"})
_remember_conditions = True  # False: moto parses every time (tests compare the two)


def _condition_key(expression: Any, names: Any, values: Any) -> tuple[Any, ...] | None:
    if not isinstance(expression, str):
        return None
    if names is not None and (not isinstance(names, dict)
                              or not all(isinstance(v, str) for v in names.values())):
        return None
    frozen_values: Any = None
    if values is not None:
        if not isinstance(values, dict):
            return None
        entries = []
        for name, value in values.items():
            if not isinstance(value, dict) or len(value) != 1:
                return None
            (kind, inner), = value.items()
            if kind not in _CONDITION_SCALARS or not isinstance(inner, (str, bytes, bool)):
                return None
            entries.append((name, kind, inner))
        frozen_values = tuple(entries)
    frozen_names = None if names is None else tuple(names.items())
    return expression, frozen_names, frozen_values


def _remembered_conditions() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    original = ConditionExpressionParser.parse

    def parse_anew(key: tuple[Any, ...]) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
        expression, names, values = key
        parser = ConditionExpressionParser(expression, None if names is None else dict(names),
                                           None if values is None else {n: {k: v} for n, k, v in values})
        tree = original(parser)
        return tree, tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)

    parsed = functools.lru_cache(maxsize=4096)(parse_anew)

    @functools.wraps(original)
    def parse(self: Any) -> Any:
        key = (_condition_key(self.condition_expression, self.expression_attribute_names,
                              self.expression_attribute_values) if _remember_conditions else None)
        if key is None:
            return original(self)
        tree, names_found, values_found = parsed(key)
        # What a parse leaves on the parser besides its tree (the handlers check unused names with it).
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return tree

    ConditionExpressionParser.parse = parse  # type: ignore[method-assign]
    ConditionExpressionParser._moto_parse = original  # type: ignore[attr-defined]


@contextlib.contextmanager
def moto_parses_conditions() -> Iterator[None]:
    """Within the block moto parses every condition and filter expression anew. For tests."""
    global _remember_conditions
    with _lock:
        _remember_conditions = False
    try:
        yield
    finally:
        with _lock:
            _remember_conditions = True


# --- 11. Full garbage collections that do not rescan the table (the local stack's server only) --
# The embedded DynamoDB keeps every item and stream record as Python objects: after the `ninety`
# profile's 90 s, some 400,000 of them. CPython's full (generation 2) collection runs each time the
# long-lived objects have grown by a quarter, scans them all with the GIL held, and so stopped
# every request for 70 ms, then 95, 120, 150, 185, 225 ms as the table grew (measured in-process
# with 3,000 accrual transactions): the card read's p99 (500 ms) against its p95 (160 ms). Here the
# survivors of each full collection are frozen (`gc.freeze`: moved to the permanent generation,
# which collections skip), so the next one scans only what was made since: 7 to 12 ms each in the
# same measurement. Reference counting still frees every frozen object that is dropped; only
# reference cycles among frozen objects that later become garbage would stay (moto's items and
# stream records hold none; at most a parsed expression tree in use by the request during which a
# collection ran: a few kilobytes per full collection).

_freezing: list[Any] = []


def freeze_after_full_collections() -> None:
    """From now on, freeze what survives each full collection (idempotent)."""
    import gc

    if _freezing:
        return

    def after(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()

    gc.callbacks.append(after)
    _freezing.append(after)


def stop_freezing() -> None:
    """Undo `freeze_after_full_collections` (frozen objects become collectable again). For tests."""
    import gc

    while _freezing:
        gc.callbacks.remove(_freezing.pop())
    gc.unfreeze()


# --- 12. moto's model objects not kept forever -----------------------------------------------------
# moto's `BaseModel.__new__` appends every instance of every model class to a class-level list
# (`instances_tracked`), emptied only by a reset, for its dashboard's "model data" view. DynamoDB
# items are models: each Query or Scan deep-copies the items it answers (`Table.query`:
# `copy.deepcopy(results)`), so every item an answer ever carried stayed in memory, as did every
# replaced item version, transaction snapshot, stream record and SQS message. Measured in-process:
# +6.6 KB per Query, 13 MB per 2,000 Queries of an 8-item partition, with no write; the soak's
# stack process grew 270 MB while its checks only read. Nothing of ours reads those lists (the
# dashboard is never used); S3's own reset closes its objects' files through them, so S3's models
# stay tracked.

_KEEP_TRACKING = frozenset({"s3"})


def _untracked_models() -> None:
    from moto.core.common_models import BaseModel

    original = BaseModel.__new__
    if getattr(original, "_untracked", False):
        return

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        if cls.__module__.split(".")[1] in _KEEP_TRACKING:
            return original(cls, *args, **kwargs)
        return super(BaseModel, cls).__new__(cls)  # what moto's does, without the list

    new._untracked = True  # type: ignore[attr-defined]
    BaseModel.__new__ = staticmethod(new)  # type: ignore[assignment,method-assign]
