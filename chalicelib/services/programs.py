"""Staff read and change their program's rules: earning and campaigns, tiers, expiry, holds,
notification templates. The program id and appid are fixed; the WeChat secret is never shown."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.auth.principals import StaffPrincipal
from chalicelib.domain.rfm import RfmRules  # insight (issue 15)
from chalicelib.domain.program import (
    CheckinPolicy,
    CouponGifts,
    EarningRules,
    ExpiryPolicy,
    HoldPolicy,
    ProgramConfig,
    StoredValuePolicy,
    RiskRules,
    TaskReward,
    Tier,
    TierPolicy,
)
from chalicelib.domain.text import FreeText
from chalicelib.domain.lottery import Lottery
from chalicelib.domain.membership import MembershipPolicy
from chalicelib.domain.referral import ReferralRules
from chalicelib.errors import Conflict, InvalidRequest, NotFound
from chalicelib.settings import Settings
from chalicelib.store import programs as store
from chalicelib.store.tx import ConditionsFailed


class ProgramRulesIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")
    # The version the change was made against (from GET): a concurrent edit is a 409, not lost.
    version: int = Field(ge=1)
    name: FreeText = Field(min_length=1, max_length=64)
    timezone: str = "Asia/Shanghai"
    earning: EarningRules
    tiers: list[Tier]
    expiry: ExpiryPolicy
    holds: HoldPolicy
    stored_value: StoredValuePolicy = Field(default_factory=StoredValuePolicy)
    tier_policy: TierPolicy = Field(default_factory=TierPolicy)
    checkin: CheckinPolicy = Field(default_factory=CheckinPolicy)
    tasks: dict[str, TaskReward] = Field(default_factory=dict)
    # Event type -> template id, or {"template_id", "fields", "page"}; checked by ProgramConfig.
    templates: dict[str, Any] = Field(default_factory=dict)
    coupon_gifts: CouponGifts = Field(default_factory=CouponGifts)
    risk: RiskRules = Field(default_factory=RiskRules)
    # Issue 14: paid membership plans and benefits, lotteries, referral rewards and caps.
    membership: MembershipPolicy = Field(default_factory=MembershipPolicy)
    lotteries: list[Lottery] = Field(default_factory=list)
    referral: ReferralRules = Field(default_factory=ReferralRules)
    # insight (issue 15): the RFM job's window, thresholds and named segments.
    rfm: RfmRules = Field(default_factory=RfmRules)


def program_config(settings: Settings, program_id: str) -> ProgramConfig:
    """The program's rules as cached for this container (see store/programs.py)."""
    program = store.get_program(settings, program_id)
    if program is None:
        raise NotFound("unknown program")
    return program.config


def view(settings: Settings, program_id: str) -> dict[str, Any]:
    program = store.get_program(settings, program_id, fresh=True)
    if program is None:
        raise NotFound("unknown program")
    return {"version": program.version, **program.config.model_dump(mode="json")}


def update(settings: Settings, staff: StaffPrincipal, body: ProgramRulesIn) -> dict[str, Any]:
    current = store.get_program(settings, staff.program_id, fresh=True)
    if current is None:
        raise NotFound("unknown program")
    if staff.action is not None:  # the audit log's "before" (issue 16)
        staff.action.before = {"version": current.version, **current.config.model_dump(mode="json")}
    try:
        config = ProgramConfig.model_validate({
            **body.model_dump(exclude={"version"}),
            "program_id": current.config.program_id, "appid": current.config.appid,
        })
    except ValidationError as exc:
        raise InvalidRequest(f"invalid rules: {exc.errors()[0]['msg']}", fields=[
            {"loc": [p if isinstance(p, (str, int)) else str(p) for p in err["loc"]], "message": err["msg"]}
            for err in exc.errors()[:20]]) from exc
    try:
        store.save_program(settings, config, expected_version=body.version)
    except ConditionsFailed:
        raise Conflict("the program changed since you read it; read it again", code="version_conflict") from None
    from chalicelib.services import lottery_seeds  # lazy: only a rules change needs it

    lottery_seeds.publish_seeds(settings, config)  # every lottery's seed commitment exists before it opens
    return view(settings, staff.program_id)
