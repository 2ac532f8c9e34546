"""Request models the API layer declares itself (a service's own are in its module); routes name
them lazily (`"chalicelib.api.inputs:WalletQuery"`, see `http.py`), so they are built on the first
request that parses one, not at import."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.api.http import PageQuery

# Days the job rules can compute with (a run walks days on either side of as_of); staff run jobs
# for past days to catch up and for future ones to rehearse, never for year 1 or 9999.
_FIRST_AS_OF, _LAST_AS_OF = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


class JobRunIn(BaseModel):  # POST /v1/admin/jobs/{job}/runs (admin.py)
    model_config = ConfigDict(extra="forbid", defer_build=True)
    as_of: dt.date | None = Field(default=None, description="The day to run for (default: the program's today), "
                                  f"{_FIRST_AS_OF} to {_LAST_AS_OF}.")

    @field_validator("as_of")
    @classmethod
    def _within_range(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and not _FIRST_AS_OF <= value <= _LAST_AS_OF:
            raise ValueError(f"as_of must be a day from {_FIRST_AS_OF} to {_LAST_AS_OF}")
        return value


class WalletQuery(PageQuery):  # GET /v1/members/me/coupons (coupons.py): a paged list with a query of its own
    status: Literal["unused", "used", "expired"] = Field(default="unused", description="Which coupons.")
