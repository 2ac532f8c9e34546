"""Business metrics as CloudWatch embedded-metric-format lines (Powertools Metrics).

One call, one metric, written to stdout at once (Lambda ships it to CloudWatch Logs, which turns
it into a metric): nothing to flush at the end of a handler, and nothing lost if it crashes.
Namespace `Loyalty`; dimensions `service` and `stage`, plus at most one of the call's own (a
refusal's `code`, a job's `job`, a notification's `outcome`) -- never a program or member id,
which would make a metric per merchant. The alarms and dashboard that read them:
infra/monitoring.py. Set POWERTOOLS_METRICS_DISABLED=true to silence them.
"""

from __future__ import annotations

NAMESPACE = "Loyalty"
SERVICE = "loyalty"


def emit(name: str, value: int = 1, **dimension: str) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    from chalicelib.settings import get_table_settings

    if is_metrics_disabled():  # single_metric itself ignores the switch
        return

    defaults = {"service": SERVICE, "stage": get_table_settings().stage}
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE,
                       default_dimensions=defaults) as metric:
        for key, text in dimension.items():
            metric.add_dimension(name=key, value=str(text))
