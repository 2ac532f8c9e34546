"""Tier moves: upgrades from the stream, downgrades at the review, grants by staff.

Every move is one transaction: the account (guarded by its version), a tier-change row (the
history and the event notifications react to, keyed so that the same move is written once),
and the member's entry in the review queue (present only while above the base tier). Moves are
computed from the account as read now, never from a stream image, so a redelivered or
out-of-order record cannot move a member twice or backwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib import clock, ids
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.domain import tiers as rules
from chalicelib.domain.program import ProgramConfig, Tier
from chalicelib.domain.text import FreeText
from chalicelib.errors import InvalidRequest, NotFound
from chalicelib.jobs import JobContext, Step
from chalicelib.services.idempotency import TryAgain, with_retries
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import AccountItem, TableItem, TierChangeItem, TieredMemberItem
from chalicelib.store.tx import ConditionsFailed, Transaction

_REVIEW_PAGE = 100


class TierGrantIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")
    tier: str = Field(min_length=1, max_length=32)
    until: dt.date
    reason: FreeText = Field(min_length=1, max_length=200)
    request_id: str = Field(pattern=ids.ID_PATTERN)


def _window_growth(config: ProgramConfig, account: AccountItem, day: dt.date) -> int:
    return rules.growth_in_window(config, dict(account.growth_months or {}), int(account.growth), day)


def _move(program_id: str, account: AccountItem, config: ProgramConfig, to: Tier, direction: str, reason: str,
          growth: int, change_key: str, extra_actions: list[Any] | None = None) -> None:
    """Write a tier move; raises ConditionsFailed("account") if the account moved, ("change")
    if this exact move was already written."""
    member_id = account.member_id
    now = clock.stamp(clock.now())
    tx = Transaction()
    actions = [AccountItem.tier.set(to.code), AccountItem.tier_since.set(now),
               AccountItem.version.set(int(account.version) + 1), AccountItem.updated_at.set(now)]
    tx.update(account, actions=actions + (extra_actions or []), condition=AccountItem.version == account.version,
              label="account")
    entry_id = ids.new_entry_id()
    tx.put(TierChangeItem(
        *keys.tier_change(program_id, member_id, change_key),
        program_id=program_id, member_id=member_id, from_tier=account.tier, to_tier=to.code, direction=direction,
        reason=reason, growth=growth, created_at=now,
        gsi1pk=keys.tier_history(program_id, member_id), gsi1sk=f"{now}#{entry_id}",
    ), TierChangeItem.pk.does_not_exist(), label="change")
    queued = TieredMemberItem(*keys.tiered_member(program_id, member_id), member_id=member_id, tier=to.code)
    if to.level > config.base_tier.level:
        queued.gsi2pk, queued.gsi2sk = keys.tiered_queue(program_id, member_id)
        tx.put(queued, label="queue")
    else:
        tx.delete(queued, label="queue")
    tx.commit()


def promote_if_due(settings: Settings, program_id: str, member_id: str) -> dict[str, Any] | None:
    """Move the member up if window growth reached a higher tier (the stream reaction)."""
    config = program_config(settings, program_id)

    def attempt() -> dict[str, Any] | None:
        account = store.get_item(AccountItem, keys.account(program_id, member_id))
        if account is None:
            return None
        today = config.today(clock.now())
        growth = _window_growth(config, account, today)
        current = config.tier(account.tier)
        target = rules.upgrade_to(config, current, growth)
        if target is None:
            return None
        try:
            # Keyed by the account version it was computed from: a redelivery computes the same
            # key only if nothing moved, and then the row guard makes it a no-op.
            _move(program_id, account, config, target, "up", f"growth {growth} reached {target.threshold}",
                  growth, f"up#{int(account.version)}", [AccountItem.grace_until.remove()])
        except ConditionsFailed as failed:
            if "change" in failed.labels:
                return None
            raise
        return {"member_id": member_id, "from": current.code, "to": target.code}

    return with_retries(settings, attempt)


def review_member(settings: Settings, config: ProgramConfig, program_id: str, member_id: str,
                  as_of: dt.date) -> str:
    """Apply the review as of a day to one member, once: 'kept', 'grace', 'dropped' or 'skipped'."""

    def attempt() -> str:
        account = store.get_item(AccountItem, keys.account(program_id, member_id))
        if account is None or (account.last_review and account.last_review >= as_of.isoformat()):
            return "skipped"
        current = config.tier(account.tier)
        growth = _window_growth(config, account, as_of)
        outcome = rules.review(
            config, current, growth, as_of,
            floor=config.tier(account.tier_floor) if account.tier_floor else None,
            floor_until=dt.date.fromisoformat(account.tier_floor_until) if account.tier_floor_until else None,
            grace_until=dt.date.fromisoformat(account.grace_until) if account.grace_until else None,
        )
        marker = [AccountItem.last_review.set(as_of.isoformat())]
        if outcome.action == "drop":
            try:
                _move(program_id, account, config, outcome.tier, "down", outcome.reason, growth,
                      f"review#{as_of.isoformat()}", marker + [AccountItem.grace_until.remove()])
            except ConditionsFailed as failed:
                if "change" in failed.labels:
                    return "skipped"
                raise
            return "dropped"
        grace = (AccountItem.grace_until.set(outcome.grace_until.isoformat()) if outcome.grace_until
                 else AccountItem.grace_until.remove())
        account.update(actions=marker + [grace, AccountItem.version.set(int(account.version) + 1)],
                       condition=AccountItem.version == account.version)
        return "grace" if outcome.action == "grace" else "kept"

    def guarded() -> str:
        try:
            return attempt()
        except Exception as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise TryAgain from None
            raise

    return with_retries(settings, guarded)


def review_step(ctx: JobContext) -> Step:
    """One page of the review: members above the base tier, shard by shard (gsi2)."""
    config = program_config(ctx.settings, ctx.program_id)
    shard = int(ctx.state.get("shard", 0))
    start = ctx.state.get("last_key")
    query = TableItem.gsi2.query(keys.tiered_queue_partition(ctx.program_id, shard), limit=_REVIEW_PAGE,
                                 last_evaluated_key=start)
    counts = {"reviewed": 0, "kept": 0, "grace": 0, "dropped": 0, "skipped": 0}
    for item in query:
        if not isinstance(item, TieredMemberItem):  # the tier queue holds these only
            continue
        outcome = review_member(ctx.settings, config, ctx.program_id, item.member_id, ctx.as_of)
        counts["reviewed"] += 1
        counts[outcome] += 1
    last = query.last_evaluated_key
    if last:
        return Step(False, {"shard": shard, "last_key": last}, counts)
    if shard + 1 < keys.MEMBER_SHARDS:
        return Step(False, {"shard": shard + 1}, counts)
    return Step(True, {}, counts)


def grant(settings: Settings, staff: StaffPrincipal, member_id: str, body: TierGrantIn) -> dict[str, Any]:
    """Staff set a tier floor until a date; the member moves up to it at once if below."""
    program_id = staff.program_id
    config = program_config(settings, program_id)
    if body.tier not in {t.code for t in config.tiers}:
        raise InvalidRequest("unknown tier", code="unknown_tier")
    granted = config.tier(body.tier)
    if body.until < config.today(clock.now()):
        raise InvalidRequest("until is in the past")

    def attempt() -> dict[str, Any]:
        account = store.get_item(AccountItem, keys.account(program_id, member_id))
        if account is None:
            raise NotFound("no such member", code="member_not_found")
        floor = [AccountItem.tier_floor.set(granted.code), AccountItem.tier_floor_until.set(body.until.isoformat())]
        current = config.tier(account.tier)
        to = granted if granted.level > current.level else current
        try:
            _move(program_id, account, config, to, "grant",
                  f"{body.reason} (granted {granted.name} until {body.until}, by {staff.key_name})",
                  int(account.growth), f"grant#{body.request_id}", floor)
        except ConditionsFailed as failed:
            if "change" not in failed.labels:
                raise
        fresh = store.get_item(AccountItem, keys.account(program_id, member_id))
        return {"member_id": member_id, "tier": fresh.tier, "tier_floor": fresh.tier_floor,
                "tier_floor_until": fresh.tier_floor_until}

    return with_retries(settings, attempt)


def history(program_id: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    from chalicelib.services.ledger import member_page

    page = member_page(program_id, member_id, keys.tier_history(program_id, member_id), limit, cursor)
    return {
        "items": [{"from": r.from_tier, "to": r.to_tier, "direction": r.direction, "reason": r.reason,
                   "growth": int(r.growth), "created_at": r.created_at}
                  for r in page.items if isinstance(r, TierChangeItem)],
        "next_cursor": page.next_cursor,
    }
