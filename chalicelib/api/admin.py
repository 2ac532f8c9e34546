"""Staff routes that are not about one member: jobs on demand, program config."""

import datetime as dt

from chalice import Blueprint

from chalicelib.errors import InvalidRequest
from chalicelib.api.http import STAFF, route

bp = Blueprint(__name__)


@route(bp, "/v1/admin/jobs/{job}/runs", ["POST"], auth=STAFF.require("jobs:run"), body="chalicelib.api.inputs:JobRunIn", response="chalicelib.api.schemas:JobRun", errors=(404, 409),
       summary="Run a job for a day (idempotent per job and day; 409 job_running while another invocation runs it)")
def run_job(ctx, job):
    from chalicelib import clock, jobs, wiring
    from chalicelib.services.programs import program_config

    body = ctx.body()
    as_of = body.as_of or program_config(ctx.settings, ctx.staff.program_id).today(clock.now())
    return jobs.run_job(ctx.settings, wiring.daily_jobs(), ctx.staff.program_id, job, as_of)


@route(bp, "/v1/admin/jobs/{job}/runs/{as_of}", ["GET"], auth=STAFF.require("jobs:run"), response="chalicelib.api.schemas:JobRunProgress",
       errors=(404,), summary="A run's progress as saved after its last page (the console polls it while a run works)")
def get_job_run(ctx, job, as_of):
    from chalicelib import jobs, wiring

    try:
        day = dt.date.fromisoformat(as_of)
    except ValueError:
        raise InvalidRequest(f"as_of: {as_of!r} is not a day (YYYY-MM-DD)") from None
    return jobs.run_progress(wiring.daily_jobs(), ctx.staff.program_id, job, day)


@route(bp, "/v1/admin/program", ["GET"], auth=STAFF.require("program:read"), response="chalicelib.api.schemas:ProgramView", errors=(404,),
       summary="Read the program's rules")
def get_program(ctx):
    from chalicelib.services import programs

    return programs.view(ctx.settings, ctx.staff.program_id)


@route(bp, "/v1/admin/program", ["PUT"], auth=STAFF.require("program:write"), body="chalicelib.services.programs:ProgramRulesIn", response="chalicelib.api.schemas:ProgramView",
       errors=(404, 409), summary="Replace the program's rules (409 version_conflict if they changed since read)")
def put_program(ctx):
    from chalicelib.services import programs

    return programs.update(ctx.settings, ctx.staff, ctx.body())
