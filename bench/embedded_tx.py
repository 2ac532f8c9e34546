"""CPU per accrual-shaped transaction in the embedded DynamoDB, with and without its cheaper
expression work (devstack/serial_dynamodb.py, part 6).

`python -m bench.embedded_tx` runs both variants, each in a fresh process (in-process moto, no
HTTP), and prints the CPU time (`time.process_time`, so other processes on the machine barely
move it) per 4-item transaction: the account update (8 SETs under a version condition), a lot
update (ADD), the ledger row and the order row (both `attribute_not_exists`). The boto3 client's
own work is included in both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

TRANSACTIONS = 400
MEMBERS = 20


def _create_table(client: Any) -> None:
    """The table both measurements use: pk/sk strings, a stream like the app's."""
    client.create_table(
        TableName="t", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})


def _measure(variant: str) -> float:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    from devstack import serial_dynamodb

    if variant == "moto":  # everything else of the embedded DynamoDB stays
        serial_dynamodb._fast_expression_copies = lambda: None
    if variant in ("moto", "part6"):
        serial_dynamodb._fast_update_traversals = lambda: None
    if variant in ("moto", "part6", "part9"):
        serial_dynamodb._remembered_conditions = lambda: None
    serial_dynamodb.install()
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(client)
        versions = dict.fromkeys(range(MEMBERS), 0)

        def accrue(n: int) -> None:
            member = n % MEMBERS
            version = versions[member]
            names = {f"#{k}": k for k in ("points", "held", "debt", "growth", "months", "version", "updated", "active")}
            values = {":p": {"N": str(n)}, ":z": {"N": "0"}, ":g": {"N": str(n)},
                      ":m": {"M": {"2026-11": {"N": str(n)}}}, ":next": {"N": str(version + 1)},
                      ":u": {"S": "2026-11-30T19:00:00Z"}, ":a": {"S": "2026-11-30"}, ":v": {"N": str(version)}}
            account = {"Update": {
                "TableName": "t", "Key": {"pk": {"S": f"M#{member}"}, "sk": {"S": "A#ACCOUNT"}},
                "UpdateExpression": "SET #points = :p, #held = :z, #debt = :z, #growth = :g, #months = :m, "
                                    "#version = :next, #updated = :u, #active = :a",
                "ConditionExpression": "attribute_not_exists(pk) OR #version = :v",
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}
            lot = {"Update": {
                "TableName": "t", "Key": {"pk": {"S": f"M#{member}"}, "sk": {"S": "A#LOT#2027-12-31"}},
                "UpdateExpression": "SET #k = :k ADD #r :one, #e :one",
                "ExpressionAttributeNames": {"#k": "kind", "#r": "remaining", "#e": "earned"},
                "ExpressionAttributeValues": {":k": {"S": "lot"}, ":one": {"N": "1"}}}}
            row = {"Put": {"TableName": "t", "ConditionExpression": "attribute_not_exists(pk)",
                           "Item": {"pk": {"S": f"M#{member}"}, "sk": {"S": f"L#{n}"}, "points": {"N": "1"}}}}
            order = {"Put": {"TableName": "t", "ConditionExpression": "attribute_not_exists(pk)",
                             "Item": {"pk": {"S": f"O#{n}"}, "sk": {"S": "ORDER"}, "amount": {"N": "100"}}}}
            client.transact_write_items(TransactItems=[account, lot, row, order])
            versions[member] = version + 1

        for n in range(MEMBERS):  # every account and lot exists before the clock starts
            accrue(n)
        started = time.process_time()
        for n in range(MEMBERS, MEMBERS + TRANSACTIONS):
            accrue(n)
        return (time.process_time() - started) / TRANSACTIONS * 1000


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:
        _serve(sys.argv[2], sys.argv[3])
        return 0
    if sys.argv[1:2] == ["--http"]:
        return http_main(sys.argv[2:] or list(HTTP_VARIANTS))
    if len(sys.argv) > 1:
        print(f"{_measure(sys.argv[1]):.2f}")
        return 0
    results = {}
    for variant in ("moto", "part6", "part9", "embedded") * 2:
        done = subprocess.run([sys.executable, "-m", "bench.embedded_tx", variant], capture_output=True, text=True,
                              check=True)
        results.setdefault(variant, []).append(float(done.stdout.strip()))
    for variant, label in (("moto", "moto's expression work"), ("part6", "parts 6 (copies, parse and lex once)"),
                           ("part9", "parts 6 and 9 (update passes walked without rebuilding their tables)"),
                           ("embedded", "parts 6, 9 and 10 (conditions parsed once per text and values)")):
        print(f"{label}: {min(results[variant]):.2f} ms CPU per 4-item transaction (best of 2, boto3 included)")
    return 0



# --- Over HTTP: the embedded DynamoDB's server process, CPU per request by operation ---------------
# `python -m bench.embedded_tx --http` starts the local stack's DynamoDB server (serial_dynamodb's
# install() and moto's ThreadedMotoServer, as devstack/runner.py does) in a child process for each
# variant, sends it the load's kinds of request with boto3 from this process, and reads the child's
# own CPU time (/proc/<pid>/stat: user + system) before and after each batch: the server's CPU per
# request, HTTP and routing included, the client's excluded. Variants:
#   flask  -- every request through moto's Flask application (DEVSTACK_FLASK_ROUTING=1);
#   lean   -- DynamoDB requests straight to moto's handler on a kept connection (part 8), moto's
#             own walk of the update passes;
#   lean+9 -- part 8 and the update passes' cheaper walk (part 9);
#   lean+9+heads -- also each operation's status and headers made once (part 4);
#   lean+9+heads+10 -- as the local stack now serves: also conditions parsed once (part 10).
# The figures move with the machine's load (a busy machine's CPU does less per second): compare
# variants of one run only, which interleaves them.

HTTP_REQUESTS = 300
HTTP_VARIANTS = ("flask", "lean", "lean+9", "lean+9+heads", "lean+9+heads+10")


def _serve(variant: str, port_file: str) -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    import logging

    from moto.server import ThreadedMotoServer

    from devstack import serial_dynamodb

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if "9" not in variant.split("+"):
        serial_dynamodb._fast_update_traversals = lambda: None
    if "heads" not in variant.split("+"):
        serial_dynamodb._remember_heads = False
    if "10" not in variant.split("+"):
        serial_dynamodb._remembered_conditions = lambda: None
    serial_dynamodb.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    if "flask" not in variant.split("+"):
        serial_dynamodb.serve_lean(server)
    with open(port_file, "w", encoding="utf-8") as out:
        out.write(str(server.get_host_and_port()[1]))
    threading_event = __import__("threading").Event()
    threading_event.wait()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _http_measure(variant: str) -> dict[str, float]:
    import tempfile

    import boto3

    port_file = tempfile.mktemp(prefix="embedded-tx-port-")
    child = subprocess.Popen([sys.executable, "-m", "bench.embedded_tx", "--serve", variant, port_file])
    try:
        deadline = time.monotonic() + 60
        while not (os.path.exists(port_file) and open(port_file, encoding="utf-8").read()):
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server ({variant}) did not start")
            time.sleep(0.05)
        port = int(open(port_file, encoding="utf-8").read())
        client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        _create_table(client)
        versions = dict.fromkeys(range(MEMBERS), 0)
        for member in range(MEMBERS):  # a card's partition: account, profile, 5 lots
            client.put_item(TableName="t", Item={"pk": {"S": f"M#{member}"}, "sk": {"S": "A#PROFILE"},
                                                 "nickname": {"S": "x" * 20}})
            for lot in range(5):
                client.put_item(TableName="t", Item={"pk": {"S": f"M#{member}"}, "sk": {"S": f"A#LOT#2027-0{lot + 1}"},
                                                     "remaining": {"N": "10"}})
        counter = iter(range(10**9))

        def transaction() -> None:
            n = next(counter)
            member = n % MEMBERS
            client.transact_write_items(TransactItems=_accrual(n, member, versions[member]))
            versions[member] += 1

        operations = {
            "TransactWriteItems (accrual, 4 items)": transaction,
            "GetItem": lambda: client.get_item(TableName="t", Key={"pk": {"S": f"M#{next(counter) % MEMBERS}"},
                                                                   "sk": {"S": "A#PROFILE"}}),
            "Query (card: 7 items)": lambda: client.query(
                TableName="t", KeyConditionExpression="pk = :p AND begins_with(sk, :s)", ConsistentRead=True,
                ExpressionAttributeValues={":p": {"S": f"M#{next(counter) % MEMBERS}"}, ":s": {"S": "A#"}}),
            "BatchGetItem (3 keys)": lambda: client.batch_get_item(RequestItems={"t": {"Keys": [
                {"pk": {"S": f"M#{next(counter) % MEMBERS}"}, "sk": {"S": sk}}
                for sk in ("A#ACCOUNT", "A#PROFILE", "A#LOT#2027-01")]}}),
            "UpdateItem (login)": lambda: client.update_item(
                TableName="t", Key={"pk": {"S": f"U#{next(counter) % MEMBERS}"}, "sk": {"S": "USER"}},
                UpdateExpression="SET #s = :s, #l = :l ADD #n :one",
                ExpressionAttributeNames={"#s": "session", "#l": "last_login", "#n": "logins"},
                ExpressionAttributeValues={":s": {"S": "y" * 40}, ":l": {"S": "2026-11-30T22:00:00Z"},
                                           ":one": {"N": "1"}}),
        }
        for run in operations.values():  # warm: every path imported and every cache filled
            for _ in range(MEMBERS):
                run()
        figures = {}
        for name, run in operations.items():
            before = _cpu_seconds(child.pid)
            for _ in range(HTTP_REQUESTS):
                run()
            figures[name] = (_cpu_seconds(child.pid) - before) / HTTP_REQUESTS * 1000
        return figures
    finally:
        child.kill()
        child.wait()
        if os.path.exists(port_file):
            os.unlink(port_file)


def _accrual(n: int, member: int, version: int) -> list[dict[str, Any]]:
    names = {f"#{k}": k for k in ("points", "held", "debt", "growth", "months", "version", "updated", "active")}
    values = {":p": {"N": str(n)}, ":z": {"N": "0"}, ":g": {"N": str(n)},
              ":m": {"M": {"2026-11": {"N": str(n)}}}, ":next": {"N": str(version + 1)},
              ":u": {"S": "2026-11-30T19:00:00Z"}, ":a": {"S": "2026-11-30"}, ":v": {"N": str(version)}}
    return [
        {"Update": {"TableName": "t", "Key": {"pk": {"S": f"M#{member}"}, "sk": {"S": "A#ACCOUNT"}},
                    "UpdateExpression": "SET #points = :p, #held = :z, #debt = :z, #growth = :g, #months = :m, "
                                        "#version = :next, #updated = :u, #active = :a",
                    "ConditionExpression": "attribute_not_exists(pk) OR #version = :v",
                    "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}},
        {"Update": {"TableName": "t", "Key": {"pk": {"S": f"M#{member}"}, "sk": {"S": "A#LOT#2027-12-31"}},
                    "UpdateExpression": "SET #k = :k ADD #r :one, #e :one",
                    "ExpressionAttributeNames": {"#k": "kind", "#r": "remaining", "#e": "earned"},
                    "ExpressionAttributeValues": {":k": {"S": "lot"}, ":one": {"N": "1"}}}},
        {"Put": {"TableName": "t", "ConditionExpression": "attribute_not_exists(pk)",
                 "Item": {"pk": {"S": f"M#{member}"}, "sk": {"S": f"L#{n}"}, "points": {"N": "1"}}}},
        {"Put": {"TableName": "t", "ConditionExpression": "attribute_not_exists(pk)",
                 "Item": {"pk": {"S": f"O#{n}"}, "sk": {"S": "ORDER"}, "amount": {"N": "100"}}}},
    ]


def http_main(variants: list[str]) -> int:
    results: dict[str, dict[str, list[float]]] = {}
    for _round in range(2):
        for variant in variants:
            for name, ms in _http_measure(variant).items():
                results.setdefault(variant, {}).setdefault(name, []).append(ms)
    names = list(next(iter(results.values())))
    print(f"server CPU per request, ms (best of 2 x {HTTP_REQUESTS} requests; the server process only)")
    print("| request | " + " | ".join(variants) + " |")
    print("|---|" + "---:|" * len(variants))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{min(results[v][name]):.2f}" for v in variants) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
