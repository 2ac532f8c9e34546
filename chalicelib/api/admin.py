"""Staff routes that are not about one member: jobs on demand, program config."""

import datetime as dt

from chalice import Blueprint
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib import clock, jobs, wiring
from chalicelib.errors import InvalidRequest
from chalicelib.api.http import STAFF, route
from chalicelib.api.schemas import JobRun, JobRunProgress, ProgramView
from chalicelib.services import programs
from chalicelib.services.programs import program_config

bp = Blueprint(__name__)

# Days the job rules can compute with (a run walks days on either side of as_of); staff run jobs
# for past days to catch up and for future ones to rehearse, never for year 1 or 9999.
_FIRST_AS_OF, _LAST_AS_OF = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


class JobRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    as_of: dt.date | None = Field(default=None, description="The day to run for (default: the program's today), "
                                  f"{_FIRST_AS_OF} to {_LAST_AS_OF}.")

    @field_validator("as_of")
    @classmethod
    def _within_range(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and not _FIRST_AS_OF <= value <= _LAST_AS_OF:
            raise ValueError(f"as_of must be a day from {_FIRST_AS_OF} to {_LAST_AS_OF}")
        return value


@route(bp, "/v1/admin/jobs/{job}/runs", ["POST"], auth=STAFF.require("jobs:run"), body=JobRunIn, response=JobRun, errors=(404, 409),
       summary="Run a job for a day (idempotent per job and day; 409 job_running while another invocation runs it)")
def run_job(ctx, job):
    body = ctx.body()
    as_of = body.as_of or program_config(ctx.settings, ctx.staff.program_id).today(clock.now())
    return jobs.run_job(ctx.settings, wiring.daily_jobs(), ctx.staff.program_id, job, as_of)


@route(bp, "/v1/admin/jobs/{job}/runs/{as_of}", ["GET"], auth=STAFF.require("jobs:run"), response=JobRunProgress,
       errors=(404,), summary="A run's progress as saved after its last page (the console polls it while a run works)")
def get_job_run(ctx, job, as_of):
    try:
        day = dt.date.fromisoformat(as_of)
    except ValueError:
        raise InvalidRequest(f"as_of: {as_of!r} is not a day (YYYY-MM-DD)") from None
    return jobs.run_progress(wiring.daily_jobs(), ctx.staff.program_id, job, day)


@route(bp, "/v1/admin/program", ["GET"], auth=STAFF.require("program:read"), response=ProgramView, errors=(404,),
       summary="Read the program's rules")
def get_program(ctx):
    return programs.view(ctx.settings, ctx.staff.program_id)


@route(bp, "/v1/admin/program", ["PUT"], auth=STAFF.require("program:write"), body=programs.ProgramRulesIn, response=ProgramView,
       errors=(404, 409), summary="Replace the program's rules (409 version_conflict if they changed since read)")
def put_program(ctx):
    return programs.update(ctx.settings, ctx.staff, ctx.body())
