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
from infra.merge_template import FAILURE_QUEUE, TABLE

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


def _policy(stage: str) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads((ROOT / "policies" / f"policy-{stage}.json").read_text())
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


@pytest.mark.parametrize("stage", STAGES)
def test_policy_is_plain_allow_statements_with_no_wildcard_action(stage: str) -> None:
    policy = _policy(stage)
    for statement in policy["Statement"]:
        # The coverage check below evaluates only this shape; anything cleverer needs a real evaluator.
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            assert "*" not in action and "?" not in action, f"wildcard action {action!r}"
        for resource in _as_list(statement["Resource"]):
            assert resource != "*" and not resource.startswith("arn:aws:dynamodb:*:*:*"), resource


def test_dev_and_prod_policies_differ_only_in_the_stage() -> None:
    assert json.dumps(_policy("dev")).replace("loyalty-dev", "loyalty-STAGE") == json.dumps(
        _policy("prod")
    ).replace("loyalty-prod", "loyalty-STAGE")


@pytest.mark.parametrize("stage", STAGES)
def test_policy_covers_what_the_stage_template_needs(stage: str, generated: Generated) -> None:
    merge, chalice = generated[stage]
    resources = merge["Resources"]
    policy = _policy(stage)
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{resources[TABLE]['Properties']['TableName']}"
    needs = [(action, table) for action in STORE_ACTIONS]
    needs += [
        ("dynamodb:Query", f"{table}/index/{index['IndexName']}")
        for index in resources[TABLE]["Properties"]["GlobalSecondaryIndexes"]
    ]
    streamed = [f for f in _functions(chalice).values() if any(
        e["Type"] == "DynamoDB" for e in f["Properties"].get("Events", {}).values())]
    assert streamed, "no stream handler: the stream statements would be dead weight"
    needs += [(action, f"{table}/stream/2026-11-23T09:00:00.000") for action in STREAM_ACTIONS]
    queue = resources[FAILURE_QUEUE]["Properties"]["QueueName"]
    needs.append(("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}"))
    for logical_id in _functions(chalice):
        name = resources[logical_id]["Properties"]["FunctionName"]
        stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{name}:log-stream:2026/11/23/[$LATEST]0a1b"
        needs += [("logs:CreateLogStream", stream), ("logs:PutLogEvents", stream)]

    missing = [need for need in needs if not _allows(policy, *need)]
    assert not missing, f"policy-{stage}.json does not allow {missing}"
    # ...and nothing beyond this stage's own resources.
    assert not _allows(policy, "dynamodb:GetItem", table.replace(f"loyalty-{stage}", "loyalty-other"))
    assert not _allows(policy, "dynamodb:Scan", table)
    assert not _allows(policy, "dynamodb:DeleteTable", table)


@pytest.mark.parametrize("stage", STAGES)
def test_chalice_reads_the_stage_policy_from_policies_dir(stage: str) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage_config = config["stages"][stage]
    assert config.get("autogen_policy", stage_config.get("autogen_policy")) is False
    # Chalice joins iam_policy_file onto .chalice/.
    resolved = (ROOT / ".chalice" / stage_config["iam_policy_file"]).resolve()
    assert resolved == ROOT / "policies" / f"policy-{stage}.json"


def test_local_stage_leaves_the_environment_to_the_local_stack() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert "environment_variables" not in config
    assert config["stages"]["local"] == {"environment_variables": {"LOYALTY_STAGE": "local"}}


@pytest.mark.parametrize("stage", STAGES)
def test_table_is_the_schema_table(stage: str, generated: Generated) -> None:
    from chalicelib.store import schema

    table = generated[stage][0]["Resources"][TABLE]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    name = config["stages"][stage]["environment_variables"]["LOYALTY_TABLE_NAME"]
    expected = schema.cloudformation_properties(name)
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
def test_every_function_gets_name_table_region_secrets_and_log_group(stage: str, generated: Generated) -> None:
    from pydantic import SecretStr

    from chalicelib.settings import DEV_SECRETS, Settings

    merge, chalice = generated[stage]
    secrets = [name for name, field in Settings.model_fields.items() if field.annotation is SecretStr]
    assert secrets, "Settings has no secrets: the dynamic references would be dead weight"
    names = set()
    for logical_id in _functions(chalice):
        override = merge["Resources"][logical_id]
        name = override["Properties"]["FunctionName"]
        assert name == f"loyalty-{stage}" or name.startswith(f"loyalty-{stage}-")
        names.add(name)
        variables = override["Properties"]["Environment"]["Variables"]
        assert variables["LOYALTY_TABLE_NAME"] == {"Ref": TABLE}
        assert variables["LOYALTY_REGION"] == {"Ref": "AWS::Region"}
        for secret in secrets:
            assert variables[f"LOYALTY_{secret.upper()}"] == (
                f"{{{{resolve:secretsmanager:loyalty/{stage}:SecretString:{secret}}}}}"
            )
        (log_group,) = override["DependsOn"]
        assert chalice[log_group]["Type"] == "AWS::Logs::LogGroup"
        assert merge["Resources"][log_group]["Properties"]["LogGroupName"] == f"/aws/lambda/{name}"
    assert len(names) == len(_functions(chalice))
    assert not any(secret in json.dumps(merge) for secret in DEV_SECRETS)


@pytest.mark.parametrize("stage", STAGES)
def test_every_role_gets_its_policy_file_pinned_to_the_stack(stage: str, generated: Generated) -> None:
    merge, chalice = generated[stage]
    expected = merge_template.pin_to_stack(_policy(stage))
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in _functions(chalice).values()}
    for role in roles:
        (policy,) = merge["Resources"][role]["Properties"]["Policies"]
        assert policy["PolicyDocument"] == expected
    pinned = json.dumps(expected)
    assert ":*:*:" not in pinned
    assert pinned.count("${AWS::AccountId}") == sum(len(_as_list(s["Resource"])) for s in expected["Statement"])


def test_pinning_leaves_iam_policy_variables_alone() -> None:
    document = {"Statement": [{"Resource": ["arn:aws:s3:*:*:b/${aws:username}", "arn:aws:s3:::b"]}]}
    (statement,) = merge_template.pin_to_stack(document)["Statement"]
    assert statement["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:${AWS::Region}:${AWS::AccountId}:b/${!aws:username}"},
        "arn:aws:s3:::b",
    ]


def test_secret_reference_can_pin_a_version_to_deploy_a_rotation() -> None:
    assert merge_template.secret_reference("loyalty/prod", "data_key") == (
        "{{resolve:secretsmanager:loyalty/prod:SecretString:data_key}}"
    )
    assert merge_template.secret_reference("loyalty/prod", "data_key", "7f3c") == (
        "{{resolve:secretsmanager:loyalty/prod:SecretString:data_key::7f3c}}"
    )


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


def test_package_check_wants_the_docs_page_files_in_the_api_function(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "api.zip", "w") as zipped:
        zipped.writestr("app.py", b"")
        zipped.writestr("chalicelib/api/swagger_ui/swagger-ui.css", b"")
    template = {"Resources": {"APIHandler": {"Type": "AWS::Serverless::Function",
                                             "Properties": {"CodeUri": "./api.zip"}}}}
    assert check_package.asset_problems(template, tmp_path) == [
        "APIHandler: api.zip lacks chalicelib/api/swagger_ui/swagger-ui-bundle.js (served at /docs)"]
    with zipfile.ZipFile(tmp_path / "api.zip", "a") as zipped:
        zipped.writestr("chalicelib/api/swagger_ui/swagger-ui-bundle.js", b"")
    assert check_package.asset_problems(template, tmp_path) == []
