"""PynamoDB models for the one table. Keys come from `keys.py`; the table itself from `schema.py`.

PynamoDB reads ``Meta.host``/``Meta.region`` when this module is imported, so settings must be
in the environment first (the app, the local stack and the test fixtures all make sure of it).
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    DiscriminatorAttribute,
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.settings import get_table_settings
from chalicelib.store import schema

_settings = get_table_settings()


class _Meta:
    table_name = _settings.table_name
    region = _settings.region
    host = _settings.dynamodb_endpoint
    # Lambda reuses connections; keep retries low so throttling surfaces as 503 retry_later fast.
    max_retry_attempts = 2
    connect_timeout_seconds = 2
    read_timeout_seconds = 5


class Gsi1(GlobalSecondaryIndex["TableItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = schema.GSI1
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex["TableItem"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = schema.GSI2
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class TableItem(Model):
    """Every item in the table; `kind` says which entity it is."""

    Meta = _Meta  # type: ignore[assignment]  # a plain class is what PynamoDB reads

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    ttl = TTLAttribute(null=True)

    gsi1 = Gsi1()
    gsi2 = Gsi2()

    @classmethod
    def _get_connection(cls) -> Any:
        """One connection (one botocore client) for every kind: they all live in the same table
        with the same keys and indexes. PynamoDB would otherwise cache one per model class that
        happens to be used first, each building its own client on a cold start."""
        if cls is TableItem:
            return super()._get_connection()
        return TableItem._get_connection()


class ProgramItem(TableItem, discriminator="program"):
    config = JSONAttribute()
    wechat_secret_enc = UnicodeAttribute()
    version = NumberAttribute(default=1)
    updated_at = UnicodeAttribute()
    # No lot of the program can expire before this day: where the expiry job's first run starts.
    created_on = UnicodeAttribute(null=True)
    # Every expiry day up to this one has been processed (an optimisation: processed days hold
    # no lots any more, so reading one again costs only empty queries).
    expired_through = UnicodeAttribute(null=True)


class AppIdItem(TableItem, discriminator="appid"):
    program_id = UnicodeAttribute()


class AdminKeyItem(TableItem, discriminator="admin_key"):
    program_id = UnicodeAttribute()
    name = UnicodeAttribute()
    created_at = UnicodeAttribute()


class TillKeyItem(TableItem, discriminator="till_key"):
    program_id = UnicodeAttribute()
    store_id = UnicodeAttribute(null=True)
    secret_enc = UnicodeAttribute()
    created_at = UnicodeAttribute()


class StaffUserItem(TableItem, discriminator="staff_user"):
    """A merchant staff member who logs in with a name and password (keys.staff_user)."""

    program_id = UnicodeAttribute()
    username = UnicodeAttribute()
    password_hash = UnicodeAttribute()  # argon2id, PHC string ($argon2id$v=19$...)
    role = UnicodeAttribute()  # owner | manager | clerk
    disabled = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    # issue 16: the most a clerk may adjust in one request (None: no limit; owner and manager)
    points_limit = NumberAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


class NonceItem(TableItem, discriminator="nonce"):
    seen_at = NumberAttribute()


class WechatUserItem(TableItem, discriminator="wechat_user"):
    program_id = UnicodeAttribute()
    openid = UnicodeAttribute()
    unionid = UnicodeAttribute(null=True)
    session_key_enc = UnicodeAttribute(null=True)
    member_id = UnicodeAttribute(null=True)
    last_login_at = UnicodeAttribute()


class IdentityItem(TableItem, discriminator="identity"):
    member_id = UnicodeAttribute()


class AccountItem(TableItem, discriminator="account"):
    """The member's balances: the one item every balance change conditions on (`version`)."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    points = NumberAttribute(default=0)  # the ledger sum: live lots - debt
    held = NumberAttribute(default=0)
    debt = NumberAttribute(default=0)
    growth = NumberAttribute(default=0)  # lifetime growth
    growth_months = JSONAttribute(default=dict)  # {"YYYY-MM": growth earned that month}
    tier = UnicodeAttribute()
    tier_since = UnicodeAttribute(null=True)
    # A staff grant: the review never drops the member below this tier until the date.
    tier_floor = UnicodeAttribute(null=True)
    tier_floor_until = UnicodeAttribute(null=True)
    grace_until = UnicodeAttribute(null=True)
    last_review = UnicodeAttribute(null=True)  # as_of of the last review that looked at this member
    last_active_on = UnicodeAttribute(null=True)  # last day with a member-initiated points change
    stored_value_fen = NumberAttribute(default=0)
    # Points held back by a risk rule (review, caps, refund ratio): not spendable, in no lot.
    pending = NumberAttribute(null=True)
    # The risk rules' per-member counters (domain/risk.py Counters, short names).
    risk = JSONAttribute(null=True)
    version = NumberAttribute(default=0)
    updated_at = UnicodeAttribute()
    # Paid membership (issue 14): the current end (ISO date-time) and the plan that set it, moved in the
    # same transaction as the entitlement row (MembershipItem); segments read these two names.
    membership_until = UnicodeAttribute(null=True)
    membership_plan_id = UnicodeAttribute(null=True)


class ProfileItem(TableItem, discriminator="profile"):
    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    openid = UnicodeAttribute()
    unionid = UnicodeAttribute(null=True)
    nickname = UnicodeAttribute(null=True)
    birthday = UnicodeAttribute(null=True)
    invite_code = UnicodeAttribute()
    invited_by = UnicodeAttribute(null=True)
    invited_count = NumberAttribute(default=0)
    phone_enc = UnicodeAttribute(null=True)
    phone_hash = UnicodeAttribute(null=True)
    phone_masked = UnicodeAttribute(null=True)
    enrolled_at = UnicodeAttribute()
    # Counts the member's own changes (nickname, birthday, phone): names each member.updated event.
    revision = NumberAttribute(default=0)


class LotItem(TableItem, discriminator="lot"):
    """Points that expire on one day. gsi2 (the expiry queue) is set only while points remain."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    expires_on = UnicodeAttribute()
    remaining = NumberAttribute(default=0)
    earned = NumberAttribute(default=0)


class ReferralItem(TableItem, discriminator="referral"):
    invitee_id = UnicodeAttribute()
    created_at = UnicodeAttribute()


class LedgerItem(TableItem, discriminator="ledger"):
    """One change of a member's points: immutable history, written once and never updated.
    Its key is the caller's idempotency key where there is one, so it also carries that key's
    record (`request_hash`, `response`: see services/idempotency.py)."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    type = UnicodeAttribute()
    points = NumberAttribute()
    balance_after = NumberAttribute()
    growth = NumberAttribute(default=0)
    reason = UnicodeAttribute()
    ref = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    # A fingerprint of the request that made this row: same key + other body = 409.
    request_hash = UnicodeAttribute(null=True)
    # The first answer, returned again on replay; and kind-specific facts (draws, amounts).
    response = JSONAttribute(null=True)
    detail = JSONAttribute(null=True)
    # What the change did to the pending bucket (absent: nothing).
    pending = NumberAttribute(null=True)


class OrderItem(LedgerItem, discriminator="order"):
    """A paid order: the ledger row of its accrual (immutable). What was refunded of it lives
    on its own item (`OrderTotalsItem`)."""

    amount_fen = NumberAttribute()


class OrderTotalsItem(TableItem, discriminator="order_totals"):
    """What has been refunded of one order so far; every refund moves it under a condition on
    what was read, so refunds of one order never add up past it."""

    refunded_fen = NumberAttribute(default=0)
    points_reversed = NumberAttribute(default=0)
    growth_reversed = NumberAttribute(default=0)
    refund_count = NumberAttribute(default=0)
    # Of the order's pending points, how many refunds have taken back so far.
    pending_reversed = NumberAttribute(null=True)


class IdempotencyItem(TableItem, discriminator="idempotency"):
    """The record of a caller's key for an operation whose own items are not keyed by it:
    the request's fingerprint and the first answer. Written in the same transaction as the
    effect, guarded by not existing."""

    request_hash = UnicodeAttribute()
    response = JSONAttribute()
    created_at = UnicodeAttribute()


class HoldItem(TableItem, discriminator="hold"):
    """A checkout hold: points frozen against an order until captured or released.

    Two index slots, two queues: gsi1 lists the member's holds (reconciliation sums the open
    ones), gsi2 is the due queue the frequent job reads while the hold is open."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    hold_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    points = NumberAttribute()
    deduction_fen = NumberAttribute()
    status = UnicodeAttribute()  # held | captured | released
    expires_at = UnicodeAttribute()
    draws = JSONAttribute()  # [[expires_on, points]]: the lots a release gives back to
    created_at = UnicodeAttribute()
    settled_at = UnicodeAttribute(null=True)
    settled_balance = NumberAttribute(null=True)  # the member's points after settling
    request_hash = UnicodeAttribute()
    response = JSONAttribute()


class RedemptionItem(TableItem, discriminator="redemption"):
    """A member's redemption of a reward; cancelling it changes its status (and writes a ledger
    row of its own)."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    redemption_id = UnicodeAttribute()
    reward_id = UnicodeAttribute()
    reward_name = UnicodeAttribute()
    quantity = NumberAttribute()
    points_spent = NumberAttribute()
    cash_fen = NumberAttribute(default=0)
    limited = NumberAttribute(default=0)  # 1: counts against the reward's per-member limit
    status = UnicodeAttribute()  # redeemed | cancelled
    draws = JSONAttribute()  # [[expires_on, points]]: the lots a cancellation gives back to
    created_at = UnicodeAttribute()
    cancelled_at = UnicodeAttribute(null=True)
    request_hash = UnicodeAttribute()
    response = JSONAttribute()


class JobRunItem(TableItem, discriminator="job_run"):
    """One run of a job for (program, job, as_of): its saved progress and summary."""

    status = UnicodeAttribute()  # running | done
    state = JSONAttribute(default=dict)
    summary = JSONAttribute(default=dict)
    started_at = UnicodeAttribute()
    finished_at = UnicodeAttribute(null=True)
    invocations = NumberAttribute(default=0)
    # The claim (jobs.py): who works the run and until when. Every save is conditional on it, so
    # two invocations never work the same run; a holder that died is replaced once it expires.
    lease_owner = UnicodeAttribute(null=True)
    lease_until = UnicodeAttribute(null=True)
    # Progress a watcher reads (GET /v1/admin/jobs/{job}/runs/{as_of}): pages saved, last save.
    pages = NumberAttribute(default=0)
    saved_at = UnicodeAttribute(null=True)


class RewardItem(TableItem, discriminator="reward"):
    program_id = UnicodeAttribute()
    reward_id = UnicodeAttribute()
    name = UnicodeAttribute()
    points_price = NumberAttribute()
    cash_fen = NumberAttribute(default=0)
    stock = NumberAttribute()
    per_member_limit = NumberAttribute(null=True)
    active = NumberAttribute(default=1)
    updated_at = UnicodeAttribute()


class RewardLimitItem(TableItem, discriminator="reward_limit"):
    """How many of a limited reward one member holds (redeemed minus cancelled)."""

    # `count` in the table; not the Python name, which would hide Model.count.
    redeemed = NumberAttribute(default=0, attr_name="count")


class CheckinStateItem(TableItem, discriminator="checkin_state"):
    """The member's last check-in day and streak (in the card partition)."""

    last_date = UnicodeAttribute()
    streak = NumberAttribute()


class TierChangeItem(TableItem, discriminator="tier_change"):
    """A tier move (upgrade, review drop, staff grant): the history row and the event that
    notifications react to. Keyed so the same move is written once."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    from_tier = UnicodeAttribute()
    to_tier = UnicodeAttribute()
    direction = UnicodeAttribute()  # up | down | grant
    reason = UnicodeAttribute()
    growth = NumberAttribute()
    created_at = UnicodeAttribute()


class TieredMemberItem(TableItem, discriminator="tiered_member"):
    """Present while a member is above the base tier: the review reads only these (gsi2)."""

    member_id = UnicodeAttribute()
    tier = UnicodeAttribute()


class ReminderItem(TableItem, discriminator="expiry_reminder"):
    """One member's expiry reminder for one day: every lot reaching a reminder offset that day,
    and their total. The notification fan-out sends it."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    day = UnicodeAttribute()
    lots = JSONAttribute()  # [{"date", "points", "days_left"}], soonest first
    points = NumberAttribute()
    created_at = UnicodeAttribute()


class WinbackItem(TableItem, discriminator="winback"):
    """A member dormant since `last_active`: queued once for a win-back message."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    last_active = UnicodeAttribute()
    days_idle = NumberAttribute()
    created_at = UnicodeAttribute()


class SubscriptionItem(TableItem, discriminator="subscription"):
    """Send credits for one template: each acceptance in wx.requestSubscribeMessage adds one,
    each message sent takes one."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    template_id = UnicodeAttribute()
    credits = NumberAttribute(default=0)


class NotificationItem(TableItem, discriminator="notification"):
    """One message to send. Keyed by the event it comes from, so an event makes one job."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    event = UnicodeAttribute()
    template_id = UnicodeAttribute()
    data = JSONAttribute()
    page = UnicodeAttribute(null=True)
    status = UnicodeAttribute()  # queued | sending | sent | dropped
    reason = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)


class WebhookItem(TableItem, discriminator="webhook"):
    """A merchant's endpoint: where events go, which ones, the signing secret (encrypted, bound
    to this item's key), whether it is paused and why, and its counters."""

    program_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    url = UnicodeAttribute()
    events = JSONAttribute()  # [event type]
    secret_enc = UnicodeAttribute()
    status = UnicodeAttribute()  # active | paused
    paused_reason = UnicodeAttribute(null=True)
    paused_at = UnicodeAttribute(null=True)
    delivered = NumberAttribute(default=0)  # deliveries acknowledged
    failed_attempts = NumberAttribute(default=0)
    parked = NumberAttribute(default=0)  # deliveries that ran out of retries
    consecutive_failures = NumberAttribute(default=0)
    failing_since = UnicodeAttribute(null=True)
    last_success_at = UnicodeAttribute(null=True)
    last_failure_at = UnicodeAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()


class WebhookCountItem(TableItem, discriminator="webhook_count"):
    """How many endpoints a program has: created and deleted under a condition on it."""

    endpoints = NumberAttribute(default=0)


class WebhookEventItem(TableItem, discriminator="webhook_event"):
    """One event, keyed by the table change it comes from (written once); `body` is the exact
    JSON every delivery of it sends. gsi1: the program's events by time."""

    program_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    type = UnicodeAttribute()
    member_id = UnicodeAttribute()
    sequence = NumberAttribute()
    body = UnicodeAttribute()
    created_at = UnicodeAttribute()


class WebhookDeliveryItem(TableItem, discriminator="webhook_delivery"):
    """One event to one endpoint. pending (gsi2: the due queue, at its next attempt) ->
    delivered | parked (gsi1: the endpoint's parked list) | dropped (the endpoint was deleted)."""

    program_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    type = UnicodeAttribute()
    body = UnicodeAttribute()
    status = UnicodeAttribute()
    attempts = NumberAttribute(default=0)  # every attempt ever made
    round_attempts = NumberAttribute(default=0)  # failed attempts since created or replayed (the schedule)
    next_attempt_at = UnicodeAttribute(null=True)
    park_reason = UnicodeAttribute(null=True)  # retries_exhausted | endpoint_paused
    log = JSONAttribute(default=list)  # the latest attempts: [{"at", "status", "error", "ms"}]
    created_at = UnicodeAttribute()
    delivered_at = UnicodeAttribute(null=True)
    parked_at = UnicodeAttribute(null=True)


class WebhookSequenceItem(TableItem, discriminator="webhook_sequence"):
    """The member's last event sequence number (receivers drop events older than one seen)."""

    last = NumberAttribute(default=0)


class PendingItem(TableItem, discriminator="pending"):
    """Points held back by a risk rule: pending -> released | rejected. Keyed by the entry id of
    its ledger row (type `pending`), which is what staff name to release or reject it.

    Two index slots, two queues, both only while pending: gsi1 the program's review queue,
    gsi2 the auto-release day queue (review-sized orders)."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    order_id = UnicodeAttribute(null=True)
    rule = UnicodeAttribute()  # review | refund_ratio | daily_cap | monthly_cap
    points = NumberAttribute()  # as awarded pending
    remaining = NumberAttribute()  # what is still pending (refunds take from it)
    status = UnicodeAttribute()  # pending | released | rejected
    auto_release_on = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    settled_at = UnicodeAttribute(null=True)
    settled_points = NumberAttribute(null=True)
    settled_reason = UnicodeAttribute(null=True)
    settled_by = UnicodeAttribute(null=True)


class TillRateItem(TableItem, discriminator="till_rate"):
    """One till key's orders in one UTC hour: an attribute per minute (`m00`..`m59`, orders) and
    the hour's amount. Raised under conditions in the accrual's transaction (domain/risk.py)."""

    key_id = UnicodeAttribute(null=True)
    amount_fen = NumberAttribute(null=True)


class SightingItem(TableItem, discriminator="sighting"):
    """The members seen behind one phone number or device id (keyed by its keyed hash)."""

    program_id = UnicodeAttribute()
    what = UnicodeAttribute()  # phone | device
    member_ids = UnicodeSetAttribute(null=True)


class FlagItem(TableItem, discriminator="flag"):
    """A case for staff: open -> resolved. gsi1 is the program's queue of its status."""

    program_id = UnicodeAttribute()
    flag_id = UnicodeAttribute()
    rule = UnicodeAttribute()  # shared_phone | shared_device | refund_ratio
    status = UnicodeAttribute()  # open | resolved
    member_ids = JSONAttribute(default=list)
    evidence = JSONAttribute(default=dict)
    hits = NumberAttribute(default=1)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    resolution = UnicodeAttribute(null=True)  # confirmed | dismissed
    resolved_reason = UnicodeAttribute(null=True)
    resolved_by = UnicodeAttribute(null=True)
    resolved_at = UnicodeAttribute(null=True)


class CouponTemplateItem(TableItem, discriminator="coupon_template"):
    """A coupon template: its rules (domain/coupons.py CouponRules as JSON), its version, and the
    stock counter every issue moves under a condition (`issued < total`)."""

    program_id = UnicodeAttribute()
    template_id = UnicodeAttribute()
    rules = JSONAttribute()
    version = NumberAttribute(default=1)
    total = NumberAttribute(null=True)  # None: unlimited
    issued = NumberAttribute(default=0)
    per_member_limit = NumberAttribute(null=True)
    claimable = NumberAttribute(default=0)
    points_price = NumberAttribute(default=0)
    updated_at = UnicodeAttribute()


class CouponTemplateVersionItem(TableItem, discriminator="coupon_template_version"):
    """The rules of one version of a template, kept as written (audit; coupons copy their own)."""

    template_id = UnicodeAttribute()
    version = NumberAttribute()
    rules = JSONAttribute()
    total = NumberAttribute(null=True)
    per_member_limit = NumberAttribute(null=True)
    claimable = NumberAttribute(default=0)
    points_price = NumberAttribute(default=0)
    updated_at = UnicodeAttribute()
    updated_by = UnicodeAttribute(null=True)


class CouponItem(TableItem, discriminator="coupon"):
    """One coupon in a member's wallet, keyed by its code; status unused -> used -> (voided) unused,
    or -> expired. It carries a copy of its template's rules.

    Two index slots: gsi1 lists the member's coupons of its status by last valid day (the
    wallet); gsi2 is the expiry day queue, set only while the coupon is unused."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    coupon_id = UnicodeAttribute()
    code = UnicodeAttribute()
    template_id = UnicodeAttribute()
    template_version = NumberAttribute()
    rules = JSONAttribute()
    valid_from = UnicodeAttribute()
    valid_until = UnicodeAttribute()
    status = UnicodeAttribute()  # unused | used | expired
    channel = UnicodeAttribute()  # claim | grant | gift
    cause = UnicodeAttribute()  # the request or event it was issued for
    issued_at = UnicodeAttribute()
    used_at = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    discount_fen = NumberAttribute(null=True)
    used_store_id = UnicodeAttribute(null=True)
    changed_at = UnicodeAttribute()


class CouponWalletItem(TableItem, discriminator="coupon_wallet"):
    """How many unused coupons the member holds: moved in the same transaction as every coupon
    change, and read with the card (its sort key starts with A#)."""

    unused = NumberAttribute(default=0)


class CouponLimitItem(TableItem, discriminator="coupon_limit"):
    """How many coupons of one limited template the member has been issued (never goes down)."""

    issued = NumberAttribute(default=0)


class CouponEventItem(TableItem, discriminator="coupon_event"):
    """One change of a coupon's state (issued, used, voided, expired): immutable history."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    coupon_id = UnicodeAttribute()
    code = UnicodeAttribute()
    template_id = UnicodeAttribute()
    name = UnicodeAttribute()
    event = UnicodeAttribute()  # issued | used | voided | expired
    status = UnicodeAttribute()  # the coupon's status after it
    ref = UnicodeAttribute(null=True)  # the request, order or cause
    discount_fen = NumberAttribute(null=True)
    created_at = UnicodeAttribute()


# --- money -----------------------------------------------------------------------------------
# None of these has a TTL: records of top-ups, payments and refunds are kept for years.

class StoredValueItem(TableItem, discriminator="stored_value"):
    """A member's stored value (储值), apart from the points account: money and points never share
    a version. Principal (paid in) and bonus (given) are separate buckets; `frozen_*` is money
    set aside for a two-step till payment or a pending refund: not spendable, still the member's."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    principal = NumberAttribute(default=0)
    bonus = NumberAttribute(default=0)
    frozen_principal = NumberAttribute(default=0)
    frozen_bonus = NumberAttribute(default=0)
    version = NumberAttribute(default=0)
    updated_at = UnicodeAttribute()


class StoredValueEntryItem(TableItem, discriminator="sv_entry"):
    """One change of a member's stored value: immutable history with the balance after it."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    type = UnicodeAttribute()  # top_up | payment | payment_refund | freeze | capture | release | refund_pending | refund | refund_failed
    amount_fen = NumberAttribute()  # the change of the spendable balance (principal + bonus)
    principal_fen = NumberAttribute()
    bonus_fen = NumberAttribute()
    balance_after_fen = NumberAttribute()
    principal_after_fen = NumberAttribute()
    bonus_after_fen = NumberAttribute()
    # The change of what the program owes the member (frozen money included): the liability.
    owed_principal_fen = NumberAttribute(default=0)
    owed_bonus_fen = NumberAttribute(default=0)
    ref = UnicodeAttribute()
    day = UnicodeAttribute()  # the program's calendar day
    created_at = UnicodeAttribute()


class PayOrderItem(TableItem, discriminator="pay_order"):
    """A WeChat Pay order we created: status pending -> paid | closed. A top-up's also carries
    what has been refunded of it. gsi1: the program's orders by day (reconciliation); gsi2: the
    due queue (query, then close) while pending."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    out_trade_no = UnicodeAttribute()
    purpose = UnicodeAttribute()  # top_up | reward
    ref = UnicodeAttribute()  # the plan id, or the redemption id
    status = UnicodeAttribute()  # pending | paid | closed
    total_fen = NumberAttribute()
    bonus_fen = NumberAttribute(default=0)
    appid = UnicodeAttribute()
    openid = UnicodeAttribute()
    prepay_id = UnicodeAttribute(null=True)  # set once WeChat Pay answered
    created_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    paid_at = UnicodeAttribute(null=True)
    closed_at = UnicodeAttribute(null=True)
    transaction_id = UnicodeAttribute(null=True)
    refunded_fen = NumberAttribute(default=0)  # principal refunded or being refunded
    forfeited_bonus_fen = NumberAttribute(default=0)
    refund_count = NumberAttribute(default=0)
    request_hash = UnicodeAttribute()
    response = JSONAttribute(null=True)  # the first answer (pay_params), once WeChat Pay answered
    days = NumberAttribute(null=True)  # a membership order: the plan's days as sold (issue 14)


class PayRefundItem(TableItem, discriminator="pay_refund"):
    """A refund through WeChat Pay: pending -> succeeded | failed. Its money stays frozen in the
    member's stored value while pending; gsi2 is the query queue while pending."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    out_refund_no = UnicodeAttribute()
    out_trade_no = UnicodeAttribute()
    refund_fen = NumberAttribute()
    total_fen = NumberAttribute()
    forfeit_bonus_fen = NumberAttribute()
    status = UnicodeAttribute()  # pending | succeeded | failed
    created_at = UnicodeAttribute()
    settled_at = UnicodeAttribute(null=True)
    request_hash = UnicodeAttribute()
    response = JSONAttribute()
    # A membership order's refund (issue 14): purpose "membership" (None: a top-up's), and the
    # entitlement's end before (`cut_from`) and after (`cut_to`) it was cut, to restore on failure.
    purpose = UnicodeAttribute(null=True)
    cut_from = UnicodeAttribute(null=True)
    cut_to = UnicodeAttribute(null=True)
    unused_days = NumberAttribute(null=True)
    deducted_fen = NumberAttribute(null=True)


class StoredValuePaymentItem(TableItem, discriminator="sv_payment"):
    """A till's payment with stored value: paid, or frozen -> paid (captured) | released.
    `refunded_*` are cumulative: refunds never add up past the payment."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    payment_id = UnicodeAttribute()
    order_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    principal_fen = NumberAttribute()
    bonus_fen = NumberAttribute()
    status = UnicodeAttribute()  # paid | frozen | released
    refunded_fen = NumberAttribute(default=0)
    refunded_principal_fen = NumberAttribute(default=0)
    refunded_bonus_fen = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    settled_at = UnicodeAttribute(null=True)
    request_hash = UnicodeAttribute()
    response = JSONAttribute()
    settled_response = JSONAttribute(null=True)  # the capture's or release's answer: settling again answers it


class StoredValuePaymentRefundItem(TableItem, discriminator="sv_payment_refund"):
    """A refund of a till payment back to stored value (keyed by the till's refund_id)."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    payment_id = UnicodeAttribute()
    refund_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    principal_fen = NumberAttribute()
    bonus_fen = NumberAttribute()
    created_at = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    response = JSONAttribute()


class LiabilityItem(TableItem, discriminator="liability"):
    """Stored value owed to members at the end of a program day (frozen money included)."""

    program_id = UnicodeAttribute()
    day = UnicodeAttribute()
    principal_fen = NumberAttribute()
    bonus_fen = NumberAttribute()
    created_at = UnicodeAttribute()


# --- members' rights (issue 17: export, erasure) ---------------------------------------------

class PayOrderRefItem(TableItem, discriminator="pay_order_ref"):
    """Names one of the member's WeChat Pay orders from the member's partition, so export and
    erasure find them (pending ones included) without reading every program day."""

    out_trade_no = UnicodeAttribute()
    created_at = UnicodeAttribute()


class ErasureItem(TableItem, discriminator="erasure"):
    """A member's erasure: erasing -> done. Written before the first erasing step, so a crash half
    way is resumed by asking again; while it exists the member's tokens are refused. Holds no
    personal data: the member id (pseudonymous once erased), who asked, when, what was done."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    status = UnicodeAttribute()  # erasing | done
    requested_by = UnicodeAttribute()  # member | staff:<key name>
    requested_at = UnicodeAttribute()
    completed_at = UnicodeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    summary = JSONAttribute(null=True)  # counts per step


class PrivacyLogItem(TableItem, discriminator="privacy_log"):
    """One export or erasure: when, by whom, of which member id, whether it completed."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    action = UnicodeAttribute()  # export | erasure
    by = UnicodeAttribute()
    outcome = UnicodeAttribute()  # completed | refused:<code>
    at = UnicodeAttribute()
    items = NumberAttribute(default=0)
# --- paid membership, lotteries, referral caps (issue 14) -----------------------------------------

class MembershipItem(TableItem, discriminator="membership"):
    """One entitlement of a paid membership (start, end, source), written once per source (a trial,
    or a paid order's out_trade_no) in the transaction that moves the account's `membership_until`.
    gsi2: the reminder queue (the day to remind on); gsi1: the coupon-pack queue (next pack's day)."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    source = UnicodeAttribute()  # trial | order
    source_id = UnicodeAttribute()  # "trial" or the out_trade_no
    starts_at = UnicodeAttribute()
    ends_at = UnicodeAttribute()
    price_fen = NumberAttribute(default=0)
    packs_issued = NumberAttribute(default=0)
    status = UnicodeAttribute(default="active")  # active | refunded
    created_at = UnicodeAttribute()
    # Set by a staff refund (the history of it): the refund's out_refund_no, when, and the days cut.
    refund_id = UnicodeAttribute(null=True)
    refunded_at = UnicodeAttribute(null=True)
    refunded_days = NumberAttribute(null=True)


class TrialClaimItem(TableItem, discriminator="trial_claim"):
    """A person's one free trial: keyed by unionid/openid and by member (conditional puts); erased
    with the member."""

    member_id = UnicodeAttribute()
    claimed_at = UnicodeAttribute()


class TrialPhoneClaimItem(TableItem, discriminator="trial_phone"):
    """The same trial's guard by the phone's keyed HMAC: the one anti-abuse record an erasure keeps
    (the README's privacy section), so a person cannot take a second trial with a new account."""

    member_id = UnicodeAttribute()
    claimed_at = UnicodeAttribute()


class LotterySeedItem(TableItem, discriminator="lottery_seed"):
    """The lottery's server seed, encrypted; its SHA-256 is published before the lottery opens."""

    program_id = UnicodeAttribute()
    lottery_id = UnicodeAttribute()
    seed_enc = UnicodeAttribute()
    seed_sha256 = UnicodeAttribute()
    created_at = UnicodeAttribute()


class LotteryPrizeItem(TableItem, discriminator="lottery_prize"):
    """Stock left of one prize with a stock; a draw takes one with `left >= 1` as its condition."""

    program_id = UnicodeAttribute()
    lottery_id = UnicodeAttribute()
    prize_id = UnicodeAttribute()
    stock = NumberAttribute()
    left = NumberAttribute()


class LotteryMemberItem(TableItem, discriminator="lottery_member"):
    """A member's draws in one lottery: the count (the next draw's number) and today's count."""

    draws = NumberAttribute(default=0)
    day = UnicodeAttribute(null=True)
    day_count = NumberAttribute(default=0)


class LotteryDrawItem(TableItem, discriminator="lottery_draw"):
    """One draw, keyed by the caller's request_id (its record: request_hash, response); immutable.
    `table` is the prize table in stock it drew against, so anyone can recompute it from the seed."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    lottery_id = UnicodeAttribute()
    draw_id = UnicodeAttribute()
    draw_number = NumberAttribute()
    r = NumberAttribute()
    table = JSONAttribute()
    prize_id = UnicodeAttribute()
    prize_kind = UnicodeAttribute()
    template_id = UnicodeAttribute(null=True)
    points_spent = NumberAttribute()
    points_won = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    response = JSONAttribute()


class ReferralRewardItem(TableItem, discriminator="referral_reward"):
    """The reward of one referral (in the inviter's partition): its status paid | capped | refused
    is set once (conditional on not being set); a reversal moves paid -> reversed."""

    invitee_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    reward_status = UnicodeAttribute(null=True)
    reward_reason = UnicodeAttribute(null=True)
    trigger_ref = UnicodeAttribute(null=True)  # "enrolment" or the invitee's order id
    rewarded_at = UnicodeAttribute(null=True)
    inviter_points = NumberAttribute(null=True)
    invitee_points = NumberAttribute(null=True)
    reversed_at = UnicodeAttribute(null=True)


class ReferralCapItem(TableItem, discriminator="referral_cap"):
    """Invitees rewarded for one inviter in one day or month (ADD 1 under `rewarded < cap`)."""

    rewarded = NumberAttribute(default=0)
# --- staff accounts and the audit log (issue 16) -----------------------------------------------

class LoginGuardItem(TableItem, discriminator="login_guard"):
    """Failed staff logins of one account or one address (keys.login_guard): a counter over a
    window, and the time a lock-out ends once it reached the limit."""

    failures = NumberAttribute(default=0)
    window_until = NumberAttribute(default=0)  # unix seconds
    locked_until = NumberAttribute(default=0)  # unix seconds


class AuditItem(TableItem, discriminator="audit"):
    """One staff action, written once and never changed (append-only: no code updates or
    deletes it). Newest first through the partition's sort key (keys.audit_entry)."""

    program_id = UnicodeAttribute()
    at = UnicodeAttribute()
    actor = UnicodeAttribute()  # the staff username, or `key:<admin key name>`
    role = UnicodeAttribute()  # owner | manager | clerk | key
    method = UnicodeAttribute()
    route = UnicodeAttribute()  # the route's template, e.g. /v1/admin/program
    path = UnicodeAttribute()
    status = NumberAttribute()
    error_code = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute()
    body = JSONAttribute(null=True)  # the request, secrets removed
    before = JSONAttribute(null=True)
    after = JSONAttribute(null=True)


# --- insight: daily counters, tags, RFM, segments, campaigns (issue 15) ----------------------

class DayCounterItem(TableItem, discriminator="day_counter"):
    """One shard of one program day's counters (domain/analytics.py COUNTERS): every counted
    change ADDs to the shard its identity hashes to, so no item takes more than its share."""

    program_id = UnicodeAttribute()
    day = UnicodeAttribute()
    new_members = NumberAttribute(null=True)
    active_members = NumberAttribute(null=True)
    checkins = NumberAttribute(null=True)
    orders = NumberAttribute(null=True)
    gross_sales_fen = NumberAttribute(null=True)
    refunds_fen = NumberAttribute(null=True)
    refunds = NumberAttribute(null=True)
    points_issued = NumberAttribute(null=True)
    points_redeemed = NumberAttribute(null=True)
    points_expired = NumberAttribute(null=True)
    points_reversed = NumberAttribute(null=True)
    points_deducted = NumberAttribute(null=True)
    points_net = NumberAttribute(null=True)
    coupons_issued = NumberAttribute(null=True)
    coupons_used = NumberAttribute(null=True)
    coupons_expired = NumberAttribute(null=True)
    sv_principal_fen = NumberAttribute(null=True)
    sv_bonus_fen = NumberAttribute(null=True)


class CountedItem(TableItem, discriminator="counted"):
    """A change already counted into the day counters (written in the same transaction): the
    stream may deliver it again within 24 hours, so it lives a few days (TTL)."""

    day = UnicodeAttribute()


class ActiveMarkItem(TableItem, discriminator="active_mark"):
    """The member was active on the day (counted once into `active_members`)."""

    day = UnicodeAttribute()


class DaySummaryItem(TableItem, discriminator="day_summary"):
    """A closed day: the sum of its counter shards, written by the daily `daily-report` job.
    The program's summaries share a partition (one write a day), read by the report in one Query."""

    program_id = UnicodeAttribute()
    day = UnicodeAttribute()
    counts = JSONAttribute()
    closed_at = UnicodeAttribute()


class TagsItem(TableItem, discriminator="member_tags"):
    """A member's tags: staff's own (`manual`) apart from those jobs compute (`computed`)."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    manual = UnicodeSetAttribute(null=True)
    computed = UnicodeSetAttribute(null=True)
    updated_at = UnicodeAttribute()


class RfmItem(TableItem, discriminator="rfm"):
    """A member's RFM scores as of a day (the nightly `rfm` job), with the raw figures."""

    program_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    as_of = UnicodeAttribute()
    r = NumberAttribute()
    f = NumberAttribute()
    m = NumberAttribute()
    segment = UnicodeAttribute(null=True)
    recency_days = NumberAttribute()
    frequency = NumberAttribute()
    monetary_fen = NumberAttribute()


class SegmentItem(TableItem, discriminator="segment"):
    """A named segment's rules (domain/segments.py SegmentRules as JSON)."""

    program_id = UnicodeAttribute()
    segment_id = UnicodeAttribute()
    rules = JSONAttribute()
    updated_at = UnicodeAttribute()
    # what the `segments` job found on its last run
    members_count = NumberAttribute(null=True)
    evaluated_on = UnicodeAttribute(null=True)


class CampaignItem(TableItem, discriminator="campaign"):
    """A targeted campaign: the segment's members as snapshotted when it was first run, what it
    does, and its summary. Its grants are idempotent per campaign (request ids derive from it)."""

    program_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    segment_id = UnicodeAttribute()
    action = JSONAttribute()
    members = JSONAttribute()  # [member_id], in the order the grants go
    summary = JSONAttribute(null=True)
    created_at = UnicodeAttribute()
    # A subscribe-message campaign's progress (insight second pass): how far into `members` it got,
    # what it queued / skipped so far, and the messages queued on the program day `day`.
    progress = JSONAttribute(null=True)


# --- insight, second pass (issue 15) -------------------------------------------------------------


class TierCountItem(TableItem, discriminator="tier_count"):
    """One shard of a program day's members moved into (+) or out of (-) one tier: enrolments,
    tier moves and removed accounts, counted from the stream like DayCounterItem (same partition)."""

    program_id = UnicodeAttribute()
    day = UnicodeAttribute()
    tier = UnicodeAttribute()
    members = NumberAttribute(null=True)


class RepurchaseItem(TableItem, discriminator="day_repurchase"):
    """The `rfm` job's repurchase rate for the window ending on `day` (members with 2+ orders over
    members with 1+, basis points), shown in that day's report row."""

    program_id = UnicodeAttribute()
    day = UnicodeAttribute()
    window_from = UnicodeAttribute()
    ordered = NumberAttribute()
    repeat = NumberAttribute()
    rate_bp = NumberAttribute(null=True)
