"""Staff routes that are not about one member: jobs on demand, program config."""

from chalice import Blueprint
from pydantic import BaseModel, ConfigDict

from chalicelib import jobs
from chalicelib.api.http import STAFF, route
from chalicelib.services import programs
from chalicelib.services.ledger import now_utc
from chalicelib.services.members import program_config

bp = Blueprint(__name__)


class JobRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: str | None = None


@route(bp, "/v1/admin/jobs/{job}/runs", ["POST"], auth=STAFF)
def run_job(ctx, job):
    body = ctx.body(JobRunIn)
    today = program_config(ctx.settings, ctx.staff.program_id).today(now_utc())
    return jobs.run_job(ctx.settings, ctx.staff.program_id, job, jobs.parse_as_of(body.as_of, today))


@route(bp, "/v1/admin/program", ["GET"], auth=STAFF)
def get_program(ctx):
    return programs.view(ctx.settings, ctx.staff.program_id)


@route(bp, "/v1/admin/program", ["PUT"], auth=STAFF)
def put_program(ctx):
    return programs.update(ctx.settings, ctx.staff, ctx.body(programs.ProgramRulesIn))
