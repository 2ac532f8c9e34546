"""CloudWatch alarms and the dashboard of one stage, as CloudFormation resources.

Every alarm notifies the stack's `AlarmTopic` (subscribe the on-call address to it) and is
explained in infra/README.md ("Alarms"). Custom metrics are the app's Powertools Metrics in the
`Loyalty` namespace (chalicelib/metrics.py); the rest are AWS's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NAMESPACE = "Loyalty"  # chalicelib/metrics.py
SERVICE = "loyalty"
ALARM_TOPIC = "AlarmTopic"
DASHBOARD = "Dashboard"

# The schedules whose completion is watched, with how often each must report one.
SCHEDULE_PERIODS = {"daily": 86400, "frequent": 900}


@dataclass(frozen=True)
class Watched:
    """What the alarms and the dashboard look at."""

    stage: str
    api_name: str
    api_stage: str
    table_name: str
    indexes: tuple[str, ...]
    functions: dict[str, str]  # logical id -> function name
    stream_functions: tuple[str, ...]  # logical ids
    queues: dict[str, str]  # logical id -> queue name
    # p99 latency of the API (ms) above which the alarm fires
    latency_p99_ms: int = 1500


def _alarm(description: str, metric: dict[str, Any], *, threshold: float, comparison: str = "GreaterThanThreshold",
           periods: int = 1, missing: str = "notBreaching") -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "OKActions": [{"Ref": ALARM_TOPIC}],
            "ComparisonOperator": comparison,
            "Threshold": threshold,
            "EvaluationPeriods": periods,
            "DatapointsToAlarm": periods,
            "TreatMissingData": missing,
            **metric,
        },
    }


def _metric(namespace: str, name: str, dimensions: dict[str, str], statistic: str, period: int = 60) -> dict[str, Any]:
    stat_key = "ExtendedStatistic" if statistic.startswith("p") else "Statistic"
    return {
        "Namespace": namespace,
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        stat_key: statistic,
        "Period": period,
    }


def _table_throttles(watched: Watched) -> dict[str, Any]:
    """One alarm over the table's and every index's read and write throttle events (metric math)."""
    metrics: list[dict[str, Any]] = []
    targets = [{"TableName": watched.table_name}] + [
        {"TableName": watched.table_name, "GlobalSecondaryIndexName": index} for index in watched.indexes
    ]
    for n, dimensions in enumerate(targets):
        for kind in ("ReadThrottleEvents", "WriteThrottleEvents"):
            metrics.append({
                "Id": f"m{len(metrics)}",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/DynamoDB", "MetricName": kind,
                               "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
                    "Period": 60,
                    "Stat": "Sum",
                },
            })
    ids = ", ".join(m["Id"] for m in metrics)
    metrics.append({"Id": "throttles", "Expression": f"SUM([{ids}])", "Label": "throttle events", "ReturnData": True})
    return {"Metrics": metrics}


def alarms(watched: Watched) -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = {}
    for logical_id, name in watched.functions.items():
        dims = {"FunctionName": name}
        resources[f"{logical_id}ErrorsAlarm"] = _alarm(
            f"{name}: invocations failed (Lambda Errors > 0 in 5 min)",
            _metric("AWS/Lambda", "Errors", dims, "Sum", 300), threshold=0)
        resources[f"{logical_id}ThrottlesAlarm"] = _alarm(
            f"{name}: invocations throttled (reserved concurrency reached)",
            _metric("AWS/Lambda", "Throttles", dims, "Sum", 300), threshold=0)
    for logical_id in watched.stream_functions:
        name = watched.functions[logical_id]
        resources[f"{logical_id}IteratorAgeAlarm"] = _alarm(
            f"{name}: the oldest unprocessed stream record is over 5 minutes old (stream falling behind or stuck)",
            _metric("AWS/Lambda", "IteratorAge", {"FunctionName": name}, "Maximum", 60), threshold=300_000, periods=5)
    for logical_id, queue in watched.queues.items():
        resources[f"{logical_id}DepthAlarm"] = _alarm(
            f"{queue}: work was given up on and parked here; replay it (infra/README.md)",
            _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue}, "Maximum", 300),
            threshold=0)
    resources["TableThrottlesAlarm"] = _alarm(
        f"{watched.table_name}: DynamoDB throttled reads or writes on the table or an index",
        _table_throttles(watched), threshold=0)
    api = {"ApiName": watched.api_name, "Stage": watched.api_stage}
    resources["Api5xxAlarm"] = _alarm(
        f"{watched.api_name}: the API answered 5xx (a bug, or 503 retry_later under throttling)",
        _metric("AWS/ApiGateway", "5XXError", api, "Sum", 300), threshold=0)
    resources["ApiLatencyAlarm"] = _alarm(
        f"{watched.api_name}: p99 latency above {watched.latency_p99_ms} ms for 15 minutes",
        _metric("AWS/ApiGateway", "Latency", api, "p99", 300), threshold=watched.latency_p99_ms, periods=3)
    for schedule, period in SCHEDULE_PERIODS.items():
        resources[f"{schedule.capitalize()}JobsIncompleteAlarm"] = _alarm(
            f"{watched.stage}: no {schedule} job run reported completion in {period // 60} minutes "
            "(a run failed, timed out or did not start)",
            _metric(NAMESPACE, "ScheduledRunCompleted",
                    {"schedule": schedule, "service": SERVICE, "stage": watched.stage}, "Sum", period),
            threshold=1, comparison="LessThanThreshold", missing="breaching")
    return resources


def dashboard_body(watched: Watched) -> dict[str, Any]:
    region = "${AWS::Region}"
    api = ["ApiName", watched.api_name, "Stage", watched.api_stage]

    def widget(title: str, metrics: list[list[Any]], stat: str = "Sum", width: int = 12, **extra: Any) -> dict[str, Any]:
        return {"type": "metric", "width": width, "height": 6,
                "properties": {"title": title, "region": region, "stat": stat, "period": 300, "view": "timeSeries",
                               "metrics": metrics, **extra}}

    functions = list(watched.functions.values())
    stage = ["service", SERVICE, "stage", watched.stage]
    return {"widgets": [
        widget("API requests and errors", [["AWS/ApiGateway", "Count", *api], [".", "4XXError", *api],
                                           [".", "5XXError", *api]]),
        widget("API latency (ms)", [["AWS/ApiGateway", "Latency", *api, {"stat": "p50"}],
                                    ["...", {"stat": "p99"}]], stat="p99"),
        widget("Accruals and redemptions", [[NAMESPACE, "Accruals", *stage], [".", "PointsAccrued", *stage],
                                            [".", "Redemptions", *stage], [".", "PointsRedeemed", *stage]]),
        widget("Refusals by code", [[{"expression": f"SEARCH('{{{NAMESPACE},code,service,stage}} MetricName=\"Refusals\" "
                                                     f"stage=\"{watched.stage}\"', 'Sum', 300)", "id": "r"}]]),
        widget("Notifications by outcome", [[{"expression": f"SEARCH('{{{NAMESPACE},outcome,service,stage}} "
                                                            f"MetricName=\"Notifications\" stage=\"{watched.stage}\"', "
                                                            "'Sum', 300)", "id": "n"}]]),
        widget("Job pages done and runs completed", [
            [{"expression": f"SEARCH('{{{NAMESPACE},job,service,stage}} MetricName=\"JobPages\" OR "
                            f"MetricName=\"JobRunsCompleted\" stage=\"{watched.stage}\"', 'Sum', 3600)", "id": "j"}],
            [NAMESPACE, "ScheduledRunCompleted", "schedule", "daily", *stage, {"period": 86400}],
        ]),
        widget("Lambda errors", [["AWS/Lambda", "Errors", "FunctionName", name] for name in functions]),
        widget("Lambda throttles and duration p99", [["AWS/Lambda", "Throttles", "FunctionName", name]
                                                     for name in functions]),
        widget("Stream iterator age (ms)", [["AWS/Lambda", "IteratorAge", "FunctionName", watched.functions[f]]
                                            for f in watched.stream_functions], stat="Maximum"),
        widget("Failure queues (messages waiting)", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]
                                                     for q in watched.queues.values()], stat="Maximum"),
        widget("DynamoDB consumed capacity", [["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName",
                                               watched.table_name],
                                              [".", "ConsumedWriteCapacityUnits", ".", "."]]),
        widget("DynamoDB throttle events", [["AWS/DynamoDB", "ReadThrottleEvents", "TableName", watched.table_name],
                                            [".", "WriteThrottleEvents", ".", "."]]
               + [["AWS/DynamoDB", kind, "TableName", watched.table_name, "GlobalSecondaryIndexName", index]
                  for index in watched.indexes for kind in ("ReadThrottleEvents", "WriteThrottleEvents")]),
    ]}


def dashboard(watched: Watched) -> dict[str, Any]:
    body = json.dumps(dashboard_body(watched), separators=(",", ":"))
    return {"Type": "AWS::CloudWatch::Dashboard",
            "Properties": {"DashboardName": f"loyalty-{watched.stage}", "DashboardBody": {"Fn::Sub": body}}}
