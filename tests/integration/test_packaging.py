"""The deployment packaging: the per-stage IAM policies, the merge template and the package checks.

The merge template is generated in a subprocess, as `make package` does: generating it imports
``app.py``, and this test process must keep the settings its own conftest gave `chalicelib`.
The full `chalice package` + cfn-lint run is `make lint-template` (it downloads wheels).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra import check_package, merge_template
from infra.merge_template import FAILURE_QUEUE, JOB_FAILURE_QUEUE, JOB_QUEUE, STACK_KEY, TABLE

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "prod")
REGION, ACCOUNT = "ap-east-1", "123456789012"

# What the store does to the table (PynamoDB get/save/update/delete/query/batch_get, and
# TransactWrite, which IAM authorises per item as Put/Update/Delete/ConditionCheck).
STORE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
)
# What Lambda's event source mapping does with the execution role to read a DynamoDB stream.
STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")

# Per stage: (the merge template, the resources Chalice generates without it).
Generated = dict[str, tuple[dict[str, Any], dict[str, Any]]]

_GENERATE = """
import json, sys
from pathlib import Path
from infra import merge_template
stage, out = sys.argv[1], sys.argv[2]
assert merge_template.main(["--stage", stage, "--out", out]) == 0
chalice = merge_template.load_chalice_stage(merge_template.PROJECT_DIR, stage)
print(json.dumps(chalice.template["Resources"], default=str))
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LOYALTY_")}
    result = {}
    for stage in STAGES:
        out = tmp_path_factory.mktemp(stage) / "merge-template.json"
        run = subprocess.run(
            [sys.executable, "-c", _GENERATE, stage, str(out)],
            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120,
        )
        assert run.returncode == 0, run.stderr
        result[stage] = (json.loads(out.read_text()), json.loads(run.stdout))
    return result


FUNCTIONS = ("api_handler", "on_table_change", "send_notifications", "deliver_webhooks", "run_daily_jobs",
             "run_frequent_jobs", "run_job_tasks")


def _policy(stage: str, function: str) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads((ROOT / "policies" / stage / f"{function}.json").read_text())
    return policy


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _iam_pattern(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: `*` any run of characters, `?` one; nothing else is special.
    body = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"^{body}$", re.IGNORECASE if ignore_case else 0)


def _allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an identity policy of plain Allow statements grants ``action`` on ``resource``."""
    return any(
        any(_iam_pattern(a, ignore_case=True).match(action) for a in _as_list(statement["Action"]))
        and any(_iam_pattern(r, ignore_case=False).match(resource) for r in _as_list(statement["Resource"]))
        for statement in policy["Statement"]
    )


def _functions(chalice: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in chalice.items() if v["Type"] == "AWS::Serverless::Function"}


def _by_name(chalice: dict[str, Any]) -> dict[str, str]:
    """Chalice's function name (api_handler, on_table_change, ...) -> logical id."""
    names = {}
    for logical_id, function in _functions(chalice).items():
        handler = function["Properties"]["Handler"].split(".", 1)[1]
        names["api_handler" if handler == "app" else handler] = logical_id
    return names


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_policy_is_plain_allow_statements_with_no_wildcard_action(stage: str, function: str) -> None:
    for statement in _policy(stage, function)["Statement"]:
        # The coverage check below evaluates only this shape; anything cleverer needs a real evaluator.
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            assert "*" not in action and "?" not in action, f"wildcard action {action!r}"
        for resource in _as_list(statement["Resource"]):
            assert resource != "*" and not resource.startswith("arn:aws:dynamodb:*:*:*"), resource


@pytest.mark.parametrize("function", FUNCTIONS)
def test_dev_and_prod_policies_differ_only_in_the_stage(function: str) -> None:
    def neutral(stage: str) -> str:
        return json.dumps(_policy(stage, function)).replace(f"loyalty-{stage}", "loyalty-STAGE").replace(
            f"loyalty/{stage}/", "loyalty/STAGE/")

    assert neutral("dev") == neutral("prod")


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_may_do_what_it_needs_and_nothing_more(stage: str, generated: Generated) -> None:
    merge, chalice = generated[stage]
    resources = merge["Resources"]
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{resources[TABLE]['Properties']['TableName']}"
    stream_arn = f"{table}/stream/2026-11-23T09:00:00.000"
    queues = {q: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{resources[q]['Properties']['QueueName']}"
              for q in (FAILURE_QUEUE, JOB_FAILURE_QUEUE, JOB_QUEUE)}
    by_name = _by_name(chalice)
    assert set(by_name) == set(FUNCTIONS)
    for function, logical_id in by_name.items():
        policy = _policy(stage, function)
        events = chalice[logical_id]["Properties"].get("Events", {}).values()
        streamed = any(e["Type"] == "DynamoDB" for e in events)
        scheduled = any(e["Type"] == "Schedule" for e in events)
        needs = [(action, table) for action in STORE_ACTIONS]
        needs += [("dynamodb:Query", f"{table}/index/{index['IndexName']}")
                  for index in resources[TABLE]["Properties"]["GlobalSecondaryIndexes"]]
        name = resources[logical_id]["Properties"]["FunctionName"]
        log_stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{name}:log-stream:2026/11/23/[$LATEST]0a"
        needs += [("logs:CreateLogStream", log_stream), ("logs:PutLogEvents", log_stream)]
        secrets = json.loads(resources[logical_id]["Properties"]["Environment"]["Variables"]["LOYALTY_SECRET_IDS"])
        needs += [("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{sid}-AbC123")
                  for sid in secrets.values()]
        if streamed:
            needs += [(action, stream_arn) for action in STREAM_ACTIONS]
            needs.append(("sqs:SendMessage", queues[FAILURE_QUEUE]))
        if scheduled:
            needs.append(("sqs:SendMessage", queues[JOB_FAILURE_QUEUE]))
        consumes = any(e["Type"] == "SQS" for e in events)
        sends_tasks = function in merge_template.JOB_QUEUE_SENDERS
        if sends_tasks:
            needs.append(("sqs:SendMessage", queues[JOB_QUEUE]))
        if consumes:
            needs += [(action, queues[JOB_QUEUE]) for action in
                      ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")]
        missing = [need for need in needs if not _allows(policy, *need)]
        assert not missing, f"{stage}/{function}.json does not allow {missing}"
        # ...and nothing beyond its own needs.
        assert _allows(policy, "dynamodb:GetRecords", stream_arn) == streamed, function
        assert _allows(policy, "sqs:SendMessage", queues[FAILURE_QUEUE]) == streamed, function
        assert _allows(policy, "sqs:SendMessage", queues[JOB_FAILURE_QUEUE]) == scheduled, function
        assert _allows(policy, "sqs:SendMessage", queues[JOB_QUEUE]) == sends_tasks, function
        assert _allows(policy, "sqs:ReceiveMessage", queues[JOB_QUEUE]) == consumes, function
        assert ("LOYALTY_JOB_QUEUE_URL" in resources[logical_id]["Properties"]["Environment"]["Variables"]) == sends_tasks
        for field in ("token_secret", "data_key", "lookup_key", *merge_template.WECHATPAY):
            arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:loyalty/{stage}/{field}-AbC123"
            assert _allows(policy, "secretsmanager:GetSecretValue", arn) == (field in secrets), (function, field)
        other_log = log_stream.replace(f"/aws/lambda/{name}:", "/aws/lambda/someone-else:")
        assert not _allows(policy, "logs:PutLogEvents", other_log)
        assert not _allows(policy, "dynamodb:GetItem", table.replace(f"loyalty-{stage}", "loyalty-other"))
        assert not _allows(policy, "dynamodb:Scan", table)
        assert not _allows(policy, "dynamodb:DeleteTable", table)
    def secrets_of(function: str) -> set[str]:
        return set(json.loads(resources[by_name[function]]["Properties"]["Environment"]["Variables"][
            "LOYALTY_SECRET_IDS"]))

    from chalicelib.settings import WECHATPAY_SECRET_FIELDS

    assert set(merge_template.WECHATPAY) == set(WECHATPAY_SECRET_FIELDS)
    assert secrets_of("api_handler") == {"token_secret", "data_key", "lookup_key", *WECHATPAY_SECRET_FIELDS}
    # WeChat Pay's credentials only where money moves: settling orders, reconciling the day's payments.
    for function in ("run_frequent_jobs", "run_job_tasks"):
        assert secrets_of(function) == {"data_key", *WECHATPAY_SECRET_FIELDS}
    for function in ("on_table_change", "send_notifications", "deliver_webhooks", "run_daily_jobs"):
        assert secrets_of(function) == {"data_key"}


@pytest.mark.parametrize("stage", STAGES)
def test_chalice_reads_each_function_policy_from_policies_dir(stage: str) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_config = config["stages"][stage]
    assert config.get("autogen_policy", stage_config.get("autogen_policy")) is False
    # Chalice joins iam_policy_file onto .chalice/.
    resolved = (ROOT / ".chalice" / stage_config["iam_policy_file"]).resolve()
    assert resolved == ROOT / "policies" / stage / "api_handler.json"
    for function, settings in stage_config["lambda_functions"].items():
        assert (ROOT / ".chalice" / settings["iam_policy_file"]).resolve() == ROOT / "policies" / stage / f"{function}.json"


def test_local_stage_leaves_the_environment_to_the_local_stack() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert "environment_variables" not in config
    assert config["stages"]["local"] == {"environment_variables": {"LOYALTY_STAGE": "local"}}


@pytest.mark.parametrize("stage", STAGES)
def test_table_is_the_schema_table_encrypted_with_the_stack_key(stage: str, generated: Generated) -> None:
    from chalicelib.store import schema

    table = generated[stage][0]["Resources"][TABLE]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    name = config["stages"][stage]["environment_variables"]["LOYALTY_TABLE_NAME"]
    expected = schema.cloudformation_properties(name)
    expected["SSESpecification"] = {"SSEEnabled": True, "SSEType": "KMS",
                                    "KMSMasterKeyId": {"Fn::GetAtt": [STACK_KEY, "Arn"]}}
    if stage == "prod":
        expected["DeletionProtectionEnabled"] = True
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["Properties"] == expected
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == ("Retain" if stage == "prod" else "Delete")


@pytest.mark.parametrize("stage", STAGES)
def test_every_stream_event_reads_the_table_stream_and_parks_failures(stage: str, generated: Generated) -> None:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    from jsonschema import Draft7Validator

    merge, chalice = generated[stage]
    sam = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::Serverless::Function").schema
    validator = Draft7Validator({"$ref": "#/definitions/DynamoDBEventProperties", "definitions": sam["definitions"]})
    checked = 0
    for logical_id, function in _functions(chalice).items():
        for name, event in function["Properties"].get("Events", {}).items():
            if event["Type"] != "DynamoDB":
                continue
            override = merge["Resources"][logical_id]["Properties"]["Events"][name]["Properties"]
            assert override["Stream"] == {"Fn::GetAtt": [TABLE, "StreamArn"]}
            assert override["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert override["BisectBatchOnFunctionError"] is True
            failures = {"Fn::GetAtt": [FAILURE_QUEUE, "Arn"]}
            assert override["DestinationConfig"] == {"OnFailure": {"Destination": failures}}
            # cfn-lint does not validate SAM event properties: check the merged event against SAM's schema.
            merged = {**event["Properties"], **override}
            merged["Stream"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t/stream/2026-11-23T09:00:00.000"
            merged["DestinationConfig"] = {"OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"}}
            assert not [e.message for e in validator.iter_errors(merged)]
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_gets_name_table_region_secret_ids_key_and_log_group(stage: str, generated: Generated) -> None:
    from chalicelib.settings import DEV_SECRETS

    merge, chalice = generated[stage]
    names = set()
    for logical_id in _functions(chalice):
        override = merge["Resources"][logical_id]
        name = override["Properties"]["FunctionName"]
        assert name == f"loyalty-{stage}" or name.startswith(f"loyalty-{stage}-")
        names.add(name)
        variables = override["Properties"]["Environment"]["Variables"]
        assert variables["LOYALTY_TABLE_NAME"] == {"Ref": TABLE}
        assert variables["LOYALTY_REGION"] == {"Ref": "AWS::Region"}
        for field, secret_id in json.loads(variables["LOYALTY_SECRET_IDS"]).items():
            assert secret_id == f"loyalty/{stage}/{field}"
        # Secrets are read at run time: no value, and no dynamic reference, in the template.
        assert not any("resolve:secretsmanager" in json.dumps(v) for v in variables.values())
        assert set(variables) - {"LOYALTY_JOB_QUEUE_URL"} == {
            "LOYALTY_TABLE_NAME", "LOYALTY_REGION", "LOYALTY_SECRET_IDS", "POWERTOOLS_SERVICE_NAME"}
        assert override["Properties"]["KmsKeyArn"] == {"Fn::GetAtt": [STACK_KEY, "Arn"]}
        (log_group,) = override["DependsOn"]
        assert chalice[log_group]["Type"] == "AWS::Logs::LogGroup"
        assert merge["Resources"][log_group]["Properties"] == {
            "LogGroupName": f"/aws/lambda/{name}", "KmsKeyId": {"Fn::GetAtt": [STACK_KEY, "Arn"]}}
    assert len(names) == len(_functions(chalice))
    assert not any(secret in json.dumps(merge) for secret in DEV_SECRETS)


@pytest.mark.parametrize("stage", STAGES)
def test_every_role_gets_its_own_policy_file_pinned_to_the_stack(stage: str, generated: Generated) -> None:
    merge, chalice = generated[stage]
    roles = set()
    for function, logical_id in _by_name(chalice).items():
        role = chalice[logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
        roles.add(role)
        (policy,) = merge["Resources"][role]["Properties"]["Policies"]
        expected = merge_template.pin_to_stack(_policy(stage, function))
        *statements, key = policy["PolicyDocument"]["Statement"]
        assert statements == expected["Statement"]
        assert key == {"Sid": "StackKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                       "Resource": {"Fn::GetAtt": [STACK_KEY, "Arn"]}}
        pinned = json.dumps(expected)
        assert ":*:*:" not in pinned
        assert pinned.count("${AWS::AccountId}") == sum(len(_as_list(s["Resource"])) for s in expected["Statement"])
    assert len(roles) == len(FUNCTIONS), "one role per function"


@pytest.mark.parametrize("stage", STAGES)
def test_schedulers_run_one_at_a_time_and_park_failed_runs(stage: str, generated: Generated) -> None:
    merge, chalice = generated[stage]
    for logical_id, function in _functions(chalice).items():
        scheduled = any(e["Type"] == "Schedule" for e in function["Properties"].get("Events", {}).values())
        concurrency = function["Properties"].get("ReservedConcurrentExecutions")
        assert concurrency is not None and concurrency >= 1, logical_id
        if scheduled:
            assert concurrency == 1, logical_id
            assert merge["Resources"][logical_id]["Properties"]["DeadLetterQueue"] == {
                "Type": "SQS", "TargetArn": {"Fn::GetAtt": [JOB_FAILURE_QUEUE, "Arn"]}}
        else:
            assert "DeadLetterQueue" not in merge["Resources"][logical_id]["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_api_is_regional_throttled_logged_and_answers_in_the_envelope(stage: str, generated: Generated) -> None:
    merge, chalice = generated[stage]
    api = chalice["RestAPI"]["Properties"]
    override = merge["Resources"]["RestAPI"]["Properties"]
    # Routes carry /v1; the stage must not add another (/v1/v1/...). A custom domain maps "" to it.
    assert api["StageName"] == stage != "v1"
    assert api["EndpointConfiguration"] == "REGIONAL" and override["EndpointConfiguration"] == {"Type": "REGIONAL"}
    (method,) = override["MethodSettings"]
    profile = merge_template.STAGE_PROFILES[stage]
    assert (method["ThrottlingRateLimit"], method["ThrottlingBurstLimit"]) == (
        profile.api_rate_limit, profile.api_burst_limit)
    access = override["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": [merge_template.API_ACCESS_LOGS, "Arn"]}
    logged = json.loads(access["Format"])
    assert {"requestId", "status", "path", "latencyMs"} <= set(logged)
    assert not any(word in access["Format"].lower() for word in ("body", "authorization", "header"))
    responses = override["GatewayResponses"]
    assert {"MISSING_AUTHENTICATION_TOKEN", "THROTTLED", "REQUEST_TOO_LARGE", "UNAUTHORIZED", "DEFAULT_4XX",
            "DEFAULT_5XX"} <= set(responses)
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == 404
    for kind, response in responses.items():
        body = response["ResponseTemplates"]["application/json"]
        rendered = body.replace("$context.error.messageString", '"Missing Authentication Token"').replace(
            "$context.requestId", "abc-123")
        error = json.loads(rendered)["error"]
        assert set(error) == {"code", "message", "request_id"} and re.fullmatch(r"[a-z_]+", error["code"]), kind


def test_every_route_is_under_v1_once_or_a_fixed_root_path(generated: Generated) -> None:
    from app import app

    roots = {"/health", "/openapi.json", "/docs", "/console"}
    for path in app.routes:
        assert path in roots or path.startswith(("/docs/", "/console/")) or (path.startswith("/v1/") and "/v1/" not in path[3:]), path


@pytest.mark.parametrize("stage", STAGES)
def test_alarms_and_dashboard(stage: str, generated: Generated) -> None:
    from infra import monitoring

    merge, chalice = generated[stage]
    resources = merge["Resources"]
    alarms = {k: v["Properties"] for k, v in resources.items() if v.get("Type") == "AWS::CloudWatch::Alarm"}
    functions = _functions(chalice)
    for logical_id in functions:
        assert f"{logical_id}ErrorsAlarm" in alarms and f"{logical_id}ThrottlesAlarm" in alarms
    streamed = [k for k, f in functions.items()
                if any(e["Type"] == "DynamoDB" for e in f["Properties"].get("Events", {}).values())]
    assert streamed
    for logical_id in streamed:
        assert alarms[f"{logical_id}IteratorAgeAlarm"]["MetricName"] == "IteratorAge"
    for queue in (FAILURE_QUEUE, JOB_FAILURE_QUEUE):
        depth = alarms[f"{queue}DepthAlarm"]
        assert (depth["MetricName"], depth["Threshold"], depth["ComparisonOperator"]) == (
            "ApproximateNumberOfMessagesVisible", 0, "GreaterThanThreshold")
    throttles = alarms["TableThrottlesAlarm"]["Metrics"]
    indexed = {d["Value"] for m in throttles if "MetricStat" in m for d in m["MetricStat"]["Metric"]["Dimensions"]
               if d["Name"] == "GlobalSecondaryIndexName"}
    assert indexed == {"gsi1", "gsi2"}
    assert alarms["Api5xxAlarm"]["MetricName"] == "5XXError"
    assert alarms["ApiLatencyAlarm"]["ExtendedStatistic"] == "p99"
    incomplete = alarms["DailyJobsIncompleteAlarm"]
    assert (incomplete["MetricName"], incomplete["TreatMissingData"]) == ("ScheduledRunCompleted", "breaching")
    assert {d["Name"]: d["Value"] for d in incomplete["Dimensions"]} == {
        "schedule": "daily", "service": "loyalty", "stage": stage}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": monitoring.ALARM_TOPIC}]
    body = resources[monitoring.DASHBOARD]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert len(json.loads(body)["widgets"]) >= 10


def test_metric_dimensions_match_what_the_alarms_read(capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib import metrics

    metrics.emit("ScheduledRunCompleted", schedule="daily")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Loyalty"
    assert sorted(directive["Dimensions"][0]) == ["schedule", "service", "stage"]
    assert line["service"] == "loyalty"


def test_pinning_leaves_iam_policy_variables_alone() -> None:
    document = {"Statement": [{"Resource": ["arn:aws:s3:*:*:b/${aws:username}", "arn:aws:s3:::b"]}]}
    (statement,) = merge_template.pin_to_stack(document)["Statement"]
    assert statement["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:${AWS::Region}:${AWS::AccountId}:b/${!aws:username}"},
        "arn:aws:s3:::b",
    ]


def test_secret_ids_name_one_secret_per_field() -> None:
    assert json.loads(merge_template.secret_ids("loyalty/prod", ("token_secret", "data_key"))) == {
        "token_secret": "loyalty/prod/token_secret", "data_key": "loyalty/prod/data_key"}


def test_local_stage_is_not_packaged(tmp_path: Path) -> None:
    assert merge_template.main(["--stage", "local", "--out", str(tmp_path / "t.json")]) == 2
    assert not (tmp_path / "t.json").exists()


def _package(tmp_path: Path, runtime: str, modules: list[str], stream: Any) -> dict[str, Any]:
    with zipfile.ZipFile(tmp_path / "layer.zip", "w") as zipped:
        for module in modules:
            zipped.writestr(module, b"")
    with zipfile.ZipFile(tmp_path / "code.zip", "w") as zipped:
        zipped.writestr("app.py", b"")
    failures = {"Fn::GetAtt": ["Queue", "Arn"]}
    return {
        "Resources": {
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Layer": {"Type": "AWS::Serverless::LayerVersion",
                      "Properties": {"ContentUri": "./layer.zip", "CompatibleRuntimes": ["python3.11"]}},
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {
                "Runtime": runtime, "CodeUri": "./code.zip", "Layers": [{"Ref": "Layer"}],
                "Events": {"Changes": {"Type": "DynamoDB", "Properties": {
                    "Stream": stream, "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    "DestinationConfig": {"OnFailure": {"Destination": failures}}}}}}},
        }
    }


def test_package_check_accepts_matching_runtime_and_a_wired_stream(tmp_path: Path) -> None:
    modules = ["pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so", "cryptography/_rust.abi3.so"]
    template = _package(tmp_path, "python3.11", modules, {"Fn::GetAtt": ["Table", "StreamArn"]})
    assert check_package.runtime_problems(template, tmp_path) == []
    assert check_package.merge_problems(template) == []


def test_package_check_refuses_a_runtime_the_wheels_were_not_built_for(tmp_path: Path) -> None:
    modules = ["pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so"]
    template = _package(tmp_path, "python3.12", modules, {"Fn::GetAtt": ["Table", "StreamArn"]})
    (problem,) = check_package.runtime_problems(template, tmp_path)
    assert problem.startswith("Fn: runtime python3.12 but layer.zip holds modules compiled for Python 3.11")


def test_package_check_refuses_an_unmerged_stream_or_orphan_override(tmp_path: Path) -> None:
    template = _package(tmp_path, "python3.11", [], "arn:aws:dynamodb:us-east-1:000000000000:table/loyalty/stream/x")
    template["Resources"]["Renamed"] = {"Properties": {"FunctionName": "loyalty-dev-gone"}}
    problems = check_package.merge_problems(template)
    assert any(p.startswith("Fn.Events.Changes: reads 'arn:aws:dynamodb") for p in problems)
    assert any(p.startswith("Renamed: no Type") for p in problems)


def test_bytecode_goes_into_the_zip_and_is_used_without_the_source_mtime(tmp_path: Path) -> None:
    from infra import bytecode

    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("pkg/__init__.py", b"")
        zipped.writestr("pkg/mod.py", b"ANSWER = 42\n")
        zipped.writestr("pkg/py2_example.py", b"print 'not python 3'\n")
    assert bytecode.missing_bytecode(archive) == ["pkg/__init__.py", "pkg/mod.py", "pkg/py2_example.py"]
    assert bytecode.compile_zip(archive) == 2
    first = archive.read_bytes()
    assert bytecode.missing_bytecode(archive) == ["pkg/py2_example.py"]  # left as pip leaves it
    with zipfile.ZipFile(archive) as zipped:
        pyc = zipped.read(bytecode.pyc_name("pkg/mod.py"))
        zipped.extractall(tmp_path / "unzipped")
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked: mtimes do not matter
    # Same input, same zip (fixed timestamps), so packaging is repeatable.
    bytecode.compile_zip(archive)
    assert archive.read_bytes() == first
    source = tmp_path / "unzipped" / "pkg" / "mod.py"
    source.write_text("ANSWER = 0\n")  # a changed source is not even looked at: the package is immutable
    done = subprocess.run([sys.executable, "-c", "import pkg.mod; print(pkg.mod.ANSWER)"], cwd=tmp_path / "unzipped",
                          capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.stdout.strip() == "42", done.stderr


def test_package_check_refuses_zips_without_bytecode(tmp_path: Path) -> None:
    template = _package(tmp_path, "python3.11", ["lib/thing.py"], {"Fn::GetAtt": ["Table", "StreamArn"]})
    problems = check_package.bytecode_problems(template, tmp_path)
    assert any(p.startswith("layer.zip: 1 modules without bytecode") for p in problems)
    assert any(p.startswith("code.zip: 1 modules without bytecode") for p in problems)


def test_checkov_gate_accepts_only_listed_noise_and_never_the_checks_that_matter(tmp_path: Path) -> None:
    from infra import checkov_gate
    from infra.checkov_gate import Finding

    accepted = checkov_gate.load_accepted()
    assert all(entry["reason"].strip() for entry in accepted)
    vpc = Finding("t", "CKV_AWS_117", "AWS::Serverless::Function.RunDailyJobs", "VPC")
    dlq_api = Finding("t", "CKV_AWS_116", "AWS::Serverless::Function.APIHandler", "DLQ")
    dlq_job = Finding("t", "CKV_AWS_116", "AWS::Serverless::Function.RunDailyJobs", "DLQ")
    kms = Finding("t", "CKV_AWS_173", "AWS::Serverless::Function.APIHandler", "env KMS")
    left, _ = checkov_gate.unaccepted([vpc, dlq_api, dlq_job, kms], accepted)
    assert left == [dlq_job, kms]  # a schedule without a DLQ and plaintext env are never noise
    bad = tmp_path / "accepted.yaml"
    bad.write_text("- check: CKV_AWS_158\n  resources: ['*']\n  reason: logs are fine\n")
    with pytest.raises(SystemExit, match="may not be accepted"):
        checkov_gate.load_accepted(bad)
    bad.write_text("- check: CKV_AWS_116\n  resources: ['AWS::Serverless::Function.*']\n  reason: all sync\n")
    with pytest.raises(SystemExit, match="no wildcard"):
        checkov_gate.load_accepted(bad)


def test_package_check_wants_the_docs_page_files_in_the_api_function(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "api.zip", "w") as zipped:
        zipped.writestr("app.py", b"")
        zipped.writestr("chalicelib/api/swagger_ui/swagger-ui.css", b"")
        for name in ("index.html", "app.js", "forms.js", "style.css"):  # the console's, but ECharts
            zipped.writestr(f"chalicelib/console/{name}", b"")
    template = {"Resources": {"APIHandler": {"Type": "AWS::Serverless::Function",
                                             "Properties": {"CodeUri": "./api.zip"}}}}
    assert check_package.asset_problems(template, tmp_path) == [
        "APIHandler: api.zip lacks chalicelib/api/swagger_ui/swagger-ui-bundle.js (served at /docs)",
        "APIHandler: api.zip lacks chalicelib/console/echarts.min.js (served at /console)"]
    with zipfile.ZipFile(tmp_path / "api.zip", "a") as zipped:
        zipped.writestr("chalicelib/console/echarts.min.js", b"")
    with zipfile.ZipFile(tmp_path / "api.zip", "a") as zipped:
        zipped.writestr("chalicelib/api/swagger_ui/swagger-ui-bundle.js", b"")
    assert check_package.asset_problems(template, tmp_path) == []


@pytest.mark.parametrize("stage", STAGES)
def test_job_queue_feeds_its_consumer_and_parks_tasks_that_keep_failing(stage: str, generated: Generated) -> None:
    merge, chalice = generated[stage]
    resources = merge["Resources"]
    queue = resources[JOB_QUEUE]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": [STACK_KEY, "Arn"]}
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [JOB_FAILURE_QUEUE, "Arn"]},
                                      "maxReceiveCount": merge_template.JOB_QUEUE_MAX_RECEIVES}
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    timeout = config["lambda_functions"]["run_job_tasks"]["lambda_timeout"]
    from chalicelib import jobs

    # A task's slice ends well inside the timeout; a dead task's claim expires before SQS delivers it again.
    assert jobs.TASK_SECONDS + 30 <= timeout <= queue["VisibilityTimeout"]
    assert jobs.LEASE_SECONDS < queue["VisibilityTimeout"]
    consumer = _by_name(chalice)["run_job_tasks"]
    (event,) = resources[consumer]["Properties"]["Events"].values()
    workers = merge_template.JOB_WORKERS[stage]
    assert event["Properties"] == {"Queue": {"Fn::GetAtt": [JOB_QUEUE, "Arn"]},
                                   "ScalingConfig": {"MaximumConcurrency": workers}}
    assert chalice[consumer]["Properties"]["ReservedConcurrentExecutions"] == workers
