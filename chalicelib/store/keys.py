"""The one place that builds key strings. Nothing else in the code base formats a pk or sk.

Layout (P = program id, M = member id):

  PROGRAM#P            CONFIG                 program config (rules, tiers, templates)
  APPID#<appid>        APPID                  appid -> program
  ADMINKEY#<sha256>    ADMINKEY               staff key (hashed) -> program
  TILLKEY#<key id>     TILLKEY                till key -> program, encrypted secret
  NONCE#<key>#<nonce>  NONCE                  till nonce, seen-at (replay window)
  P#P#STAFF#<username> STAFF                  staff user: argon2 password hash, role (gsi1: P#P#STAFF)
  P#P#WX#<openid>      WXUSER                 WeChat user: encrypted session key, member link
  P#P#UNIONID#<u>      IDENTITY               unionid -> member (uniqueness guard)
  P#P#PHONE#<hmac>     IDENTITY               phone hash -> member (uniqueness guard)
  P#P#INVITE#<code>    IDENTITY               invite code -> member (uniqueness guard)
  P#P#M#M              A#ACCOUNT              balances, growth, tier, version (the "head")
  P#P#M#M              A#PROFILE              nickname, birthday, phone (encrypted), invite code
  P#P#M#M              A#LOT#<expires_on>     a points lot: what remains of points expiring that day
  P#P#M#M              REFERRAL#<invitee>     an invitee this member brought in
  P#P#ORDER#<order id> ORDER                  order: what it earned (ledger row, immutable)
  P#P#ORDER#<order id> TOTALS                 what has been refunded of it so far
  P#P#ORDER#<order id> REFUND#<refund id>     a refund of it (ledger row)
  P#P#M#M              OP#<kind>#<key>        other ledger rows, keyed by the caller's idempotency key
  P#P#HOLD#<hold id>   HOLD                   a checkout hold (status held/captured/released)
  P#P#M#M              REDEMPTION#<id>        a redemption (status redeemed/cancelled)
  P#P#IDEM#<scope>#<k> IDEM                   a caller's key of an operation not keyed by it
  P#P#REWARD#<id>      REWARD                 rewards catalogue item with stock
  P#P#JOB#<job>        RUN#<as_of>            one run of a scheduled job
  P#P#M#M              PENDING#<entry id>     points held back by a risk rule (pending/released/rejected)
  TILLRATE#<key>#<hour> RATE                  a till key's orders per minute and amount in one UTC hour
  P#P#SIGHT#<what>#<h> SIGHT                  members seen behind one phone / device (keyed hash)
  P#P#FLAG#<flag id>   FLAG                   a risk case for staff (open/resolved)

Ledger rows are found per member through GSI1: gsi1pk = P#P#M#M#POINTS, gsi1sk = <ts>#<id>.
Every sort key the member card needs starts with "A#", so the card is one Query.

Every builder names the item kind it keys (`@builds`), and a test checks that no two kinds
share a key prefix.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., tuple[str, str]])

# builder name -> the item kind (models' discriminator) its keys belong to
BUILDERS: dict[str, str] = {}


def builds(kind: str) -> Callable[[F], F]:
    def register(builder: F) -> F:
        BUILDERS[builder.__name__] = kind
        return builder

    return register

CARD_PREFIX = "A#"
ACCOUNT_SK = "A#ACCOUNT"
PROFILE_SK = "A#PROFILE"
LOT_PREFIX = "A#LOT#"


@builds("program")
def program(program_id: str) -> tuple[str, str]:
    return f"PROGRAM#{program_id}", "CONFIG"


@builds("appid")
def appid(value: str) -> tuple[str, str]:
    return f"APPID#{value}", "APPID"


@builds("admin_key")
def admin_key(key_hash: str) -> tuple[str, str]:
    return f"ADMINKEY#{key_hash}", "ADMINKEY"


@builds("till_key")
def till_key(key_id: str) -> tuple[str, str]:
    return f"TILLKEY#{key_id}", "TILLKEY"


def admin_keys_list(program_id: str) -> str:
    """GSI1 partition of a program's admin keys (gsi1sk = the key's name)."""
    return f"P#{program_id}#ADMINKEYS"


def till_keys_list(program_id: str) -> str:
    """GSI1 partition of a program's till keys (gsi1sk = the key id)."""
    return f"P#{program_id}#TILLKEYS"


@builds("staff_user")
def staff_user(program_id: str, username: str) -> tuple[str, str]:
    """A staff user of a program. Item shape: `models.StaffUserItem` (program_id, username,
    password_hash: argon2id in PHC string form, role: owner | manager | clerk, created_at,
    disabled: 0/1); listed through GSI1 `staff_users_list`, gsi1sk = username."""
    return f"P#{program_id}#STAFF#{username}", "STAFF"


def staff_users_list(program_id: str) -> str:
    return f"P#{program_id}#STAFF"


@builds("nonce")
def nonce(key_id: str, value: str) -> tuple[str, str]:
    return f"NONCE#{key_id}#{value}", "NONCE"


@builds("wechat_user")
def wechat_user(program_id: str, openid: str) -> tuple[str, str]:
    return f"P#{program_id}#WX#{openid}", "WXUSER"


@builds("identity")
def unionid_guard(program_id: str, unionid: str) -> tuple[str, str]:
    return f"P#{program_id}#UNIONID#{unionid}", "IDENTITY"


@builds("identity")
def phone_guard(program_id: str, phone_hash: str) -> tuple[str, str]:
    return f"P#{program_id}#PHONE#{phone_hash}", "IDENTITY"


@builds("identity")
def invite_guard(program_id: str, code: str) -> tuple[str, str]:
    return f"P#{program_id}#INVITE#{code}", "IDENTITY"


def member_pk(program_id: str, member_id: str) -> str:
    return f"P#{program_id}#M#{member_id}"


@builds("account")
def account(program_id: str, member_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), ACCOUNT_SK


@builds("profile")
def profile(program_id: str, member_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), PROFILE_SK


@builds("lot")
def lot(program_id: str, member_id: str, expires_on: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"{LOT_PREFIX}{expires_on}"


@builds("referral")
def referral(program_id: str, member_id: str, invitee_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"REFERRAL#{invitee_id}"


@builds("order")
def order(program_id: str, order_id: str) -> tuple[str, str]:
    return f"P#{program_id}#ORDER#{order_id}", "ORDER"


@builds("ledger")
def refund(program_id: str, order_id: str, refund_id: str) -> tuple[str, str]:
    return f"P#{program_id}#ORDER#{order_id}", f"REFUND#{refund_id}"


@builds("ledger")
def member_operation(program_id: str, member_id: str, kind: str, key: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"OP#{kind}#{key}"


@builds("reward")
def reward(program_id: str, reward_id: str) -> tuple[str, str]:
    return f"P#{program_id}#REWARD#{reward_id}", "REWARD"


def rewards_list(program_id: str) -> str:
    """GSI1 partition listing a program's rewards."""
    return f"P#{program_id}#REWARDS"


def points_history(program_id: str, member_id: str) -> str:
    """GSI1 partition of a member's ledger rows."""
    return f"{member_pk(program_id, member_id)}#POINTS"


def history_sort(created_at: str, entry_id: str) -> str:
    return f"{created_at}#{entry_id}"


EXPIRY_SHARDS = 8


def _shard(member_id: str, shards: int) -> int:
    return zlib.crc32(member_id.encode()) % shards


def expiry_queue(program_id: str, expires_on: str, member_id: str) -> tuple[str, str]:
    """GSI2 keys of a live lot: partitioned by expiry day and a shard of the member id, so one
    day's expiries spread over EXPIRY_SHARDS partitions instead of one hot key."""
    return f"P#{program_id}#EXPIRES#{expires_on}#{_shard(member_id, EXPIRY_SHARDS)}", member_id


def expiry_queue_partition(program_id: str, expires_on: str, shard: int) -> str:
    return f"P#{program_id}#EXPIRES#{expires_on}#{shard}"


@builds("hold")
def hold(program_id: str, hold_id: str) -> tuple[str, str]:
    return f"P#{program_id}#HOLD#{hold_id}", "HOLD"


def holds_due(day: str) -> str:
    """GSI2 partition of unsettled holds whose time runs out on `day` (UTC), for every program."""
    return f"HOLDS_DUE#{day}"


@builds("reward_limit")
def reward_limit(program_id: str, member_id: str, reward_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"LIMIT#{reward_id}"


MEMBER_SHARDS = 8


def members_list(program_id: str, member_id: str) -> tuple[str, str]:
    """GSI1 keys on a member's profile: every member of a program, spread over MEMBER_SHARDS."""
    return f"P#{program_id}#MEMBERS#{_shard(member_id, MEMBER_SHARDS)}", member_id


def members_list_partition(program_id: str, shard: int) -> str:
    return f"P#{program_id}#MEMBERS#{shard}"


def programs_list() -> str:
    """GSI1 partition listing every program (scheduled jobs run for each)."""
    return "PROGRAMS"


@builds("job_run")
def job_run(program_id: str, job: str, as_of: str) -> tuple[str, str]:
    return f"P#{program_id}#JOB#{job}", f"RUN#{as_of}"


CHECKIN_SK = "A#CHECKIN"
TIERED_SK = "TIERED"


@builds("checkin_state")
def checkin_state(program_id: str, member_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), CHECKIN_SK


@builds("tier_change")
def tier_change(program_id: str, member_id: str, key: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"TIER#{key}"


def tier_history(program_id: str, member_id: str) -> str:
    """GSI1 partition of a member's tier moves."""
    return f"{member_pk(program_id, member_id)}#TIERS"


@builds("tiered_member")
def tiered_member(program_id: str, member_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), TIERED_SK


def tiered_queue(program_id: str, member_id: str) -> tuple[str, str]:
    """GSI2 keys of a member above the base tier: what the tier review reads."""
    return f"P#{program_id}#TIERED#{_shard(member_id, MEMBER_SHARDS)}", member_id


def tiered_queue_partition(program_id: str, shard: int) -> str:
    return f"P#{program_id}#TIERED#{shard}"


@builds("expiry_reminder")
def reminder(program_id: str, member_id: str, day: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"REMIND#{day}"


def birthday_queue(program_id: str, month_day: str, member_id: str) -> tuple[str, str]:
    """GSI2 keys on a profile with a birthday: members by birthday (MM-DD) and shard."""
    return f"P#{program_id}#BDAY#{month_day}#{_shard(member_id, MEMBER_SHARDS)}", member_id


def birthday_queue_partition(program_id: str, month_day: str, shard: int) -> str:
    return f"P#{program_id}#BDAY#{month_day}#{shard}"


def activity_queue(program_id: str, day: str, member_id: str, entry_id: str) -> tuple[str, str]:
    """GSI2 keys on a member's first member-initiated ledger row of a day (dormancy)."""
    return f"P#{program_id}#ACTIVE#{day}#{_shard(member_id, MEMBER_SHARDS)}", f"{member_id}#{entry_id}"


def activity_queue_partition(program_id: str, day: str, shard: int) -> str:
    return f"P#{program_id}#ACTIVE#{day}#{shard}"


@builds("winback")
def winback(program_id: str, member_id: str, last_active: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"WINBACK#{last_active}"


@builds("subscription")
def subscription(program_id: str, member_id: str, template_id: str) -> tuple[str, str]:
    """A member's send credits for one subscribe template."""
    return member_pk(program_id, member_id), f"SUB#{template_id}"


def subscribers_queue(program_id: str, template_id: str, member_id: str) -> tuple[str, str]:
    """GSI2 keys of a member holding credits for a template (opt-in reminders read these)."""
    return f"P#{program_id}#SUBS#{template_id}#{_shard(member_id, MEMBER_SHARDS)}", member_id


def subscribers_queue_partition(program_id: str, template_id: str, shard: int) -> str:
    return f"P#{program_id}#SUBS#{template_id}#{shard}"


@builds("notification")
def notification(program_id: str, member_id: str, dedupe_key: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"NOTIFY#{dedupe_key}"


@builds("subscription")
def subscription_request(program_id: str, member_id: str, request_id: str) -> tuple[str, str]:
    """Marks a subscription request_id as applied (credits are added once per request)."""
    return member_pk(program_id, member_id), f"SUBREQ#{request_id}"


@builds("order_totals")
def order_totals(program_id: str, order_id: str) -> tuple[str, str]:
    return f"P#{program_id}#ORDER#{order_id}", "TOTALS"


@builds("redemption")
def redemption(program_id: str, member_id: str, redemption_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"REDEMPTION#{redemption_id}"


@builds("idempotency")
def idempotency(program_id: str, scope: str, key: str) -> tuple[str, str]:
    """The record of a caller's key (`scope` names the operation, and the member where keys are
    the member's own)."""
    return f"P#{program_id}#IDEM#{scope}#{key}", "IDEM"


def member_holds(program_id: str, member_id: str) -> str:
    """GSI1 partition of a member's holds (reconciliation sums the open ones)."""
    return f"{member_pk(program_id, member_id)}#HOLDS"


def job_runs(program_id: str, job: str) -> str:
    """The partition of one job's runs for a program (what the catch-up reads)."""
    return job_run(program_id, job, "")[0]


def job_run_sort(as_of: str) -> str:
    return job_run("", "", as_of)[1]


# --- webhooks --------------------------------------------------------------------------------
#   P#P#WEBHOOK#<id>     WEBHOOK                an endpoint: URL, events, encrypted secret, counters
#   P#P#HOOKCOUNT        HOOKCOUNT              how many endpoints the program has (the maximum's guard)
#   P#P#HOOKEVENT#<evt>  EVENT                  one event (its exact body), keyed by the change it comes from
#   P#P#HOOKEVENT#<evt>  DELIVERY#<webhook id>  its delivery to one endpoint: status, attempts, next attempt
#   P#P#M#M              HOOKSEQ                the member's last event sequence number

@builds("webhook")
def webhook(program_id: str, webhook_id: str) -> tuple[str, str]:
    return f"P#{program_id}#WEBHOOK#{webhook_id}", "WEBHOOK"


def webhooks_list(program_id: str, webhook_id: str) -> tuple[str, str]:
    """GSI1 keys of an endpoint: the program's endpoints (what every event fans out to)."""
    return f"P#{program_id}#WEBHOOKS", webhook_id


@builds("webhook_count")
def webhook_count(program_id: str) -> tuple[str, str]:
    return f"P#{program_id}#HOOKCOUNT", "HOOKCOUNT"


@builds("webhook_event")
def webhook_event(program_id: str, event_id: str) -> tuple[str, str]:
    return f"P#{program_id}#HOOKEVENT#{event_id}", "EVENT"


@builds("webhook_delivery")
def webhook_delivery(program_id: str, event_id: str, webhook_id: str) -> tuple[str, str]:
    return f"P#{program_id}#HOOKEVENT#{event_id}", f"DELIVERY#{webhook_id}"


@builds("webhook_sequence")
def webhook_sequence(program_id: str, member_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), "HOOKSEQ"


def webhook_events_by_time(program_id: str, day: str, created_at: str, event_id: str) -> tuple[str, str]:
    """GSI1 keys of an event: the program's events by UTC day and time (replays of a range)."""
    return f"P#{program_id}#HOOKEVENTS#{day}", f"{created_at}#{event_id}"


def webhook_events_day(program_id: str, day: str) -> str:
    return webhook_events_by_time(program_id, day, "", "")[0]


def webhook_parked(program_id: str, webhook_id: str, parked_at: str, event_id: str) -> tuple[str, str]:
    """GSI1 keys of a parked delivery: the endpoint's parked deliveries, oldest first."""
    return f"P#{program_id}#WEBHOOK#{webhook_id}#PARKED", f"{parked_at}#{event_id}"


def webhook_parked_partition(program_id: str, webhook_id: str) -> str:
    return webhook_parked(program_id, webhook_id, "", "")[0]


def webhooks_due(due_at: str, program_id: str, event_id: str, webhook_id: str) -> tuple[str, str]:
    """GSI2 keys of a delivery waiting for its next attempt: by UTC day of the attempt, for every
    program (the frequent job reads the days up to now)."""
    return f"HOOKS_DUE#{due_at[:10]}", f"{due_at}#{program_id}#{event_id}#{webhook_id}"


def webhooks_due_day(day: str) -> str:
    return f"HOOKS_DUE#{day}"


@builds("pending")
def pending(program_id: str, member_id: str, entry_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"PENDING#{entry_id}"


def member_pending_prefix() -> str:
    return "PENDING#"


PENDING_SHARDS = 4


def pending_queue(program_id: str, created_at: str, member_id: str, entry_id: str) -> tuple[str, str]:
    """GSI1 keys of an open pending entry: the program's review queue, oldest first."""
    return f"P#{program_id}#PENDINGQ", f"{created_at}#{member_id}#{entry_id}"


def pending_queue_partition(program_id: str) -> str:
    return f"P#{program_id}#PENDINGQ"


def pending_due(program_id: str, day: str, member_id: str, entry_id: str) -> tuple[str, str]:
    """GSI2 keys of an open pending entry that releases itself on `day`, sharded by member."""
    return f"P#{program_id}#PENDINGDUE#{day}#{_shard(member_id, PENDING_SHARDS)}", f"{member_id}#{entry_id}"


def pending_due_partition(program_id: str, day: str, shard: int) -> str:
    return f"P#{program_id}#PENDINGDUE#{day}#{shard}"


@builds("till_rate")
def till_rate(key_id: str, hour: str) -> tuple[str, str]:
    """One item per till key and UTC hour: the rate caps' counters (never one item forever)."""
    return f"TILLRATE#{key_id}#{hour}", "RATE"


@builds("sighting")
def sighting(program_id: str, what: str, lookup_hash: str) -> tuple[str, str]:
    return f"P#{program_id}#SIGHT#{what}#{lookup_hash}", "SIGHT"


@builds("flag")
def flag(program_id: str, flag_id: str) -> tuple[str, str]:
    return f"P#{program_id}#FLAG#{flag_id}", "FLAG"


def flag_queue(program_id: str, status: str, created_at: str, flag_id: str) -> tuple[str, str]:
    """GSI1 keys of a flag: the program's flags of one status, oldest first."""
    return f"P#{program_id}#FLAGS#{status}", f"{created_at}#{flag_id}"


def flag_queue_partition(program_id: str, status: str) -> str:
    return f"P#{program_id}#FLAGS#{status}"


# --- coupons ---------------------------------------------------------------------------------
#
#   P#P#CTPL#<template id>  CTPL            a coupon template (its rules, version, stock counter)
#   P#P#CTPL#<template id>  V#<version>     the rules as they were at one version (audit)
#   P#P#COUPON#<code>       COUPON          a coupon, found by the code the till types
#   P#P#M#M                 A#COUPONS       the member's unused-coupon count (read with the card)
#   P#P#M#M                 CLIMIT#<tpl>    how many of a limited template the member was issued
#   P#P#M#M                 CEVT#<id>#<ts>  one change of a coupon's state (history)

COUPON_WALLET_SK = "A#COUPONS"


@builds("coupon_template")
def coupon_template(program_id: str, template_id: str) -> tuple[str, str]:
    return f"P#{program_id}#CTPL#{template_id}", "CTPL"


@builds("coupon_template_version")
def coupon_template_version(program_id: str, template_id: str, version: str) -> tuple[str, str]:
    """`version` zero-padded (`version_sort`), so versions sort in order."""
    return coupon_template(program_id, template_id)[0], f"V#{version}"


def version_sort(version: int) -> str:
    return f"{version:06d}"


def coupon_templates_list(program_id: str) -> str:
    """GSI1 partition listing a program's coupon templates."""
    return f"P#{program_id}#CTPLS"


@builds("coupon")
def coupon(program_id: str, code: str) -> tuple[str, str]:
    return f"P#{program_id}#COUPON#{code}", "COUPON"


@builds("coupon_wallet")
def coupon_wallet(program_id: str, member_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), COUPON_WALLET_SK


@builds("coupon_limit")
def coupon_limit(program_id: str, member_id: str, template_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"CLIMIT#{template_id}"


@builds("coupon_event")
def coupon_event(program_id: str, member_id: str, coupon_id: str, at: str, event: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"CEVT#{coupon_id}#{at}#{event}"


def member_coupons(program_id: str, member_id: str, status: str) -> str:
    """GSI1 partition of a member's coupons in one status (sorted by last valid day)."""
    return f"{member_pk(program_id, member_id)}#COUPONS#{status}"


def member_coupons_sort(valid_until: str, coupon_id: str) -> str:
    return f"{valid_until}#{coupon_id}"


def coupon_history(program_id: str, member_id: str) -> str:
    """GSI1 partition of the changes of a member's coupons, by time."""
    return f"{member_pk(program_id, member_id)}#CEVENTS"


def coupon_expiry_queue(program_id: str, valid_until: str, member_id: str, code: str) -> tuple[str, str]:
    """GSI2 keys of an unused coupon: by its last valid day and a shard of its member (a member's
    coupons of one day sit together, so a reminder lists them all)."""
    return f"P#{program_id}#CEXPIRES#{valid_until}#{_shard(member_id, EXPIRY_SHARDS)}", f"{member_id}#{code}"


def coupon_expiry_queue_partition(program_id: str, valid_until: str, shard: int) -> str:
    return f"P#{program_id}#CEXPIRES#{valid_until}#{shard}"


# --- money (stored value, WeChat Pay orders, till payments, refunds) -------------------------
# Money records have no TTL: top-ups, payments and refunds are kept for at least five years.

STORED_VALUE_SK = "A#STORED_VALUE"  # in the card's "A#" range: the card stays one Query


@builds("stored_value")
def stored_value(program_id: str, member_id: str) -> tuple[str, str]:
    """The member's stored-value account (its own version: money never shares one with points)."""
    return member_pk(program_id, member_id), STORED_VALUE_SK


@builds("sv_entry")
def stored_value_entry(program_id: str, member_id: str, kind: str, key: str) -> tuple[str, str]:
    """One stored-value change (immutable history), keyed by the operation that made it."""
    return member_pk(program_id, member_id), f"SV#{kind}#{key}"


def stored_value_history(program_id: str, member_id: str) -> str:
    """GSI1 partition of a member's stored-value history."""
    return f"{member_pk(program_id, member_id)}#SV"


def stored_value_day(program_id: str, day: str, member_id: str, entry_id: str) -> tuple[str, str]:
    """GSI2 keys of a stored-value change by the program's day (liability, reconciliation)."""
    return f"P#{program_id}#SVDAY#{day}#{_shard(member_id, MEMBER_SHARDS)}", f"{member_id}#{entry_id}"


def stored_value_day_partition(program_id: str, day: str, shard: int) -> str:
    return f"P#{program_id}#SVDAY#{day}#{shard}"


@builds("pay_order")
def pay_order(out_trade_no: str) -> tuple[str, str]:
    """A WeChat Pay order we created (a top-up, the cash part of a reward). out_trade_no is
    unique for our merchant id (it hashes the program in), so a notification finds it alone."""
    return f"PAYORDER#{out_trade_no}", "PAYORDER"


def pay_orders_due(day: str) -> str:
    """GSI2 partition of unsettled WeChat Pay orders whose time runs out on `day` (UTC)."""
    return f"PAYDUE#{day}"


def pay_orders_of_day(program_id: str, day: str) -> str:
    """GSI1 partition of a program's WeChat Pay orders created on `day` (reconciliation)."""
    return f"P#{program_id}#PAYORDERS#{day}"


@builds("pay_refund")
def pay_refund(out_refund_no: str) -> tuple[str, str]:
    """A refund through WeChat Pay (of a top-up's unspent principal); out_refund_no is unique
    for our merchant id like out_trade_no."""
    return f"PAYREFUND#{out_refund_no}", "PAYREFUND"


def pay_refunds_due(day: str) -> str:
    """GSI2 partition of pending refunds to query (by the day they were asked for)."""
    return f"PAYREFUNDDUE#{day}"


@builds("sv_payment")
def sv_payment(program_id: str, payment_id: str) -> tuple[str, str]:
    """A till's payment with stored value (keyed by the till's payment_id)."""
    return f"P#{program_id}#SVPAY#{payment_id}", "SVPAY"


def sv_payments_due(day: str) -> str:
    """GSI2 partition of frozen till payments whose time runs out on `day` (UTC), every program."""
    return f"SVPAYDUE#{day}"


@builds("sv_payment_refund")
def sv_payment_refund(program_id: str, payment_id: str, refund_id: str) -> tuple[str, str]:
    return f"P#{program_id}#SVPAY#{payment_id}", f"REFUND#{refund_id}"


@builds("liability")
def liability(program_id: str, day: str) -> tuple[str, str]:
    """Stored-value liability at the end of a program day (principal and bonus)."""
    return f"P#{program_id}#LIABILITY", day


@builds("wechat_token")
def wechat_access_token(appid: str) -> tuple[str, str]:
    """The mini-program's WeChat access token, shared by every function (store/wechat_tokens.py)."""
    return f"WXTOKEN#{appid}", "TOKEN"


@builds("wechat_token_lock")
def wechat_token_lock(appid: str) -> tuple[str, str]:
    """Who is refreshing the access token right now."""
    return f"WXTOKEN#{appid}", "LOCK"


# --- members' rights (issue 17) --------------------------------------------------------------
#   P#P#M#M              PAYREF#<out_trade_no>   the member's WeChat Pay orders (export, erasure)
#   P#P#ERASURE#M        ERASURE                 an erasure: status, who asked (tokens refused)
#   P#P#PRIVACYLOG#<mo>  <at>#<id>               an export or erasure, logged (by month; gsi1: P#P#PRIVACYLOGS)
#   P#P#WX#<openid>      gsi1: P#P#M#M#WX        the WeChat users linked to a member

@builds("pay_order_ref")
def pay_order_ref(program_id: str, member_id: str, out_trade_no: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"PAYREF#{out_trade_no}"


def pay_order_ref_prefix() -> str:
    return "PAYREF#"


@builds("erasure")
def erasure(program_id: str, member_id: str) -> tuple[str, str]:
    return f"P#{program_id}#ERASURE#{member_id}", "ERASURE"


@builds("privacy_log")
def privacy_log(program_id: str, month: str, at: str, log_id: str) -> tuple[str, str]:
    return f"P#{program_id}#PRIVACYLOG#{month}", f"{at}#{log_id}"


def privacy_log_list(program_id: str) -> str:
    """GSI1 partition of a program's privacy log (gsi1sk = <at>#<id>): staff read it newest first."""
    return f"P#{program_id}#PRIVACYLOGS"


def member_wechat_users(program_id: str, member_id: str, openid: str) -> tuple[str, str]:
    """GSI1 keys of a WeChat user linked to a member: every openid of the member (erasure)."""
    return f"{member_pk(program_id, member_id)}#WX", openid


def member_wechat_users_partition(program_id: str, member_id: str) -> str:
    return member_wechat_users(program_id, member_id, "")[0]
# --- paid membership, lotteries, referral caps (issue 14) ---------------------------------------
#  P#P#M#M                MEMBERSHIP#<source id>    an entitlement (start, end, source)
#  P#P#TRIAL#WX#<id>      TRIAL                     a person's trial, by unionid (or openid)
#  P#P#TRIAL#PHONE#<h>    TRIAL                     ... by phone (keyed hash)
#  P#P#TRIAL#M#<member>   TRIAL                     ... by member
#  P#P#LOTTERY#<id>       SEED                      a lottery's server seed (encrypted) and its SHA-256
#  P#P#LOTTERY#<id>       PRIZE#<prize id>          a prize's stock left
#  P#P#M#M                LOTTERY#<id>              a member's draw count (all, and today)
#  P#P#M#M                DRAW#<lottery>#<request>  a draw (immutable; the caller's key)
#  P#P#M#M                INVITECAP#<period>        invitees rewarded that day (D...) or month (M...)
#  P#P#M#M                INVITEREWARD#<invitee>    the reward of one referral (paid/capped/refused/reversed)


@builds("membership")
def membership(program_id: str, member_id: str, source_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"MEMBERSHIP#{source_id}"


def membership_reminders(program_id: str, day: str) -> str:
    """GSI2 partition: entitlements whose end is to be reminded of on that day."""
    return f"P#{program_id}#MREMIND#{day}"


def membership_packs(program_id: str, day: str) -> str:
    """GSI1 partition: entitlements whose next coupon pack is due that day."""
    return f"P#{program_id}#MPACK#{day}"


@builds("trial_claim")
def trial_claim_wechat(program_id: str, unionid_or_openid: str) -> tuple[str, str]:
    return f"P#{program_id}#TRIAL#WX#{unionid_or_openid}", "TRIAL"


@builds("trial_phone")
def trial_claim_phone(program_id: str, phone_hash: str) -> tuple[str, str]:
    return f"P#{program_id}#TRIAL#PHONE#{phone_hash}", "TRIAL"


@builds("trial_claim")
def trial_claim_member(program_id: str, member_id: str) -> tuple[str, str]:
    return f"P#{program_id}#TRIAL#M#{member_id}", "TRIAL"


@builds("lottery_seed")
def lottery_seed(program_id: str, lottery_id: str) -> tuple[str, str]:
    return f"P#{program_id}#LOTTERY#{lottery_id}", "SEED"


@builds("lottery_prize")
def lottery_prize(program_id: str, lottery_id: str, prize_id: str) -> tuple[str, str]:
    return f"P#{program_id}#LOTTERY#{lottery_id}", f"PRIZE#{prize_id}"


@builds("lottery_member")
def lottery_member(program_id: str, member_id: str, lottery_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"LOTTERY#{lottery_id}"


@builds("lottery_draw")
def lottery_draw(program_id: str, member_id: str, lottery_id: str, request_id: str) -> tuple[str, str]:
    return member_pk(program_id, member_id), f"DRAW#{lottery_id}#{request_id}"


def lottery_draws(program_id: str, lottery_id: str) -> str:
    """GSI1 partition: every draw of a lottery (gsi1sk = <created_at>#<draw id>), for audits."""
    return f"P#{program_id}#LOTTERY#{lottery_id}#DRAWS"


@builds("referral_cap")
def referral_cap(program_id: str, inviter_id: str, period: str) -> tuple[str, str]:
    return member_pk(program_id, inviter_id), f"INVITECAP#{period}"


@builds("referral_reward")
def referral_reward(program_id: str, inviter_id: str, invitee_id: str) -> tuple[str, str]:
    return member_pk(program_id, inviter_id), f"INVITEREWARD#{invitee_id}"
# --- staff logins and the audit log (issue 16) ---------------------------------------------------
#   P#P#LOGINGUARD#<user|ip>#<v> GUARD         failed logins of an account or an address, lock-out
#   P#P#AUDIT#<entry id> AUDIT                 one staff action (append-only); listed newest
#                                               first through gsi1 (audit_log, gsi1sk = <at>#<entry id>)

@builds("login_guard")
def login_guard(program_id: str, subject: str, value: str) -> tuple[str, str]:
    """`subject` is `user` or `ip`; the value is hashed by the caller (no address in a key)."""
    return f"P#{program_id}#LOGINGUARD#{subject}#{value}", "GUARD"


@builds("audit")
def audit_entry(program_id: str, entry_id: str) -> tuple[str, str]:
    """`entry_id` is ours (random), not the caller's request id: a repeated X-Request-Id must not
    make a second action's row collide with the first's."""
    return f"P#{program_id}#AUDIT#{entry_id}", "AUDIT"


def audit_log(program_id: str) -> str:
    """GSI1 partition of a program's audit rows (gsi1sk = <at>#<entry id>)."""
    return f"P#{program_id}#AUDITLOG"


# --- insight (issue 15) ----------------------------------------------------------------------
#   P#P#DAYSTAT#<day>#<shard>  COUNTS         one shard of a program day's counters
#   COUNTED#<pk>               <sk>#<what>    a change already counted (TTL)
#   P#P#DAYACTIVE#<day>#M      ACTIVE         the member was active that day (TTL)
#   P#P#REPORT                 DAY#<day>      a closed day's summed counters

DAY_SHARDS = 16


@builds("day_counter")
def day_counter(program_id: str, day: str, shard: str) -> tuple[str, str]:
    return f"P#{program_id}#DAYSTAT#{day}#{shard}", "COUNTS"


def day_shard(identity: str) -> int:
    return _shard(identity, DAY_SHARDS)


@builds("counted")
def counted(source_pk: str, source_sk: str, what: str) -> tuple[str, str]:
    return f"COUNTED#{source_pk}", f"{source_sk}#{what}"


@builds("active_mark")
def active_mark(program_id: str, day: str, member_id: str) -> tuple[str, str]:
    return f"P#{program_id}#DAYACTIVE#{day}#{member_id}", "ACTIVE"


@builds("day_summary")
def day_summary(program_id: str, day: str) -> tuple[str, str]:
    return f"P#{program_id}#REPORT", f"DAY#{day}"


def day_summary_partition(program_id: str) -> str:
    return f"P#{program_id}#REPORT"


@builds("member_tags")
def member_tags(program_id: str, member_id: str) -> tuple[str, str]:
    """P#P#M#M  TAGS: the member's manual and computed tags."""
    return member_pk(program_id, member_id), "TAGS"


@builds("rfm")
def rfm(program_id: str, member_id: str) -> tuple[str, str]:
    """P#P#M#M  RFM: the member's latest RFM scores."""
    return member_pk(program_id, member_id), "RFM"


@builds("segment")
def segment(program_id: str, segment_id: str) -> tuple[str, str]:
    """A program's segments share a partition: the `segments` job and the list read it in one Query."""
    return segments_partition(program_id), f"SEGMENT#{segment_id}"


def segments_partition(program_id: str) -> str:
    return f"P#{program_id}#SEGMENTS"


@builds("campaign")
def campaign(program_id: str, campaign_id: str) -> tuple[str, str]:
    return f"P#{program_id}#CAMPAIGN#{campaign_id}", "CAMPAIGN"


# --- insight, second pass (issue 15) -------------------------------------------------------------
#   P#P#DAYSTAT#<day>#<shard>  TIER#<code>          members moved into/out of a tier that day (one shard)
#   P#P#REPORT                 REPURCHASE#<day>     the rfm job's repurchase rate for the window to <day>


@builds("tier_count")
def tier_count(program_id: str, day: str, shard: str, tier: str) -> tuple[str, str]:
    return day_counter(program_id, day, shard)[0], f"TIER#{tier}"


@builds("day_repurchase")
def day_repurchase(program_id: str, day: str) -> tuple[str, str]:
    return day_summary_partition(program_id), f"REPURCHASE#{day}"
