"""What every endpoint answers, as pydantic models: the OpenAPI document's response schemas.

The services build plain dicts (the card in `domain/card.py`, the ledger answers in
`services/ledger.py`...); these models describe those dicts exactly, field for field, and are
used for the document and its tests only, so describing an answer never costs a Lambda anything.
`extra="forbid"` makes each schema closed: a field added to an answer without a line here fails
the response-schema tests instead of going undocumented. Integers stay integers; a field is
nullable exactly where the service can put null in it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from chalicelib.domain.program import ProgramConfig


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors ----------------------------------------------------------------------------------

class ErrorDetail(Answer):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="snake_case, e.g. `insufficient_points`.")
    message: str = Field(description="For people; never parse it.")
    request_id: str = Field(description="Also in the `X-Request-Id` header.")


class ErrorEnvelope(Answer):
    """Every error, whatever the status (../shared/API.md)."""

    error: ErrorDetail


# --- public ----------------------------------------------------------------------------------

class Health(Answer):
    status: Literal["ok"]


class Login(Answer):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    expires_in: int = Field(description="Seconds the token is valid for.")
    enrolled: bool
    member_id: str | None = Field(description="null until the WeChat user enrols.")


class OpenApiDocument(BaseModel):
    """This document (OpenAPI 3.1)."""

    model_config = ConfigDict(extra="allow")
    openapi: str


# --- the member card (domain/card.py::build_card) --------------------------------------------

class CardTier(Answer):
    code: str
    name: str
    level: int
    since: dt.datetime | None = Field(description="When the member reached it; null for the base tier.")


class Retention(Answer):
    growth_needed: int = Field(description="Growth still needed in the window to keep (保级) the tier.")


class NextTier(Answer):
    code: str
    growth_needed: int


class ExpiringPoints(Answer):
    date: dt.date = Field(description="The last day these points can be used.")
    points: int


class CardPoints(Answer):
    available: int = Field(description="Negative while refund debt exceeds the live points.")
    held: int = Field(description="Frozen by open checkout holds.")
    debt: int = Field(description="Points owed from refunds of spent points; earnings repay it first.")
    expiring: list[ExpiringPoints] = Field(description="Live lots, soonest first.")


class CardBenefit(Answer):
    code: str
    description: str


class CardCheckin(Answer):
    last_date: dt.date | None
    streak: int
    checked_in_today: bool


class MemberCard(Answer):
    member_id: str
    nickname: str | None
    birthday: dt.date | None
    tier: CardTier
    growth: int = Field(description="Growth in the program's window (lifetime if it has none).")
    growth_lifetime: int
    retention: Retention | None = Field(description="null on the base tier.")
    next_tier: NextTier | None = Field(description="null at the top tier.")
    points: CardPoints
    stored_value_fen: int
    invite_code: str
    invited_count: int
    phone: str | None = Field(description="Masked (`138****0000`), or null before binding.")
    benefits: list[CardBenefit]
    discount_pct: int = Field(description="95 means 95折 (5% off); 100 means none.")
    free_shipping_threshold_fen: int | None
    checkin: CardCheckin
    enrolled_at: dt.datetime


# --- member actions --------------------------------------------------------------------------

class CheckIn(Answer):
    date: dt.date
    streak: int
    points_awarded: int
    growth_awarded: int
    new: bool = Field(description="false for a second check-in the same day (nothing awarded).")


class Subscriptions(Answer):
    credits: dict[str, int] = Field(description="Template id -> messages the member still consents to.")


class HistoryEntry(Answer):
    id: str
    type: Literal["earn", "redeem", "hold", "release", "expire", "reverse", "adjust"]
    points: int
    balance_after: int
    growth: int
    reason: str
    ref: str | None = Field(description="The order, hold, redemption or request the change belongs to.")
    created_at: dt.datetime


class TierChange(Answer):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_tier: str = Field(alias="from")
    to: str
    direction: Literal["up", "down", "grant"]
    reason: str
    growth: int
    created_at: dt.datetime


# --- points from tills and staff (services/ledger.py) ----------------------------------------

class OrderAccrued(Answer):
    order_id: str
    member_id: str
    points_awarded: int
    growth_awarded: int
    points_balance: int


class RefundApplied(Answer):
    refund_id: str
    order_id: str
    member_id: str
    points_reversed: int
    growth_reversed: int
    points_balance: int
    points_debt: int


class AdjustmentApplied(Answer):
    member_id: str
    request_id: str
    points: int
    points_balance: int
    points_debt: int


# --- rewards and redemptions (services/rewards.py) -------------------------------------------

class Reward(Answer):
    reward_id: str
    name: str
    points_price: int
    cash_fen: int
    stock: int
    per_member_limit: int | None
    active: bool


class Redemption(Answer):
    redemption_id: str
    request_id: str
    reward_id: str
    quantity: int
    points_spent: int
    cash_fen: int
    points_balance: int
    status: Literal["redeemed"]


class RedemptionCancelled(Answer):
    redemption_id: str
    status: Literal["cancelled"]
    points_returned: int
    points_forfeited: int = Field(description="Points whose lots expired since the redemption.")
    points_balance: int


# --- checkout holds (services/holds.py) ------------------------------------------------------

class Hold(Answer):
    hold_id: str
    member_id: str
    order_id: str
    points: int
    deduction_fen: int
    status: Literal["held", "captured", "released"]
    expires_at: dt.datetime
    points_balance: int


def _no_default(schema: dict[str, Any]) -> None:
    """An optional answer field that is absent, never null: no `default: null` in its schema."""
    schema.pop("default", None)


class HoldSettled(Hold):
    # Present when this call settled the hold; a repeat may answer without it.
    points_balance: int | SkipJsonSchema[None] = Field(  # type: ignore[assignment]  # optional here
        default=None, description="The balance after the settlement; may be absent when the hold had "
        "already been settled this way.", json_schema_extra=_no_default)


# --- staff -----------------------------------------------------------------------------------

class TierGrant(Answer):
    member_id: str
    tier: str
    tier_floor: str
    tier_floor_until: dt.date


class JobRun(BaseModel):
    """A run's summary: this core, plus the job's own counters (e.g. `lots_expired`)."""

    model_config = ConfigDict(extra="allow")
    job: str
    as_of: dt.date
    complete: bool = Field(description="false: the run stopped at its deadline; run it again to resume.")
    replayed: bool = Field(description="true: this (job, as_of) had finished before; the stored summary.")


class ProgramView(ProgramConfig):
    """The program's rules as staff edit them, with the version to send back on PUT."""

    version: int


# --- webhooks --------------------------------------------------------------------------------

class WebhookCounters(Answer):
    delivered: int
    failed_attempts: int
    parked: int = Field(description="Deliveries that ran out of retries.")
    consecutive_failures: int


class Webhook(Answer):
    webhook_id: str
    url: str
    events: list[str]
    status: Literal["active", "paused"]
    paused_reason: str | None = Field(description="Why it was paused (staff resume it).")
    paused_at: str | None
    counters: WebhookCounters
    last_success_at: str | None
    last_failure_at: str | None
    last_error: str | None
    created_at: str
    secret: str | SkipJsonSchema[None] = Field(default=None, description="Only in the answer that created it.",
                                               json_schema_extra=_no_default)


class WebhookList(Answer):
    items: list[Webhook]
    next_cursor: None = Field(description="Always null: a program has at most a handful of webhooks.")


class WebhookResumed(Webhook):
    requeued: int = Field(description="Deliveries parked while it was paused, queued again.")


class WebhookDeleted(Answer):
    webhook_id: str
    deleted: bool


class DeliveryAttempt(Answer):
    at: str
    status: int | None = Field(description="The HTTP status answered; null when none came.")
    error: str | None
    ms: int


class WebhookDelivery(Answer):
    event_id: str
    webhook_id: str
    type: str
    status: Literal["pending", "delivered", "parked", "dropped"]
    attempts: int
    next_attempt_at: str | None
    park_reason: str | None
    parked_at: str | None
    delivered_at: str | None
    created_at: str
    log: list[DeliveryAttempt] = Field(description="The latest attempts, oldest first.")


class WebhookReplay(Answer):
    queued: int
    complete: bool
    resume_from: str | None = Field(description="When not complete: call again with this as `from`.")
