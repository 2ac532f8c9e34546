"""Redeliver the running local stack's whole stream to the app's stream handlers.

    PORT=... WECHAT_PORT=... DYNAMODB_PORT=... python -m devstack.replay

Lambda delivers a stream record at least once; this shows what a redelivery does (it should
change nothing): every record since the table was created goes again, in order, in batches of
each handler's size, to every `on_dynamodb_record` handler. Prints one JSON line per handler
with the records delivered and the failures reported.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from devstack.runner import Ports, configure_environment
from devstack.stream_pump import stream_targets, to_lambda_record

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    values = configure_environment(Ports.from_env())
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # stdout is this tool's report, not metrics
    import boto3

    region, table_name = values["LOYALTY_REGION"], values["LOYALTY_TABLE_NAME"]
    endpoint = values["LOYALTY_DYNAMODB_ENDPOINT"]
    arn = boto3.client("dynamodb", endpoint_url=endpoint).describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint)
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            answer = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += answer["Records"]
            if not answer["Records"]:
                break
            iterator = answer.get("NextShardIterator")
    events = [to_lambda_record(r, stream_arn=arn, region=region) for r in records]
    sys.path.insert(0, str(ROOT))
    import app

    failures = 0
    for target in stream_targets(app.app, stage="local", region=region, project_dir=ROOT):
        failed = 0
        for start in range(0, len(events), target.batch_size):
            answer = target.handler({"Records": events[start:start + target.batch_size]}, None) or {}
            failed += len(answer.get("batchItemFailures", []))
        failures += failed
        print(json.dumps({"handler": target.identity.handler_name,
                          "records": len(events), "failures": failed}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
