"""What runs when: every scheduled job and every stream reaction, listed here and nowhere else.

`app.py` hands these tables to the runners (`jobs.py`, `events/stream.py`), which import none of
the things they run. Each table is built on first use, so a function loads only what it runs.
"""

from __future__ import annotations

import functools

from chalicelib.events.stream import Reaction, Reactions
from chalicelib.jobs import FrequentJob, Job


@functools.cache
def daily_jobs() -> dict[str, Job]:
    """The daily schedule runs these in this order (expire before reconciling, review last);
    staff may run any of them for a day through the admin API."""
    from chalicelib.domain.tiers import is_review_day
    from chalicelib.services import coupons, lifecycle, notifications, payments, pending, reconcile, tiers
    from chalicelib.services import membership

    table = (
        Job("expire-points", lifecycle.expire_step),
        Job("expiry-reminders", lifecycle.remind_step),
        Job("birthday-gifts", lifecycle.birthday_step),
        Job("expire-coupons", coupons.expire_step),
        Job("coupon-reminders", coupons.remind_step),
        Job("birthday-coupons", coupons.birthday_step),
        Job("dormant-members", lifecycle.dormant_step),
        Job("checkin-reminders", notifications.checkin_reminder_step),
        Job("release-pending", pending.auto_release_step),
        Job("reconcile", reconcile.reconcile_step),
        Job("reconcile-payments", payments.reconcile_payments_step),
        Job("stored-value-liability", payments.liability_step),
        # Issue 14: paid-membership reminders (3 days before the end) and monthly coupon packs.
        Job("membership-daily", membership.daily_step),
        Job("tier-review", tiers.review_step, due=is_review_day),
    )
    # insight (issue 15): close yesterday's figures (and catch up).
    from chalicelib.services import analytics, campaigns, rfm

    from chalicelib.services import tags

    # computed tags after RFM (they name its segment), segments last: they read both.
    insight = (Job("daily-report", analytics.close_days_step), Job("rfm", rfm.rfm_step),
               Job("computed-tags", tags.computed_tags_step),
               Job("segments", campaigns.segments_step))  # segments after RFM: they read its scores
    return {job.name: job for job in (*table, *insight)}


@functools.cache
def frequent_jobs() -> dict[str, FrequentJob]:
    """Every few minutes, over every program."""
    from chalicelib.services import holds, payments, stored_value, webhooks

    table = (
        FrequentJob("release-holds", holds.release_due_holds),
        # WeChat Pay orders and refunds nobody notified us about: query, settle, close timed-out ones.
        FrequentJob("settle-payments", payments.settle_due_orders),
        # Frozen stored-value till payments never captured in the program's hold time go back.
        FrequentJob("release-frozen-payments", stored_value.release_due_payments),
        # Webhook deliveries whose back-off has run out: try again (or park them).
        FrequentJob("retry-webhooks", webhooks.retry_due),
    )
    return {job.name: job for job in table}


@functools.cache
def table_reactions() -> Reactions:
    """The first stream function: item kind -> what happens when such an item changes."""
    from chalicelib.domain.webhooks import KINDS as WEBHOOK_KINDS
    from chalicelib.events import reactions as r

    table: dict[str, tuple[Reaction, ...]] = {
        "profile": (r.credit_inviter, r.reward_completed_profile, r.gift_coupons_on_enrol),
        "account": (r.promote_on_growth,),
        "ledger": (r.notify_points_changed,),
        "order": (r.notify_points_changed,),
        "redemption": (r.notify_redemption_status, r.gift_coupons_on_redemption),
        "tier_change": (r.notify_tier_changed, r.gift_coupons_on_tier),
        "expiry_reminder": (r.notify_points_expiring,),
        "winback": (r.notify_winback,),
        # Issue 14: a membership's first coupon pack; a lottery's coupon prize.
        "membership": (r.membership_first_pack,),
        "lottery_draw": (r.issue_draw_coupon,),
    }
    # Issue 14: referral rewards on the invitee's enrolment or first paid order; reversed on a full refund.
    for kind, reaction in (("profile", r.referral_on_enrolment), ("order", r.referral_on_order),
                           ("ledger", r.referral_on_refund)):
        table[kind] = (*table.get(kind, ()), reaction)
    # insight (issue 15): the daily figures count every new immutable item once.
    from chalicelib.services import analytics

    for kind in ("profile", "ledger", "order", "coupon_event", "sv_entry"):
        table[kind] = (*table.get(kind, ()), analytics.count_change)
    # insight, second pass: tier distribution (accounts in and out, tier moves).
    for kind in ("account", "tier_change"):
        table[kind] = (*table.get(kind, ()), analytics.count_change)
    # Every item kind an event type comes from (domain/webhooks.py's RULES) also publishes events.
    for kind in WEBHOOK_KINDS:
        table[kind] = (*table.get(kind, ()), r.publish_webhook_events)
    return table
