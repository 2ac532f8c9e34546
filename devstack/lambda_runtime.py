"""What the stream pump and the scheduler share: finding the app's handlers and calling them the
way Lambda does (a raw event dict and a context object)."""

from __future__ import annotations

import importlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# moto's default account: every ARN the local stack makes up uses it.
ACCOUNT_ID = "123456789012"

LambdaHandler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "devstack"
    _started: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@dataclass(frozen=True)
class FunctionIdentity:
    """Names a handler the way its deployed Lambda function is named (``app-stage-handler``)."""

    app_name: str
    stage: str
    handler_name: str
    region: str
    # What the function gets per .chalice/config.json; jobs budget their work on the time left.
    timeout_seconds: int = 60
    memory_mb: int = 128

    @property
    def function_name(self) -> str:
        return f"{self.app_name}-{self.stage}-{self.handler_name}"

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    def new_context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.function_name,
            invoked_function_arn=self.function_arn,
            memory_limit_in_mb=self.memory_mb,
            timeout_seconds=self.timeout_seconds,
        )


def function_identity(
    chalice_app: Any, handler_name: str, *, stage: str, region: str, project_dir: Path | None = None
) -> FunctionIdentity:
    """A handler's identity, with its timeout and memory as chalice resolves them for the stage
    from ``project_dir/.chalice/config.json`` (chalice's defaults without one)."""
    from chalice.config import Config
    from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT

    config_file = project_dir / ".chalice" / "config.json" if project_dir is not None else None
    on_disk = json.loads(config_file.read_text(encoding="utf-8")) if config_file and config_file.is_file() else {}
    config = Config(
        chalice_stage=stage,
        function_name=handler_name,
        config_from_disk=on_disk,
        default_params={"lambda_timeout": DEFAULT_LAMBDA_TIMEOUT, "lambda_memory_size": DEFAULT_LAMBDA_MEMORY_SIZE},
    )
    return FunctionIdentity(
        chalice_app.app_name, stage, handler_name, region, int(config.lambda_timeout), int(config.lambda_memory_size)
    )


def find_handler(chalice_app: Any, source: Any) -> LambdaHandler:
    """The callable Lambda would invoke for one of the app's event sources.

    Chalice keeps it in ``handler_map`` under the source's name (blueprint handlers included);
    failing that, the source's ``handler_string`` (``"app.on_table_change"``) is imported.
    """
    handler = chalice_app.handler_map.get(source.name)
    if handler is None:
        module_name, _, attribute = source.handler_string.rpartition(".")
        handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise TypeError(f"{source.handler_string} is not callable")
    return handler
