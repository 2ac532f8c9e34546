"""The daily jobs through the local stack's job queue (moto SQS + devstack/queue_pump.py): a task
sent to the queue is worked by the same consumer the deployed stack runs, which chains the rest
of the program's jobs for that day through the queue."""

from __future__ import annotations

import json
import time

from tests.e2e.conftest import RunningStack


def test_a_task_on_the_job_queue_runs_the_program_s_jobs_in_order(stack: RunningStack) -> None:
    from chalicelib.store import keys

    sqs = stack.sqs()
    url = sqs.get_queue_url(QueueName="loyalty-local-jobs")["QueueUrl"]
    as_of = "2031-03-04"  # a day nothing else in the suite runs
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
        {"program_id": "demo", "as_of": as_of, "job": "reconcile", "then": []}))
    client = stack.dynamodb()
    deadline = time.monotonic() + 60
    wanted = ("reconcile", "reconcile-payments", "stored-value-liability")
    while True:
        runs = {}
        for job in wanted:
            pk, sk = keys.job_run("demo", job, as_of)
            item = client.get_item(TableName=stack.table_name, ConsistentRead=True,
                                   Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
            runs[job] = item and item["status"]["S"]
        if all(status == "done" for status in runs.values()):
            break
        assert time.monotonic() < deadline, f"the queue did not finish the chain: {runs}"
        time.sleep(0.5)
    pk, sk = keys.job_run("demo", "expire-points", as_of)  # before reconcile in the table: not in this chain
    assert "Item" not in client.get_item(TableName=stack.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}})
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
