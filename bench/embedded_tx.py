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

TRANSACTIONS = 400
MEMBERS = 20


def _measure(variant: str) -> float:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    from devstack import serial_dynamodb

    if variant == "moto":
        serial_dynamodb._fast_expression_copies = lambda: None  # everything else of the embedded DynamoDB stays
    serial_dynamodb.install()
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
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
    if len(sys.argv) > 1:
        print(f"{_measure(sys.argv[1]):.2f}")
        return 0
    results = {}
    for variant in ("moto", "embedded", "moto", "embedded"):
        done = subprocess.run([sys.executable, "-m", "bench.embedded_tx", variant], capture_output=True, text=True,
                              check=True)
        results.setdefault(variant, []).append(float(done.stdout.strip()))
    for variant, label in (("moto", "moto's expression work"), ("embedded", "the embedded DynamoDB's (part 6)")):
        print(f"{label}: {min(results[variant]):.2f} ms CPU per 4-item transaction (best of 2, boto3 included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
