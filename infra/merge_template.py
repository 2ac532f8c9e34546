"""Generate the template that `chalice package --merge-template` folds into Chalice's SAM template.

    python -m infra.merge_template --stage dev --out build/dev/merge-template.json

Chalice generates the functions, their roles and log groups, the REST API, the schedules and the
stream event source from ``app.py`` and ``.chalice/config.json``. This adds what Chalice cannot
express and finishes what it leaves open, without naming a single handler:

* the DynamoDB table, built from ``chalicelib/store/schema.py`` (the one description of the table);
* an SQS queue that receives the coordinates of stream batches still failing after the retries;
* every DynamoDB event source pointed at that table's stream, with partial batch failures,
  bisection, bounded retries and the failure queue (Chalice can say none of it, chalice #1882);
* every function: its stable name, the table name and region from the stack, the ids of the
  Secrets Manager secrets it reads at run time (only those it needs: ``FUNCTION_SECRETS``), its
  environment encrypted with the stack's KMS key, and its log group (KMS too) created before it;
  schedules also get a dead-letter queue (their failure destination);
* every role: its own policy file from ``policies/<stage>/<function>.json`` with partition, region
  and account pinned to the stack's own, plus the use of the stack's KMS key;
* the REST API: stage throttling, JSON access logs, API Gateway's own error answers in the
  contract's envelope; the alarms, their SNS topic and the dashboard (``infra/monitoring.py``).

Handlers are discovered by running Chalice's own resource graph and template generator in memory
(no dependency download), so the logical ids are exactly Chalice's and a new handler is picked up
with no change here. Chalice's merge recurses into dicts but replaces lists and scalars
wholesale, so every list below (``Policies``, ``FunctionResponseTypes``, ``DependsOn``) is complete.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Logical ids of the resources this template adds.
TABLE = "Table"
FAILURE_QUEUE = "StreamFailureQueue"
JOB_FAILURE_QUEUE = "JobFailureQueue"
JOB_QUEUE = "JobQueue"
STACK_KEY = "StackKey"
API = "RestAPI"  # Chalice's
API_ACCESS_LOGS = "ApiAccessLogs"

# Which secrets each function reads (chalicelib.settings.SECRET_FIELDS), by Chalice's name for it.
# Every function reads program config, which holds the encrypted WeChat secret: all need data_key;
# only the API issues tokens, seals cursors and hashes phone numbers.
# WeChat Pay's merchant credentials (chalicelib.settings.WECHATPAY_SECRET_FIELDS) go only where
# money moves: the API (orders, notifications), the frequent jobs (settle, close, refund) and the
# job tasks (the daily reconcile-payments queries every order of the day).
WECHATPAY = ("wechatpay_mchid", "wechatpay_merchant_serial", "wechatpay_merchant_private_key",
             "wechatpay_apiv3_key", "wechatpay_public_key", "wechatpay_public_key_id")
FUNCTION_SECRETS: dict[str, tuple[str, ...]] = {
    "api_handler": ("token_secret", "data_key", "lookup_key", *WECHATPAY),
    "on_table_change": ("data_key",),
    "send_notifications": ("data_key",),
    "run_daily_jobs": ("data_key",),  # it only sends the day's tasks to the job queue
    "run_frequent_jobs": ("data_key", *WECHATPAY),
    "deliver_webhooks": ("data_key",),  # endpoint secrets are stored encrypted: signing reads them
    "run_job_tasks": ("data_key", *WECHATPAY),
}

# The daily jobs' task queue (chalicelib/jobs.py): the functions that send tasks get its URL.
JOB_QUEUE_SENDERS = ("run_daily_jobs", "run_job_tasks")
# A task works 40 s (jobs.TASK_SECONDS) inside the consumer's 120 s timeout; SQS hides a message
# being worked for this long, so a task that died is delivered again within five minutes (its
# claim, jobs.LEASE_SECONDS = 150 s, has expired by then).
JOB_QUEUE_VISIBILITY_SECONDS = 300
# A task that failed this many deliveries goes to the job failure queue (alarm: depth > 0).
JOB_QUEUE_MAX_RECEIVES = 5
# Tasks worked at once, per stage (the consumer's reserved concurrency and the event source's
# maximum concurrency agree, so SQS never hands a task to a throttled function).
JOB_WORKERS = {"dev": 2, "prod": 50}

LOCAL_STAGE = "local"

# Stream event sources: a failing record is retried, the batch halved around it, then its
# coordinates go to the failure queue so the shard moves on (README: "Stream event source").
STREAM_MAX_RETRY_ATTEMPTS = 5
# The stream keeps records 24 hours; a record still failing after 6 is parked rather than left to
# hold up every later change of the same members until the stream silently drops it.
STREAM_MAX_RECORD_AGE_SECONDS = 6 * 3600
# SQS's maximum: a failure record is what an operator replays from, so keep it as long as allowed.
FAILURE_QUEUE_RETENTION_SECONDS = 14 * 24 * 3600

_FUNCTION = "AWS::Serverless::Function"
_LAYER = "AWS::Serverless::LayerVersion"
# `arn:aws:<service>:*:*:<resource>`: the only form in policies/ that a stack can pin down.
_UNPINNED_ARN = re.compile(r"^arn:aws:(?P<service>[a-z0-9-]+):\*:\*:(?P<resource>.+)$")


class MergeTemplateError(RuntimeError):
    """The app, its config or its settings cannot be packaged as they stand; the message says why."""


@dataclass(frozen=True)
class StageProfile:
    """What differs between deployed stages beyond the names derived from the stage."""

    # Keep the table, the failure queue and the logs when the stack is deleted or a resource
    # replaced, and refuse DeleteTable; otherwise they go with the stack.
    keep_data: bool
    # API Gateway stage throttling: steady requests per second and burst, for the whole stage.
    api_rate_limit: int
    api_burst_limit: int
    # Days API access logs are kept.
    access_log_days: int

    @property
    def removal(self) -> dict[str, str]:
        policy = "Retain" if self.keep_data else "Delete"
        return {"DeletionPolicy": policy, "UpdateReplacePolicy": policy}


STAGE_PROFILES: dict[str, StageProfile] = {
    "dev": StageProfile(keep_data=False, api_rate_limit=50, api_burst_limit=100, access_log_days=14),
    "prod": StageProfile(keep_data=True, api_rate_limit=1000, api_burst_limit=2000, access_log_days=365),
}


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function as Chalice will generate it."""

    logical_id: str
    name: str  # Chalice's resource name: api_handler, or the handler's function name
    function_name: str
    role_id: str
    policy_file: Path
    log_group_id: str
    dynamodb_events: tuple[str, ...]
    scheduled: bool
    sqs_events: tuple[str, ...] = ()

    @property
    def log_group_name(self) -> str:
        # From the function's final name: Chalice's log group model for the API handler keeps the
        # name from before the handler is renamed to `<app>-<stage>`, and Lambda would log elsewhere.
        return f"/aws/lambda/{self.function_name}"


@dataclass(frozen=True)
class ChaliceStage:
    """What `chalice package` will generate for one stage, minus the code it would build."""

    app_name: str
    stage: str
    environment: dict[str, str]
    api_stage: str
    template: dict[str, Any]
    functions: tuple[FunctionSpec, ...]


@dataclass(frozen=True)
class SettingsVariables:
    """Environment variable names from ``chalicelib.settings.Settings``."""

    table_name: str
    region: str
    secrets: dict[str, str]  # field name -> variable name, for every SecretStr field


def load_chalice_stage(project_dir: Path, stage: str) -> ChaliceStage:
    """Run Chalice's resource graph and SAM generator for ``stage`` without building any code."""
    from botocore.session import Session
    from chalice.awsclient import TypedAWSClient
    from chalice.cli.factory import CLIFactory
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder
    from chalice.package import PackageOptions, SAMTemplateGenerator

    # Chalice writes the stage's variables into the mapping it is given before importing app.py.
    # Give it a copy: this process only needs the handlers, and the app's settings refuse to
    # start as a deployed stage without that stage's secrets, which a build never has.
    factory = CLIFactory(str(project_dir), environ=dict(os.environ))
    stages = factory.load_project_config().get("stages", {})
    if stage == LOCAL_STAGE or stage not in stages:
        deployable = sorted(set(stages) - {LOCAL_STAGE})
        raise MergeTemplateError(f"stage {stage!r} is not deployable; .chalice/config.json has {deployable}")
    config = factory.create_config_obj(chalice_stage_name=stage)
    resources = DependencyBuilder().build_dependencies(ApplicationGraphBuilder().build(config, stage))

    session = Session()
    # Only the IAM service principal in Chalice's roles depends on the region, and this template
    # takes nothing from those; the packaged template itself is region-neutral.
    session.set_config_variable("region", "us-east-1")
    template = SAMTemplateGenerator(config, PackageOptions(TypedAWSClient(session=session))).generate(resources)

    generated = template["Resources"]
    by_handler = {
        resource["Properties"]["Handler"]: logical_id
        for logical_id, resource in generated.items()
        if resource["Type"] == _FUNCTION
    }
    functions = []
    for model in resources:
        if not isinstance(model, models.LambdaFunction):
            continue
        name = model.resource_name
        if not isinstance(model.role, models.ManagedIAMRole) or not isinstance(
            model.role.policy, models.FileBasedIAMPolicy
        ):
            raise MergeTemplateError(f"{name}: set autogen_policy false and an iam_policy_file for stage {stage!r}")
        if model.log_group is None:
            # The policies grant no logs:CreateLogGroup: the stack creates every log group.
            raise MergeTemplateError(f"{name}: set log_retention_in_days for stage {stage!r}")
        logical_id = by_handler[model.handler]
        properties = generated[logical_id]["Properties"]
        events = properties.get("Events", {})
        functions.append(
            FunctionSpec(
                logical_id=logical_id,
                name=name,
                function_name=model.function_name,
                role_id=properties["Role"]["Fn::GetAtt"][0],
                policy_file=Path(model.role.policy.filename).resolve(),
                log_group_id=_chalice_logical_id(model.log_group.resource_name, generated),
                dynamodb_events=tuple(sorted(k for k, v in events.items() if v["Type"] == "DynamoDB")),
                scheduled=any(v["Type"] == "Schedule" for v in events.values()),
                sqs_events=tuple(sorted(k for k, v in events.items() if v["Type"] == "SQS")),
            )
        )
    return ChaliceStage(
        app_name=config.app_name,
        stage=stage,
        environment=dict(config.environment_variables),
        api_stage=config.api_gateway_stage,
        template=template,
        functions=tuple(functions),
    )


def _chalice_logical_id(resource_name: str, generated: dict[str, Any]) -> str:
    from chalice.utils import to_cfn_resource_name

    logical_id = to_cfn_resource_name(resource_name)
    if logical_id not in generated:
        raise MergeTemplateError(f"Chalice generated no {logical_id!r} for {resource_name!r}")
    return logical_id


def settings_variables() -> SettingsVariables:
    """Variable names the app reads, from its settings class, so a new secret is wired automatically."""
    from pydantic import SecretStr

    from chalicelib.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", ""))
    fields = Settings.model_fields
    for needed in ("table_name", "region"):
        if needed not in fields:
            raise MergeTemplateError(f"chalicelib.settings.Settings has no {needed!r}: update infra/merge_template.py")

    def is_secret(annotation: Any) -> bool:
        return annotation is SecretStr or SecretStr in typing.get_args(annotation)

    return SettingsVariables(
        table_name=f"{prefix}table_name".upper(),
        region=f"{prefix}region".upper(),
        secrets={name: f"{prefix}{name}".upper() for name, field in fields.items() if is_secret(field.annotation)},
    )


def secret_ids(prefix: str, fields: tuple[str, ...]) -> str:
    """``LOYALTY_SECRET_IDS`` of a function: one Secrets Manager secret per secret field it reads.
    The values are read at run time (chalicelib/settings.py), never put in the template."""
    return json.dumps({field: f"{prefix}/{field}" for field in fields}, separators=(",", ":"))


KEY_ARN = {"Fn::GetAtt": [STACK_KEY, "Arn"]}


def stack_key_resources(app_name: str, stage: str, profile: StageProfile) -> dict[str, Any]:
    """One customer-managed KMS key for what the stack keeps: table, queues, logs, environment, alarms."""
    sub = "Fn::Sub"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow",
             "Principal": {"AWS": {sub: "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "CloudWatchLogsEncrypt", "Effect": "Allow",
             "Principal": {"Service": {sub: "logs.${AWS::Region}.${AWS::URLSuffix}"}},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": {
                 sub: "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"}}}},
            {"Sid": "CloudWatchAlarmsPublish", "Effect": "Allow",
             "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}},
        ],
    }
    return {
        STACK_KEY: {
            "Type": "AWS::KMS::Key",
            **profile.removal,
            "Properties": {"Description": f"{app_name} {stage}: table, queues, logs, function environment, alarms",
                           "EnableKeyRotation": True, "KeyPolicy": policy},
        },
        f"{STACK_KEY}Alias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": f"alias/{app_name}-{stage}", "TargetKeyId": {"Ref": STACK_KEY}},
        },
    }


def table_resource(table_name: str, profile: StageProfile) -> dict[str, Any]:
    from chalicelib.store import schema

    properties = {
        **schema.cloudformation_properties(table_name),
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN},
    }
    if profile.keep_data:
        properties = {**properties, "DeletionProtectionEnabled": True}
    return {"Type": "AWS::DynamoDB::Table", **profile.removal, "Properties": properties}


def failure_queue_resource(queue_name: str, profile: StageProfile) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::Queue",
        **profile.removal,
        "Properties": {
            "QueueName": queue_name,
            "KmsMasterKeyId": KEY_ARN,
            "KmsDataKeyReusePeriodSeconds": 3600,  # fewer KMS calls; failures are rare anyway
            "MessageRetentionPeriod": FAILURE_QUEUE_RETENTION_SECONDS,
        },
    }


def job_queue_resource(queue_name: str, profile: StageProfile) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::Queue",
        **profile.removal,
        "Properties": {
            "QueueName": queue_name,
            "KmsMasterKeyId": KEY_ARN,
            "KmsDataKeyReusePeriodSeconds": 3600,
            "VisibilityTimeout": JOB_QUEUE_VISIBILITY_SECONDS,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [JOB_FAILURE_QUEUE, "Arn"]},
                              "maxReceiveCount": JOB_QUEUE_MAX_RECEIVES},
        },
    }


# API Gateway's own answers (requests that never reach the function), in the contract's envelope.
# Their bodies may use $context variables; their headers may not, so X-Request-Id is the
# x-amzn-RequestId header API Gateway always adds, and `request_id` in the body.
GATEWAY_RESPONSES: dict[str, tuple[int | None, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (404, "not_found"),  # what API Gateway answers for an unknown path
    "RESOURCE_NOT_FOUND": (404, "not_found"),
    "THROTTLED": (429, "rate_limited"),
    "QUOTA_EXCEEDED": (429, "rate_limited"),
    "REQUEST_TOO_LARGE": (413, "body_too_large"),
    "UNAUTHORIZED": (401, "unauthorized"),
    "ACCESS_DENIED": (403, "forbidden"),
    "BAD_REQUEST_BODY": (400, "invalid_request"),
    "BAD_REQUEST_PARAMETERS": (400, "invalid_request"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "invalid_request"),
    "INTEGRATION_TIMEOUT": (503, "retry_later"),
    "INTEGRATION_FAILURE": (503, "retry_later"),
    "DEFAULT_4XX": (None, "invalid_request"),
    "DEFAULT_5XX": (None, "internal_error"),
}


def gateway_responses() -> dict[str, Any]:
    answers = {}
    for kind, (status, code) in GATEWAY_RESPONSES.items():
        body = ('{"error": {"code": "%s", "message": $context.error.messageString, '
                '"request_id": "$context.requestId"}}' % code)
        answer: dict[str, Any] = {"ResponseTemplates": {"application/json": body}}
        if status is not None:
            answer["StatusCode"] = status
        answers[kind] = answer
    return answers


# One JSON object per request: no bodies, no headers, so no token or phone number can land here.
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "time": "$context.requestTime",
    "method": "$context.httpMethod", "resource": "$context.resourcePath", "path": "$context.path",
    "status": "$context.status", "bytes": "$context.responseLength", "latencyMs": "$context.responseLatency",
    "integrationMs": "$context.integrationLatency", "error": "$context.error.responseType",
}, separators=(",", ":"))


def api_properties(name: str, profile: StageProfile) -> dict[str, Any]:
    return {
        "Name": name,
        "EndpointConfiguration": {"Type": "REGIONAL"},
        "MethodSettings": [{
            "ResourcePath": "/*", "HttpMethod": "*",
            "ThrottlingRateLimit": profile.api_rate_limit, "ThrottlingBurstLimit": profile.api_burst_limit,
            "MetricsEnabled": True,
        }],
        "AccessLogSetting": {"DestinationArn": {"Fn::GetAtt": [API_ACCESS_LOGS, "Arn"]}, "Format": ACCESS_LOG_FORMAT},
        "GatewayResponses": gateway_responses(),
        "TracingEnabled": True,  # X-Ray on the stage: where a slow request spent its time
    }


def stream_event_properties() -> dict[str, Any]:
    """What every DynamoDB event source gets on top of Chalice's batch size and start position."""
    return {
        "Stream": {"Fn::GetAtt": [TABLE, "StreamArn"]},
        # Handlers return {"batchItemFailures": [...]}: only the failed record and those after it
        # in its shard are retried, not the whole batch.
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": STREAM_MAX_RETRY_ATTEMPTS,
        "MaximumRecordAgeInSeconds": STREAM_MAX_RECORD_AGE_SECONDS,
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [FAILURE_QUEUE, "Arn"]}}},
    }


def pin_to_stack(document: dict[str, Any]) -> dict[str, Any]:
    """The policy file with ``arn:aws:<svc>:*:*:`` resources narrowed to this stack's partition, region, account."""

    def pin(resource: Any) -> Any:
        match = _UNPINNED_ARN.match(resource) if isinstance(resource, str) else None
        if match is None:
            return resource
        rest = match["resource"].replace("${", "${!")  # Fn::Sub would read IAM's ${aws:...} as its own
        return {"Fn::Sub": f"arn:${{AWS::Partition}}:{match['service']}:${{AWS::Region}}:${{AWS::AccountId}}:{rest}"}

    statements = document["Statement"]
    pinned = []
    for statement in statements if isinstance(statements, list) else [statements]:
        resources = statement.get("Resource")
        if isinstance(resources, list):
            statement = {**statement, "Resource": [pin(resource) for resource in resources]}
        elif resources is not None:
            statement = {**statement, "Resource": pin(resources)}
        pinned.append(statement)
    return {**document, "Statement": pinned}


def build_merge_template(stage: str, project_dir: Path = PROJECT_DIR, secret_prefix: str | None = None) -> dict[str, Any]:
    """The merge template for ``stage``; secrets are ``<secret_prefix>/<field>``, by default ``<app>/<stage>/<field>``."""
    from infra import monitoring

    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    chalice = load_chalice_stage(project_dir, stage)
    if stage not in STAGE_PROFILES:
        raise MergeTemplateError(f"stage {stage!r} has no profile in infra/merge_template.py STAGE_PROFILES")
    variables = settings_variables()
    table_name = chalice.environment.get(variables.table_name)
    if not table_name:
        raise MergeTemplateError(f"stage {stage!r} sets no {variables.table_name} in .chalice/config.json")
    if chalice.api_stage == "v1":
        raise MergeTemplateError("the API stage must not be named v1: the routes start with /v1 (URLs /v1/v1/...)")
    secret_prefix = secret_prefix or f"{chalice.app_name}/{stage}"
    profile = STAGE_PROFILES[stage]
    name = f"{chalice.app_name}-{stage}"

    resources: dict[str, Any] = {
        **stack_key_resources(chalice.app_name, stage, profile),
        TABLE: table_resource(table_name, profile),
        FAILURE_QUEUE: failure_queue_resource(f"{name}-stream-failures", profile),
        JOB_FAILURE_QUEUE: failure_queue_resource(f"{name}-job-failures", profile),
        JOB_QUEUE: job_queue_resource(f"{name}-jobs", profile),
        API_ACCESS_LOGS: {
            "Type": "AWS::Logs::LogGroup", **profile.removal,
            "Properties": {"LogGroupName": f"/aws/apigateway/{name}/access", "KmsKeyId": KEY_ARN,
                           "RetentionInDays": profile.access_log_days},
        },
        API: {"Properties": api_properties(name, profile)},
        monitoring.ALARM_TOPIC: {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": f"{name}-alarms", "KmsMasterKeyId": {"Ref": STACK_KEY}},
        },
    }
    unknown = {field for fields in FUNCTION_SECRETS.values() for field in fields} - set(variables.secrets)
    if unknown:
        raise MergeTemplateError(f"FUNCTION_SECRETS names {sorted(unknown)}, which Settings has no SecretStr for")
    missing = sorted({f.name for f in chalice.functions} - set(FUNCTION_SECRETS))
    if missing:
        raise MergeTemplateError(f"say which secrets {missing} read: infra/merge_template.py FUNCTION_SECRETS")
    for function in chalice.functions:
        environment: dict[str, Any] = {
            # A Ref rather than the name: functions are then created after the table they use.
            variables.table_name: {"Ref": TABLE},
            variables.region: {"Ref": "AWS::Region"},
            "LOYALTY_SECRET_IDS": secret_ids(secret_prefix, FUNCTION_SECRETS[function.name]),
            "POWERTOOLS_SERVICE_NAME": chalice.app_name,
        }
        if function.name in JOB_QUEUE_SENDERS:
            environment["LOYALTY_JOB_QUEUE_URL"] = {"Ref": JOB_QUEUE}
        properties: dict[str, Any] = {
            # Chalice's own names (the same `chalice deploy` would use): the policies' log ARNs
            # and the local stack's handler names rely on them.
            "FunctionName": function.function_name,
            "Environment": {"Variables": environment},
            "KmsKeyArn": KEY_ARN,
        }
        if function.dynamodb_events:
            stream = stream_event_properties()
            properties["Events"] = {event: {"Properties": stream} for event in function.dynamodb_events}
        if function.sqs_events:
            properties["Events"] = {event: {"Properties": {
                "Queue": {"Fn::GetAtt": [JOB_QUEUE, "Arn"]},
                "ScalingConfig": {"MaximumConcurrency": JOB_WORKERS[stage]},
            }} for event in function.sqs_events}
        if function.scheduled:
            # Schedules invoke asynchronously: a run that fails after Lambda's retries lands here.
            properties["DeadLetterQueue"] = {"Type": "SQS", "TargetArn": {"Fn::GetAtt": [JOB_FAILURE_QUEUE, "Arn"]}}
        resources[function.logical_id] = {
            # The group exists before the first invocation, so Lambda never needs to create it.
            "DependsOn": [function.log_group_id],
            "Properties": properties,
        }
        # A literal name replaces Chalice's `/aws/lambda/${Function}`, which for the API handler
        # names a resource that does not exist (`ApiHandler` for `APIHandler`).
        resources[function.log_group_id] = {
            **profile.removal,
            "Properties": {"LogGroupName": function.log_group_name, "KmsKeyId": KEY_ARN},
        }
        document = pin_to_stack(json.loads(function.policy_file.read_text(encoding="utf-8")))
        document["Statement"].append({
            "Sid": "StackKey", "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": KEY_ARN,
        })
        resources[function.role_id] = {
            "Properties": {"Policies": [{"PolicyName": f"{function.role_id}Policy", "PolicyDocument": document}]}
        }
    for logical_id, resource in chalice.template["Resources"].items():
        if resource["Type"] == _LAYER:
            # Each dependency change publishes a new ~27 MB layer version; keep only the one in use.
            resources[logical_id] = {"Properties": {"RetentionPolicy": "Delete"}}

    watched = monitoring.Watched(
        stage=stage, api_name=name, api_stage=chalice.api_stage, table_name=table_name,
        indexes=tuple(index["IndexName"] for index in resources[TABLE]["Properties"]["GlobalSecondaryIndexes"]),
        functions={f.logical_id: f.function_name for f in chalice.functions},
        stream_functions=tuple(f.logical_id for f in chalice.functions if f.dynamodb_events),
        queues={FAILURE_QUEUE: f"{name}-stream-failures", JOB_FAILURE_QUEUE: f"{name}-job-failures"},
    )
    resources.update(monitoring.alarms(watched))
    resources[monitoring.DASHBOARD] = monitoring.dashboard(watched)

    return {
        "Description": f"{chalice.app_name} {stage}: API, triggers, table, failure queues, alarms "
        "(chalice package + infra/merge_template.py)",
        "Resources": resources,
        "Outputs": {
            "TableName": {"Value": {"Ref": TABLE}},
            "TableStreamArn": {"Value": {"Fn::GetAtt": [TABLE, "StreamArn"]}},
            "StreamFailureQueueUrl": {"Value": {"Ref": FAILURE_QUEUE}},
            "StreamFailureQueueArn": {"Value": {"Fn::GetAtt": [FAILURE_QUEUE, "Arn"]}},
            "JobFailureQueueUrl": {"Value": {"Ref": JOB_FAILURE_QUEUE}},
            "JobQueueUrl": {"Value": {"Ref": JOB_QUEUE}},
            "AlarmTopicArn": {"Value": {"Ref": monitoring.ALARM_TOPIC}},
            "ApiStage": {"Value": chalice.api_stage},
            "StackKeyArn": {"Value": KEY_ARN},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.merge_template", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, help="a deployable stage of .chalice/config.json")
    parser.add_argument("--out", required=True, type=Path, help="where to write the JSON template")
    parser.add_argument("--secret-prefix", help="Secrets Manager names are <prefix>/<field> (default <app>/<stage>)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        template = build_merge_template(args.stage, args.project_dir.resolve(), args.secret_prefix)
    except MergeTemplateError as error:
        print(f"merge_template: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(template, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
