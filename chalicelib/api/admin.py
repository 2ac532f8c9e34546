"""Staff routes that are not about one member: jobs on demand, program config."""

from chalice import Blueprint
from pydantic import BaseModel, ConfigDict

from chalicelib import jobs
from chalicelib.api.http import STAFF, route
from chalicelib.services.members import program_config
from chalicelib.services.ledger import now_utc

bp = Blueprint(__name__)


class JobRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: str | None = None


@route(bp, "/v1/admin/jobs/{job}/runs", ["POST"], auth=STAFF)
def run_job(ctx, job):
    body = ctx.body(JobRunIn)
    today = program_config(ctx.settings, ctx.staff.program_id).today(now_utc())
    return jobs.run_job(ctx.settings, ctx.staff.program_id, job, jobs.parse_as_of(body.as_of, today))
