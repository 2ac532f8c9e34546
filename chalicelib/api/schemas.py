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
    # Built on first use (the OpenAPI document), not when a Lambda imports the routes.
    model_config = ConfigDict(extra="forbid", defer_build=True)


def _absent_not_null(schema: dict[str, Any]) -> None:
    """An optional answer field that is absent, never null: no `default: null` in its schema."""
    schema.pop("default", None)


# --- errors ----------------------------------------------------------------------------------

class FieldError(Answer):
    loc: list[str | int] = Field(description="The field's path in the body, e.g. `[\"tiers\", 0, \"name\"]`.")
    message: str


class ErrorDetail(Answer):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="snake_case, e.g. `insufficient_points`.")
    message: str = Field(description="For people; never parse it.")
    request_id: str = Field(description="Also in the `X-Request-Id` header.")
    fields: list[FieldError] | SkipJsonSchema[None] = Field(
        default=None, description="Only where a body failed validation: each field's path in the body and what "
        "is wrong with it.", json_schema_extra=_absent_not_null)


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

    model_config = ConfigDict(extra="allow", defer_build=True)
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
    pending: int = Field(description="Awarded but held back by a risk rule (review, caps, refund ratio) until "
                                     "staff release them: not spendable.")
    expiring: list[ExpiringPoints] = Field(description="Live lots, soonest first.")


class CardBenefit(Answer):
    code: str
    description: str


class CardCheckin(Answer):
    last_date: dt.date | None
    streak: int
    checked_in_today: bool


class CardMembership(Answer):
    plan_id: str
    until: dt.datetime = Field(description="When the membership ends (renewals stack after it).")
    points_multiplier_pct: int = Field(description="The membership's points multiplier; its extra adds to the "
                                                   "tier's (金卡 150 with 200 earns x2.5).")
    discount_pct: int = Field(description="The member price while it runs; the card's `discount_pct` is the "
                                          "better of this and the tier's.")


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
    coupons_unused: int = Field(description="Coupons in the wallet not used yet (see GET /v1/members/me/coupons).")
    membership: CardMembership | None = Field(description="A running paid membership (付费会员), or null.")


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
    type: Literal["earn", "redeem", "hold", "release", "expire", "reverse", "adjust", "pending", "forfeit"]
    points: int = Field(description="The change to the balance; for a `pending` row, to the pending points "
                                    "(negative: rejected).")
    pending: int = Field(description="The change to the pending points (`points.pending` on the card).")
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
    points_awarded: int = Field(description="Spendable now.")
    growth_awarded: int
    points_balance: int
    points_pending: int = Field(description="Held back by a risk rule until staff release them (card: "
                                            "`points.pending`).")
    pending_reason: Literal["review", "refund_ratio", "daily_cap", "monthly_cap"] | None = Field(
        description="Why points are pending; null when none are.")


class RefundApplied(Answer):
    refund_id: str
    order_id: str
    member_id: str
    points_reversed: int
    growth_reversed: int
    points_balance: int
    points_debt: int
    pending_reversed: int = Field(description="Taken back from the order's pending points (not the balance).")


class AdjustmentApplied(Answer):
    member_id: str
    request_id: str
    points: int
    points_balance: int
    points_debt: int


# --- rewards and redemptions (services/rewards.py) -------------------------------------------

class PayParams(Answer):
    """Exactly what `wx.requestPayment` takes (signed with the merchant key, RSA)."""

    appId: str
    timeStamp: str
    nonceStr: str
    package: str = Field(description="`prepay_id=...`")
    signType: Literal["RSA"]
    paySign: str


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
    status: Literal["redeemed", "awaiting_payment"] = Field(
        description="`awaiting_payment` for points + cash: the points are held until the cash part is paid "
                    "(then `redeemed`), or given back if it is not paid in time.")
    out_trade_no: str | SkipJsonSchema[None] = Field(
        default=None, description="Points + cash only: the cash part's WeChat Pay order.",
        json_schema_extra=_absent_not_null)
    pay_params: PayParams | SkipJsonSchema[None] = Field(
        default=None, description="Points + cash only: what wx.requestPayment takes for the cash part.",
        json_schema_extra=_absent_not_null)


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


# --- risk controls (services/pending.py, services/flags.py) ---------------------------------

class PendingEntry(Answer):
    entry_id: str = Field(description="The `id` of the history row of type `pending`.")
    member_id: str
    order_id: str | None
    rule: Literal["review", "refund_ratio", "daily_cap", "monthly_cap"]
    points: int = Field(description="As held back.")
    remaining: int = Field(description="Still pending (refunds of the order take from it).")
    status: Literal["pending", "released", "rejected"]
    auto_release_on: dt.date | None = Field(description="The day it releases itself unless rejected.")
    created_at: dt.datetime
    settled_at: dt.datetime | None
    settled_points: int | None
    settled_reason: str | None
    settled_by: str | None


class PendingSettled(Answer):
    member_id: str
    entry_id: str
    status: Literal["released", "rejected"]
    points: int = Field(description="Released into the balance, or dropped.")
    points_balance: int
    points_pending: int


class Flag(Answer):
    flag_id: str
    rule: Literal["shared_phone", "shared_device", "refund_ratio"]
    status: Literal["open", "resolved"]
    member_ids: list[str]
    evidence: dict[str, Any] = Field(description="What the rule saw when it raised the flag.")
    hits: int = Field(description="How often the rule fired for this case.")
    created_at: dt.datetime
    updated_at: dt.datetime
    resolution: Literal["confirmed", "dismissed"] | None
    resolved_reason: str | None
    resolved_by: str | None
    resolved_at: dt.datetime | None


class EvidenceRow(Answer):
    id: str
    type: str
    ref: str | None
    points: int
    pending: int
    amount_fen: int | None
    created_at: dt.datetime


class FlagMember(Answer):
    member_id: str
    nickname: str | None
    enrolled_at: dt.datetime | None
    points_balance: int | None
    points_pending: int | None
    orders: list[EvidenceRow] = Field(description="Orders of the last 30 days, newest first.")
    refunds: list[EvidenceRow] = Field(description="Refunds of the last 30 days, newest first.")


class FlagDetail(Flag):
    members: list[FlagMember] = Field(description="The members involved, with their orders and refunds.")


# --- staff -----------------------------------------------------------------------------------

class TierGrant(Answer):
    member_id: str
    tier: str
    tier_floor: str
    tier_floor_until: dt.date


class JobRun(BaseModel):
    """A run's summary: this core, plus the job's own counters (e.g. `lots_expired`)."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    job: str
    as_of: dt.date
    complete: bool = Field(description="false: the run stopped at its deadline; run it again to resume.")
    replayed: bool = Field(description="true: this (job, as_of) had finished before; the stored summary.")


class ProgramView(ProgramConfig):
    """The program's rules as staff edit them, with the version to send back on PUT."""

    version: int


# --- coupons (services/coupons.py) -----------------------------------------------------------

class _CouponRules(Answer):
    name: str
    kind: Literal["amount_off", "percent_off", "gift"]
    threshold_fen: int = Field(description="The order must reach this amount (0: any order).")
    off_fen: int | None = Field(description="amount_off: fen taken off.")
    percent: int | None = Field(description="percent_off: what the customer pays, 80 = 八折.")
    max_off_fen: int | None = Field(description="percent_off: the most it takes off.")
    gift_item: str | None = Field(description="gift: what it hands over.")
    store_ids: list[str] | None = Field(description="Where it can be used; null: every store.")


class CouponTemplate(_CouponRules):
    template_id: str
    version: int = Field(description="Send it back on the next PUT to refuse a concurrent edit.")
    valid_days: int | None
    total: int | None = Field(description="Stock; null: unlimited.")
    issued: int
    remaining: int | None
    per_member_limit: int | None
    claimable: bool
    points_price: int
    updated_at: dt.datetime


class Coupon(_CouponRules):
    coupon_id: str
    code: str = Field(description="What the till types or scans (12 characters, no look-alikes).")
    template_id: str
    status: Literal["unused", "used", "expired"]
    valid_from: dt.date
    valid_until: dt.date = Field(description="The last day it can be used (program time zone).")
    issued_at: dt.datetime
    used_at: dt.datetime | None
    order_id: str | None
    discount_fen: int | None


class CouponGrantRefusal(Answer):
    member_id: str
    code: str = Field(description="member_not_found, out_of_stock, limit_reached, not_claimable or "
                                  "template_not_found.")


class CouponGrant(Answer):
    template_id: str
    request_id: str
    granted: int
    refused: list[CouponGrantRefusal]


class CouponRedeemed(Answer):
    coupon_id: str
    code: str
    template_id: str
    name: str
    kind: Literal["amount_off", "percent_off", "gift"]
    gift_item: str | None
    order_id: str
    order_amount_fen: int
    discount_fen: int = Field(description="Never more than the order.")
    status: Literal["used"]
    used_at: dt.datetime


class CouponEvent(Answer):
    coupon_id: str
    code: str
    template_id: str
    name: str
    event: Literal["issued", "used", "voided", "expired"]
    status: Literal["unused", "used", "expired"] = Field(description="The coupon's status after it.")
    ref: str | None = Field(description="The request, order or cause.")
    discount_fen: int | None
    created_at: dt.datetime


# --- money: stored value, WeChat Pay (services/stored_value.py, services/payments.py) --------

class TopUpPlanView(Answer):
    plan_id: str
    pay_fen: int
    bonus_fen: int


class TopUp(Answer):
    top_up_id: str = Field(description="Also the WeChat Pay out_trade_no.")
    plan_id: str
    pay_fen: int
    bonus_fen: int
    pay_params: PayParams


class StoredValueEntry(Answer):
    id: str
    type: Literal["top_up", "payment", "payment_refund", "freeze", "capture", "release", "refund_pending", "refund",
                  "refund_failed", "bonus_forfeit"]
    amount_fen: int = Field(description="The change of the spendable balance (principal + bonus).")
    principal_fen: int
    bonus_fen: int
    balance_after_fen: int
    ref: str = Field(description="The top-up, payment or refund the change belongs to.")
    created_at: dt.datetime


class StoredValuePayment(Answer):
    payment_id: str
    member_id: str
    order_id: str
    amount_fen: int
    principal_fen: int = Field(description="Paid from principal (spent first).")
    bonus_fen: int = Field(description="Paid from bonus (spent last).")
    status: Literal["paid", "frozen", "released"]
    refunded_fen: int
    stored_value_fen: int = Field(description="The member's spendable stored value after this call.")


class StoredValuePaymentRefund(Answer):
    refund_id: str
    payment_id: str
    amount_fen: int
    principal_fen: int
    bonus_fen: int
    stored_value_fen: int


class TopUpRefund(Answer):
    refund_id: str = Field(description="The WeChat Pay out_refund_no (stable for this request_id).")
    top_up_id: str
    member_id: str
    refund_fen: int = Field(description="The top-up's unspent principal, paid back through WeChat Pay.")
    bonus_forfeited_fen: int
    status: Literal["pending", "succeeded", "failed"]
    stored_value_fen: int


class WechatPayReply(Answer):
    """WeChat Pay's own reply shape, for success (`SUCCESS`) and failure (`FAIL`) alike."""

    code: str
    message: str


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


# --- members' rights (issue 17) --------------------------------------------------------------

class ExportProfile(Answer):
    member_id: str
    openid: str
    unionid: str | None
    nickname: str | None
    birthday: str | None
    phone: str | None = Field(description="Unmasked: the person's own number (only ever shown here).")
    invite_code: str
    invited_by: str | None
    enrolled_at: str


class MemberExport(Answer):
    member_id: str
    exported_at: dt.datetime
    profile: ExportProfile
    items: dict[str, list[dict[str, Any]]] = Field(
        description="Item kind -> every item of that kind held about the member, each with all its attributes "
                    "(internal index keys and secrets left out). Complete: read through every page.")
    counts: dict[str, int] = Field(description="Item kind -> how many.")
    retention: dict[str, str] = Field(description="Kinds kept after an erasure (money and points records, "
                                                  "for the retention the law requires) -> what they are.")


class Erasure(Answer):
    member_id: str = Field(description="Pseudonymous from now on: nothing links it to the person any more.")
    status: Literal["erasing", "done"]
    requested_by: str = Field(description="`member`, or `staff:<key name>`.")
    requested_at: dt.datetime
    completed_at: dt.datetime | None
    summary: dict[str, Any] = Field(description="What was done: orders settled, holds released, points "
                                                "forfeited, items deleted by kind, records kept.")


class PrivacyLogEntry(Answer):
    action: Literal["export", "erasure"]
    member_id: str
    by: str = Field(description="`member`, or `staff:<key name>`.")
    outcome: str = Field(description="`completed`, or `refused:<error code>`.")
    at: dt.datetime
    items: int = Field(description="Items exported, or deleted by the erasure.")

# --- paid membership, lotteries (issue 14) ------------------------------------------------------

class MembershipPlanView(Answer):
    plan_id: str
    name: str
    days: int
    price_fen: int
    trial: bool


class MembershipView(Answer):
    plan_id: str
    until: dt.datetime


class MembershipBought(Answer):
    membership: MembershipView | SkipJsonSchema[None] = Field(
        default=None, description="A trial: the membership, active at once.", json_schema_extra=_absent_not_null)
    order_id: str | SkipJsonSchema[None] = Field(
        default=None, description="A paid plan: the WeChat Pay out_trade_no; the membership starts when it is paid.",
        json_schema_extra=_absent_not_null)
    plan_id: str | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_absent_not_null)
    price_fen: int | SkipJsonSchema[None] = Field(default=None, json_schema_extra=_absent_not_null)
    pay_params: PayParams | SkipJsonSchema[None] = Field(
        default=None, description="A paid plan: what wx.requestPayment takes.", json_schema_extra=_absent_not_null)


class LotteryPrizeWon(Answer):
    prize_id: str
    name: str
    kind: Literal["points", "coupon", "gift", "nothing"]
    points: int
    template_id: str | None


class LotteryDraw(Answer):
    draw_id: str
    lottery_id: str
    draw_number: int = Field(description="The member's n-th draw of this lottery: HMAC input `member_id:n`.")
    prize: LotteryPrizeWon | None = Field(description="null: nothing won (谢谢参与).")
    points_spent: int
    points_balance: int


class LotteryPrizeOdds(LotteryPrizeWon):
    weight: int
    stock: int | None = Field(description="null: unlimited.")
    left: int | None
    available: bool = Field(description="false: out of stock, its weight has left the table.")
    odds: str | None = Field(description="weight/total_weight of the prizes in stock now; null when out of stock.")


class LotteryPage(Answer):
    lottery_id: str
    name: str
    cost_points: int
    daily_limit: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: Literal["upcoming", "open", "ended"]
    total_weight: int
    prizes: list[LotteryPrizeOdds]
    notice: str | None = Field(description="Says which prizes ran out and that the odds changed.")
    seed_sha256: str = Field(description="SHA-256 of the server seed, published before the lottery opens.")
    seed: str | None = Field(description="The server seed (hex), once the lottery has ended.")
    fairness: str


class LotteryDrawRow(Answer):
    draw_id: str
    member_id: str
    draw_number: int
    r: int = Field(description="The number in [0, total weight of `table`) the draw read.")
    table: list[list[str | int]] = Field(description="[prize_id, weight] in stock at the draw, in order.")
    prize_id: str
    created_at: dt.datetime


# --- membership refunds (issue 14) ----------------------------------------------------------------

class MembershipRefund(Answer):
    refund_id: str = Field(description="The WeChat Pay out_refund_no (stable for this request_id).")
    order_id: str
    member_id: str
    refund_fen: int = Field(description="Unused whole days pro rata, less the coupon packs already granted.")
    unused_days: int
    deducted_fen: int = Field(description="The face value of the coupon packs granted so far.")
    status: Literal["pending", "succeeded", "failed"]
    membership_until: dt.datetime | None = Field(description="The member's membership end after the refund.")
# --- staff accounts, the audit log (issue 16) ---------------------------------------------------

class StaffLogin(Answer):
    token: str = Field(description="`Authorization: Bearer <token>` on /v1/admin/... calls.")
    expires_in: int = Field(description="Seconds the token lives.")
    role: Literal["owner", "manager", "clerk"]


class StaffUser(Answer):
    username: str
    role: Literal["owner", "manager", "clerk"]
    disabled: bool
    points_limit: int | None = Field(description="A clerk's most points in one adjustment; null for other roles.")
    created_at: str
    updated_at: str | None


class StaffList(Answer):
    items: list[StaffUser]


class AuditEntry(Answer):
    at: str
    actor: str = Field(description="The staff username, or `key:<admin key name>`.")
    role: str = Field(description="owner | manager | clerk, or `key` for an admin key.")
    method: str
    route: str
    path: str
    status: int
    error_code: str | None
    request_id: str
    body: Any = Field(description="The request body, secrets replaced by `***`.")
    before: Any = Field(description="The state before, where the route knows it.")
    after: Any = Field(description="The answer.")


# --- a job run's progress (issue 16, second pass: the console watches a run) -----------------

class JobRunProgress(Answer):
    """A run's record as the runner saved it after its last page."""

    job: str
    as_of: dt.date
    status: Literal["none", "running", "done"] = Field(
        description="none: never started; running: started, not finished (working, or stopped part-way); done.")
    summary: dict[str, Any] = Field(description="The counters so far (the final summary once done).")
    pages: int = Field(description="Pages saved so far (runs that began before pages were counted: 0).")
    invocations: int = Field(description="Invocations that have worked the run (a resumed run: more than 1).")
    working: bool = Field(description="true: an invocation holds the run now.")
    started_at: str | None
    saved_at: str | None = Field(description="When the last page was saved.")
    finished_at: str | None
