"""The one DynamoDB table, described once.

`infra/` turns this into the CloudFormation resource, the local stack and the tests create the
table from it with boto3, and the PynamoDB models in `models.py` name the same attributes and
indexes. Change keys, indexes, the stream or TTL here and nowhere else.
"""

from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "ttl"
STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"

# GSI1: per-member timelines (points history, tier history), newest first by gsi1sk.
GSI1 = "gsi1"
# GSI2: sparse work queues keyed by calendar day and shard (lots expiring, reminders, birthdays).
GSI2 = "gsi2"

KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")

_INDEXES: list[dict[str, Any]] = [
    {
        "IndexName": GSI1,
        "KeySchema": [
            {"AttributeName": "gsi1pk", "KeyType": "HASH"},
            {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
    {
        "IndexName": GSI2,
        "KeySchema": [
            {"AttributeName": "gsi2pk", "KeyType": "HASH"},
            {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
]


def create_table_kwargs(table_name: str) -> dict[str, Any]:
    """Arguments for boto3 ``create_table`` (local stack, tests)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in KEY_ATTRIBUTES],
        "GlobalSecondaryIndexes": _INDEXES,
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": STREAM_VIEW_TYPE},
    }


def cloudformation_properties(table_name_ref: Any) -> dict[str, Any]:
    """Properties of the ``AWS::DynamoDB::Table`` resource in the packaged template."""
    kwargs = create_table_kwargs("placeholder")
    return {
        "TableName": table_name_ref,
        "BillingMode": kwargs["BillingMode"],
        "KeySchema": kwargs["KeySchema"],
        "AttributeDefinitions": kwargs["AttributeDefinitions"],
        "GlobalSecondaryIndexes": kwargs["GlobalSecondaryIndexes"],
        "StreamSpecification": {"StreamViewType": STREAM_VIEW_TYPE},
        "TimeToLiveSpecification": {"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }


def create_table(client: Any, table_name: str) -> None:
    """Create the table (and enable TTL) with a boto3 DynamoDB client; idempotent."""
    try:
        client.create_table(**create_table_kwargs(table_name))
    except client.exceptions.ResourceInUseException:
        return
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
    )
