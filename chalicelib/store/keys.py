"""The one place that builds key strings. Nothing else in the code base formats a pk or sk.

Layout (P = program id, M = member id):

  PROGRAM#P            CONFIG                 program config (rules, tiers, templates)
  APPID#<appid>        APPID                  appid -> program
  ADMINKEY#<sha256>    ADMINKEY               staff key (hashed) -> program
  TILLKEY#<key id>     TILLKEY                till key -> program, encrypted secret
  NONCE#<key>#<nonce>  NONCE                  till nonce, seen-at (replay window)
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
