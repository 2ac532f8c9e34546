"""Wiring only: the Chalice app, its blueprints, and the stream and schedule triggers.

Every route and trigger calls one function in `chalicelib`; nothing here holds business logic.
`chalicelib/wiring.py` lists the jobs and stream reactions; the handlers below hand those tables
to the runners. Trigger modules are imported inside the handlers, so the API function (which
imports this module too) loads none of them until a trigger runs. Likewise the routes name their
services and models lazily (`chalicelib/api/http.py`): a cold start builds only what its first
request needs.
"""

# The DynamoDB client library is loaded at init on purpose: every function and nearly every request
# needs it, so a cold start pays for it once either way; our own modules, unlike it, load per
# feature on first use.
import pynamodb.models  # noqa: F401
import pynamodb.transactions  # noqa: F401
from chalice import Chalice, Cron, Rate

from chalicelib.api import routes

app = Chalice(app_name="loyalty")
app.experimental_feature_flags.update({"BLUEPRINTS"})
routes.register(app)

# Chalice needs a stream ARN at import; the packaged template replaces it with the table's
# real stream (infra/merge_template.py), and the local stack feeds the handlers itself.
_STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/loyalty/stream/placeholder"


@app.on_dynamodb_record(stream_arn=_STREAM_ARN, batch_size=100, starting_position="TRIM_HORIZON")
def on_table_change(event):
    """Reactions to table changes: tier upgrades, referrals, tasks, notification jobs."""
    from chalicelib import wiring
    from chalicelib.events import stream

    return stream.handle_batch(event.to_dict(), wiring.table_reactions())


@app.on_dynamodb_record(stream_arn=_STREAM_ARN, batch_size=20, starting_position="TRIM_HORIZON")
def send_notifications(event):
    """New notification jobs out to WeChat."""
    from chalicelib.services import notifications

    return notifications.handle_send_batch(event.to_dict())


@app.on_dynamodb_record(stream_arn=_STREAM_ARN, batch_size=10, starting_position="TRIM_HORIZON")
def deliver_webhooks(event):
    """Webhook deliveries that became pending, out to the merchant's endpoints at once."""
    from chalicelib.services import webhooks

    return webhooks.handle_delivery_batch(event.to_dict())


@app.schedule(Cron(5, 16, "*", "*", "?", "*"))  # 00:05 in Asia/Shanghai, the programs' default day
def run_daily_jobs(event):
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    return jobs.run_daily(get_settings(), wiring.daily_jobs(), event.context)


# Like the stream ARN: the packaged template points this at the stack's job queue, and the local
# stack feeds the handler from its own queue (devstack/queue_pump.py).
_JOB_QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:loyalty-jobs-placeholder"


@app.on_sqs_message(queue_arn=_JOB_QUEUE_ARN, batch_size=1)
def run_job_tasks(event):
    """The daily jobs' tasks (sent by run_daily_jobs, and by each task for what is left)."""
    import json

    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    settings, table = get_settings(), wiring.daily_jobs()
    return [jobs.run_task(settings, table, json.loads(record.body), event.context) for record in event]


@app.schedule(Rate(5, unit=Rate.MINUTES))
def run_frequent_jobs(event):
    from chalicelib import jobs, wiring
    from chalicelib.settings import get_settings

    return jobs.run_frequent(get_settings(), wiring.frequent_jobs(), event.context)
