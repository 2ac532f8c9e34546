"""Coupons (优惠券): templates, issuing (member claims, staff grants, automatic gifts), the wallet,
核销 at the till, voiding, expiry and reminders, and every coupon's history.

A coupon is its own item (`CouponItem`, keyed by its code; status unused -> used -> unused again
when its whole order is cancelled, or -> expired), written in the same transaction as:
- the template's stock counter (`issued < total`, guarded by the total that was read),
- the member's count for a limited template (`issued < per_member_limit`),
- the member's unused-coupon counter (`A#COUPONS`, read with the card),
- a history row (`CouponEventItem`: issued, used, voided, expired),
- the record of the caller's key (a generic `IdempotencyItem`: claims, grants, redeems, voids,
  and the "once per cause" guard of automatic gifts),
- for a points price: the member's account, lots and ledger row (`store.ledger.apply_change`),
- at the till: the request's nonce.
So every refusal (stock, limit, used, points) is decided by a condition at commit, never by a read.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pynamodb.expressions.update import Action

from chalicelib import clock, ids
from chalicelib.auth.principals import MemberPrincipal, StaffPrincipal, TillPrincipal
from chalicelib.domain import balance
from chalicelib.domain import coupons as rules_of
from chalicelib.domain import notifications as message_rules
from chalicelib.domain.coupons import EXPIRED, UNUSED, USED, CouponRules
from chalicelib.domain.text import FreeText
from chalicelib.errors import Conflict, InsufficientPoints, NotFound, RetryLater
from chalicelib.jobs import JobContext, Step
from chalicelib.logs import logger
from chalicelib.services import notifications
from chalicelib.services.idempotency import KEY_LABEL, CallerKey, TryAgain, reread_if_taken, with_retries
from chalicelib.services.lifecycle import birthdays_on
from chalicelib.services.members import resolve_member_id
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys, paging
from chalicelib.store import ledger as store
from chalicelib.store.models import (
    AccountItem,
    CouponEventItem,
    CouponItem,
    CouponLimitItem,
    CouponTemplateItem,
    CouponTemplateVersionItem,
    CouponWalletItem,
    ProfileItem,
    TableItem,
)
from chalicelib.store.tx import ConditionsFailed, Transaction, TransactionConflict

PAGE = 100
REMIND_DAYS_BEFORE = 3
_Id = Annotated[str, Field(pattern=ids.ID_PATTERN)]


# --- bodies ----------------------------------------------------------------------------------

class TemplateIn(BaseModel):
    """A coupon template as staff write it (../shared/API.md). Amounts in fen; `percent` is what
    the customer pays (80 = 八折); validity is `valid_days` from issue or a fixed window of days."""

    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    name: FreeText = Field(min_length=1, max_length=64)
    kind: Literal["amount_off", "percent_off", "gift"]
    threshold_fen: StrictInt = Field(default=0, ge=0, le=10**12)
    off_fen: StrictInt | None = Field(default=None, ge=1, le=10**12)
    percent: StrictInt | None = Field(default=None, ge=1, le=99)
    max_off_fen: StrictInt | None = Field(default=None, ge=1, le=10**12)
    gift_item: FreeText | None = Field(default=None, min_length=1, max_length=64,
                                  description="What a gift coupon hands over (default: the name).")
    valid_days: StrictInt | None = Field(default=None, ge=1, le=3660,
                                         description="Days from the day of issue, that day included.")
    valid_from: dt.date | None = None
    valid_until: dt.date | None = Field(default=None, description="The last day it can be used (inclusive).")
    total: StrictInt | None = Field(default=None, ge=0, le=10**9, description="Stock; null: unlimited.")
    per_member_limit: StrictInt | None = Field(default=None, ge=1, le=10**6)
    claimable: StrictBool
    points_price: StrictInt = Field(default=0, ge=0, le=10**9)
    store_ids: list[_Id] | None = Field(default=None, max_length=100,
                                        description="Stores (the till key's store) where it can be used; "
                                                    "null: every store.")
    version: StrictInt | None = Field(default=None, ge=1,
                                      description="The version this edit was made against (from the last "
                                                  "answer): a concurrent edit is a 409 version_conflict.")

    def rules(self) -> CouponRules:
        return CouponRules(
            name=self.name, kind=self.kind, threshold_fen=self.threshold_fen, off_fen=self.off_fen,
            percent=self.percent, max_off_fen=self.max_off_fen,
            gift_item=(self.gift_item or self.name) if self.kind == "gift" else self.gift_item,
            valid_days=self.valid_days, valid_from=self.valid_from, valid_until=self.valid_until,
            store_ids=self.store_ids)


class ClaimIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    template_id: str = Field(pattern=ids.ID_PATTERN)
    request_id: str = Field(pattern=ids.ID_PATTERN)


class GrantIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    member_ids: list[_Id] = Field(min_length=1, max_length=100)
    request_id: str = Field(pattern=ids.ID_PATTERN)


_CODE_PATTERN = r"^[A-Za-z0-9 -]{1,32}$"


class RedeemIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    code: str = Field(pattern=_CODE_PATTERN, description="As printed or scanned; case, spaces and dashes "
                                                         "do not matter.")
    order_id: str = Field(pattern=ids.ID_PATTERN)
    order_amount_fen: StrictInt = Field(ge=1, le=10**12)
    request_id: str = Field(pattern=ids.ID_PATTERN)


class VoidIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    code: str = Field(pattern=_CODE_PATTERN)
    order_id: str = Field(pattern=ids.ID_PATTERN)
    request_id: str = Field(pattern=ids.ID_PATTERN)


class GiftCause(BaseModel):
    """What an automatic gift is issued for: its fingerprint in the once-per-cause record."""

    template_id: str
    cause: str


# --- templates -------------------------------------------------------------------------------

def template_view(item: CouponTemplateItem) -> dict[str, Any]:
    rules = CouponRules.model_validate(item.rules)
    total = int(item.total) if item.total is not None else None
    issued = int(item.issued or 0)
    return {
        "template_id": item.template_id, "version": int(item.version), **_rules_view(rules),
        "valid_days": rules.valid_days,
        "total": total, "issued": issued, "remaining": None if total is None else max(0, total - issued),
        "per_member_limit": int(item.per_member_limit) if item.per_member_limit is not None else None,
        "claimable": bool(item.claimable), "points_price": int(item.points_price or 0),
        "updated_at": item.updated_at,
    }


def _rules_view(rules: CouponRules) -> dict[str, Any]:
    return {
        "name": rules.name, "kind": rules.kind, "threshold_fen": rules.threshold_fen, "off_fen": rules.off_fen,
        "percent": rules.percent, "max_off_fen": rules.max_off_fen, "gift_item": rules.gift_item,
        "store_ids": rules.store_ids,
    }


def put_template(settings: Settings, staff: StaffPrincipal, template_id: str, body: TemplateIn) -> dict[str, Any]:
    """Create or change a template (staff). Each change is a new version; coupons already issued
    keep the rules they copied. The stock counter (`issued`) survives edits."""
    program_id = staff.program_id
    rules = body.rules()
    rules_of.check_rules(rules)
    key = keys.coupon_template(program_id, template_id)
    current = store.get_item(CouponTemplateItem, key)
    if body.version is not None and (current is None or int(current.version) != body.version):
        raise Conflict("the template changed since you read it; read it again", code="version_conflict")
    version = int(current.version) + 1 if current is not None else 1
    now = clock.stamp(clock.now())
    T = CouponTemplateItem
    optional = [(T.total, body.total), (T.per_member_limit, body.per_member_limit)]
    actions: list[Action] = [
        T.kind.set(T), T.program_id.set(program_id), T.template_id.set(template_id),
        T.rules.set(rules_of.rules_json(rules)), T.version.set(version), T.issued.add(0),
        T.claimable.set(1 if body.claimable else 0), T.points_price.set(body.points_price), T.updated_at.set(now),
        T.gsi1pk.set(keys.coupon_templates_list(program_id)), T.gsi1sk.set(template_id),
        *[attr.set(value) if value is not None else attr.remove() for attr, value in optional],
    ]
    condition = T.pk.does_not_exist() if current is None else (T.version == int(current.version))
    snapshot = CouponTemplateVersionItem(
        *keys.coupon_template_version(program_id, template_id, keys.version_sort(version)),
        template_id=template_id, version=version, rules=rules_of.rules_json(rules), total=body.total,
        per_member_limit=body.per_member_limit, claimable=1 if body.claimable else 0, points_price=body.points_price, updated_at=now,
        updated_by=staff.key_ref)
    tx = Transaction()
    tx.update(T(*key), actions=actions, condition=condition, label="template")
    tx.put(snapshot, CouponTemplateVersionItem.pk.does_not_exist(), label="version")
    try:
        tx.commit()
    except ConditionsFailed:
        raise Conflict("the template changed meanwhile; read it again", code="version_conflict") from None
    return template_view(store.get_item(CouponTemplateItem, key))


def seed_template(program_id: str, template_id: str, body: TemplateIn) -> None:
    """Version 1 of a template, written by the local seed if it is missing. Two plain conditional
    puts, no Transaction: the seed then leaves PynamoDB's per-model connections as they were
    (tests/integration/test_chaos.py injects its faults through the client TableItem opens first)."""
    rules = body.rules()
    rules_of.check_rules(rules)
    now = clock.stamp(clock.now())
    common: dict[str, Any] = dict(rules=rules_of.rules_json(rules), total=body.total,
                                  per_member_limit=body.per_member_limit, claimable=1 if body.claimable else 0,
                                  points_price=body.points_price, updated_at=now)
    CouponTemplateVersionItem(*keys.coupon_template_version(program_id, template_id, keys.version_sort(1)),
                              template_id=template_id, version=1, updated_by="seed", **common).save()
    CouponTemplateItem(*keys.coupon_template(program_id, template_id), program_id=program_id,
                       template_id=template_id, version=1, issued=0, gsi1pk=keys.coupon_templates_list(program_id),
                       gsi1sk=template_id, **common).save(condition=CouponTemplateItem.pk.does_not_exist())


def get_template(program_id: str, template_id: str) -> dict[str, Any]:
    item = store.get_item(CouponTemplateItem, keys.coupon_template(program_id, template_id))
    if not isinstance(item, CouponTemplateItem):
        raise NotFound("no such coupon template", code="template_not_found")
    return template_view(item)


def list_templates(program_id: str, limit: int, cursor: str | None, claimable_only: bool) -> dict[str, Any]:
    page = paging.gsi1_page(keys.coupon_templates_list(program_id), limit, cursor, newest_first=False)
    items = [template_view(item) for item in page.items if isinstance(item, CouponTemplateItem)]
    return {"items": [t for t in items if t["claimable"] or not claimable_only], "next_cursor": page.next_cursor}


# --- coupons: views and the items of one change ----------------------------------------------

def coupon_view(item: CouponItem, today: dt.date) -> dict[str, Any]:
    rules = CouponRules.model_validate(item.rules)
    until = dt.date.fromisoformat(item.valid_until)
    return {
        "coupon_id": item.coupon_id, "code": item.code, "template_id": item.template_id, **_rules_view(rules),
        "status": rules_of.shown_status(item.status, until, today),
        "valid_from": item.valid_from, "valid_until": item.valid_until, "issued_at": item.issued_at,
        "used_at": item.used_at, "order_id": item.order_id,
        "discount_fen": int(item.discount_fen) if item.discount_fen is not None else None,
    }


def _wallet_slot(program_id: str, member_id: str, status: str, valid_until: str, coupon_id: str) -> tuple[str, str]:
    return keys.member_coupons(program_id, member_id, status), keys.member_coupons_sort(valid_until, coupon_id)


def _count_unused(tx: Transaction, program_id: str, member_id: str, delta: int) -> None:
    tx.update(CouponWalletItem(*keys.coupon_wallet(program_id, member_id)),
              actions=[CouponWalletItem.kind.set(CouponWalletItem), CouponWalletItem.unused.add(delta)],
              label="wallet")


def _history(tx: Transaction, coupon: CouponItem, event: str, status: str, at: str, ref: str | None,
             discount_fen: int | None = None) -> None:
    row = CouponEventItem(
        *keys.coupon_event(coupon.program_id, coupon.member_id, coupon.coupon_id, at, event),
        program_id=coupon.program_id, member_id=coupon.member_id, coupon_id=coupon.coupon_id, code=coupon.code,
        template_id=coupon.template_id, name=str(coupon.rules.get("name", "")), event=event, status=status,
        ref=ref, discount_fen=discount_fen, created_at=at,
        gsi1pk=keys.coupon_history(coupon.program_id, coupon.member_id),
        gsi1sk=f"{at}#{coupon.coupon_id}#{event}")
    tx.put(row, CouponEventItem.pk.does_not_exist(), label="history")


def _new_coupon_id() -> str:
    return "cp" + uuid.uuid4().hex[:18]


def _add_issue(tx: Transaction, program_id: str, member_id: str, template: CouponTemplateItem, channel: str,
               cause: str, now: dt.datetime, today: dt.date, enforce_limit: bool) -> CouponItem:
    """Everything one coupon's issue writes, into `tx`. Labels: coupon (a code collision), stock,
    limit, wallet, history."""
    rules = CouponRules.model_validate(template.rules)
    valid_from, valid_until = (day.isoformat() for day in rules_of.window_for(rules, today))
    coupon_id, code, at = _new_coupon_id(), rules_of.new_code(), clock.stamp(now)
    coupon = CouponItem(
        *keys.coupon(program_id, code), program_id=program_id, member_id=member_id, coupon_id=coupon_id, code=code,
        template_id=template.template_id, template_version=int(template.version), rules=dict(template.rules),
        valid_from=valid_from, valid_until=valid_until, status=UNUSED, channel=channel, cause=cause,
        issued_at=at, changed_at=at)
    coupon.gsi1pk, coupon.gsi1sk = _wallet_slot(program_id, member_id, UNUSED, valid_until, coupon_id)
    coupon.gsi2pk, coupon.gsi2sk = keys.coupon_expiry_queue(program_id, valid_until, member_id, code)
    tx.put(coupon, CouponItem.pk.does_not_exist(), label="coupon")
    T = CouponTemplateItem
    if template.total is None:
        stock = T.pk.exists() & T.total.does_not_exist()
    else:
        # Guarded by the total we read too: a staff edit of the stock meanwhile makes us read again.
        stock = (T.total == int(template.total)) & (T.issued < int(template.total))
    tx.update(T(*keys.coupon_template(program_id, template.template_id)), actions=[T.issued.add(1)],
              condition=stock, label="stock")
    if enforce_limit and template.per_member_limit is not None:
        L = CouponLimitItem
        tx.update(L(*keys.coupon_limit(program_id, member_id, template.template_id)),
                  actions=[L.kind.set(L), L.issued.add(1)],
                  condition=L.issued.does_not_exist() | (L.issued < int(template.per_member_limit)), label="limit")
    _count_unused(tx, program_id, member_id, +1)
    _history(tx, coupon, "issued", UNUSED, at, f"{channel}:{cause}")
    return coupon


def _refuse_issue(template: CouponTemplateItem, today: dt.date) -> None:
    if not rules_of.can_issue(CouponRules.model_validate(template.rules), today):
        raise Conflict("this coupon's validity window has ended", code="not_claimable")
    if template.total is not None and int(template.issued or 0) >= int(template.total):
        raise Conflict("no coupons of this template are left", code="out_of_stock")


# --- member claims (领券中心) -----------------------------------------------------------------

def claim(settings: Settings, principal: MemberPrincipal, body: ClaimIn) -> tuple[dict[str, Any], int]:
    """One coupon of a claimable template, once per request_id. Stock, the per-member limit and a
    points price are all conditions of the one transaction that issues it."""
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    config = program_config(settings, program_id)
    caller_key = CallerKey.generic(program_id, f"coupon-claim:{member_id}", body.request_id, body)
    template_key = keys.coupon_template(program_id, body.template_id)
    limit_key = keys.coupon_limit(program_id, member_id, body.template_id)

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([caller_key.item_key, template_key, limit_key])
        replayed = caller_key.replay_of(found.get(caller_key.item_key))
        if replayed:
            return replayed
        template = found.get(template_key)
        if not isinstance(template, CouponTemplateItem):
            raise NotFound("no such coupon template", code="template_not_found")
        if not template.claimable:
            raise Conflict("this coupon is not for members to claim", code="not_claimable")
        now = clock.now()
        today = config.today(now)
        _refuse_issue(template, today)
        limit = template.per_member_limit
        held = int(getattr(found.get(limit_key), "issued", 0) or 0)
        if limit is not None and held >= int(limit):
            raise Conflict(f"at most {int(limit)} of this coupon per member", code="limit_reached")
        price = int(template.points_price or 0)
        issued: dict[str, CouponItem] = {}

        def coupon_items(tx: Transaction) -> None:
            coupon = _add_issue(tx, program_id, member_id, template, "claim", body.request_id, now, today, True)
            issued["coupon"] = coupon
            caller_key.record(tx, coupon_view(coupon, today), 201)

        with reread_if_taken("stock", "limit", "coupon", "ledger"):
            if price == 0:
                tx = Transaction()
                coupon_items(tx)
                tx.commit()
            else:
                _pay_and_issue(settings, config, program_id, member_id, price, template, body, caller_key, now,
                               coupon_items)
        return coupon_view(issued["coupon"], today), 201

    return with_retries(settings, attempt)


def _pay_and_issue(settings: Settings, config: Any, program_id: str, member_id: str, price: int,
                   template: CouponTemplateItem, body: ClaimIn, caller_key: CallerKey, now: dt.datetime,
                   coupon_items: Any) -> None:
    """积分兑换优惠券: the points leave the member's lots in the same transaction as the issue."""
    record = store.member(program_id, member_id)
    if record is None:
        raise NotFound("no such member", code="member_not_found")
    try:
        change = balance.spend(store.balances_of(record.account), record.lot_values, config.today(now), price)
    except balance.InDebt:
        raise InsufficientPoints("points are owed from a refund; spending is paused until repaid") from None
    except balance.NotEnoughPoints:
        if caller_key.lookup() is not None:  # our duplicate landed since the first read
            raise TryAgain from None
        raise InsufficientPoints() from None
    name = CouponRules.model_validate(template.rules).name
    row = store.LedgerRow(
        key=keys.member_operation(program_id, member_id, "coupon", body.request_id), type="redeem",
        points=-price, reason=f"coupon {name}", ref=f"coupon-template:{body.template_id}",
        request_hash=None, response=None, detail={"template_id": body.template_id, "request_id": body.request_id})
    store.apply_change(program_id, record.account, change,
                       {lot.expires_on: lot.remaining for lot in record.lot_values}, row, clock.stamp(now),
                       ids.new_entry_id(), extra=coupon_items, activity_day=config.today(now).isoformat())


# --- staff grants, automatic gifts -----------------------------------------------------------

def _issue_once(settings: Settings, program_id: str, member_id: str, template: CouponTemplateItem,
                guard: CallerKey, channel: str, cause: str, *,
                enforce_limit: bool) -> tuple[str, CouponTemplateItem]:
    """Issue one coupon unless `guard` (the record of this issue's cause) exists already.
    Returns "issued", "already", or the code of a refusal; and the template as last read."""
    config = program_config(settings, program_id)
    for _ in range(settings.max_conflict_retries):
        now = clock.now()
        today = config.today(now)
        try:
            _refuse_issue(template, today)
        except Conflict as refusal:
            # A retry after a crash: the stock (or the window) may be gone because this issue took it.
            if guard.lookup() is not None:
                return "already", template
            return refusal.code, template
        tx = Transaction()
        coupon = _add_issue(tx, program_id, member_id, template, channel, cause, now, today, enforce_limit)
        guard.record(tx, {"coupon_id": coupon.coupon_id, "member_id": member_id}, 201)
        tx.check(AccountItem, keys.account(program_id, member_id), AccountItem.pk.exists(), label="member")
        try:
            tx.commit()
            return "issued", template
        except ConditionsFailed as failed:
            if "member" in failed.labels:
                return "member_not_found", template
            if KEY_LABEL in failed.labels:
                return "already", template
            # Out of stock first, as a claim answers: with a stale stock read both guards fail here,
            # and the fresh read below decides (the answer must not depend on which member came first).
            if "limit" in failed.labels and "stock" not in failed.labels:
                return "limit_reached", template
            if not failed.labels & {"stock", "coupon"}:
                raise
            fresh = store.get_item(CouponTemplateItem, keys.coupon_template(program_id, template.template_id))
            if not isinstance(fresh, CouponTemplateItem):
                return "template_not_found", template
            template = fresh
        except TransactionConflict:
            pass
    raise RetryLater("this template is very busy; retry shortly")


def grant(settings: Settings, staff: StaffPrincipal, template_id: str, body: GrantIn) -> tuple[dict[str, Any], int]:
    """Staff give a template's coupon to each listed member, once per request_id: a repeat (or a
    rerun after a crash) issues nothing more. Members who cannot get one are listed with why."""
    program_id = staff.program_id
    caller_key = CallerKey.generic(program_id, "coupon-grants", body.request_id, body, template_id=template_id)
    replayed = caller_key.lookup()
    if replayed:
        return replayed
    template = store.get_item(CouponTemplateItem, keys.coupon_template(program_id, template_id))
    if not isinstance(template, CouponTemplateItem):
        raise NotFound("no such coupon template", code="template_not_found")
    granted, refused = 0, []
    for member_id in dict.fromkeys(body.member_ids):  # a member listed twice gets one
        guard = CallerKey.generic(program_id, f"coupon-grant:{body.request_id}", member_id, body,
                                  template_id=template_id)
        outcome, template = _issue_once(settings, program_id, member_id, template, guard, "grant",
                                        body.request_id, enforce_limit=True)
        if outcome in ("issued", "already"):
            granted += 1
        else:
            refused.append({"member_id": member_id, "code": outcome})
    answer = {"template_id": template_id, "request_id": body.request_id, "granted": granted, "refused": refused}

    def record() -> tuple[dict[str, Any], int]:
        tx = Transaction()
        caller_key.record(tx, answer, 200)
        try:
            tx.commit()
        except ConditionsFailed:  # a concurrent delivery of the same request recorded its answer first
            return caller_key.lookup() or (answer, 200)
        return answer, 200

    return with_retries(settings, record)  # a TransactionConflict is tried again, not a 500


def gift(settings: Settings, program_id: str, member_id: str, template_ids: list[str], cause: str) -> int:
    """Automatic gifts for one cause (`enrol`, `tier:<code>`, `birthday:<year>`,
    `redemption:<id>`): each template's coupon once per member and cause, however often the
    stream redelivers the record or the job reruns. Returns how many were issued now."""
    issued = 0
    for template_id in template_ids:
        template = store.get_item(CouponTemplateItem, keys.coupon_template(program_id, template_id))
        if not isinstance(template, CouponTemplateItem):
            logger().warning("coupon gift names no template", extra={"template_id": template_id, "cause": cause})
            continue
        guard = CallerKey.generic(program_id, f"coupon-gift:{member_id}", f"{cause}:{template_id}",
                                  GiftCause(template_id=template_id, cause=cause))
        outcome, _ = _issue_once(settings, program_id, member_id, template, guard, "gift", cause,
                                 enforce_limit=False)
        if outcome == "issued":
            issued += 1
        elif outcome != "already":
            logger().info("coupon gift not issued", extra={"template_id": template_id, "reason": outcome})
    return issued


def gift_on_enrol(settings: Settings, program_id: str, member_id: str) -> int:
    return gift(settings, program_id, member_id, program_config(settings, program_id).coupon_gifts.on_enrol, "enrol")


def gift_on_tier(settings: Settings, program_id: str, member_id: str, tier: str) -> int:
    """Once per member and tier, ever: falling back and reaching it again gives nothing more."""
    templates = program_config(settings, program_id).coupon_gifts.on_tier.get(tier, [])
    return gift(settings, program_id, member_id, templates, f"tier:{tier}") if templates else 0


def gift_on_redemption(settings: Settings, program_id: str, member_id: str, reward_id: str,
                       redemption_id: str) -> int:
    templates = program_config(settings, program_id).coupon_gifts.on_redemption.get(reward_id, [])
    return gift(settings, program_id, member_id, templates, f"redemption:{redemption_id}") if templates else 0


def birthday_step(ctx: JobContext) -> Step:
    """`birthday-coupons`: the program's birthday coupons, once per member and year."""
    config = program_config(ctx.settings, ctx.program_id)
    shard = int(ctx.state.get("shard", 0))
    templates = config.coupon_gifts.on_birthday
    gifted = 0
    if templates:
        for month_day in birthdays_on(ctx.as_of):
            for profile in TableItem.gsi2.query(keys.birthday_queue_partition(ctx.program_id, month_day, shard)):
                if isinstance(profile, ProfileItem):
                    gifted += gift(ctx.settings, ctx.program_id, profile.member_id, templates,
                                   f"birthday:{ctx.as_of.year}")
    return Step(shard + 1 >= keys.MEMBER_SHARDS, {"shard": shard + 1}, {"coupons_gifted": gifted})


# --- the wallet and the history --------------------------------------------------------------

def wallet(settings: Settings, principal: MemberPrincipal, status: str, limit: int,
           cursor: str | None) -> dict[str, Any]:
    """The caller's coupons in one status, soonest-expiring first: one Query. An unused coupon
    past its window is listed as expired from the first moment, whether or not the job ran."""
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    today = program_config(settings, program_id).today(clock.now())
    unused = keys.member_coupons(program_id, member_id, UNUSED)
    if status == UNUSED:
        # Sorted by last valid day: the key condition skips those past their window.
        page = _wallet_page(unused, limit, cursor, TableItem.gsi1sk >= today.isoformat())
    elif status == EXPIRED and cursor is None:
        # Past their window but not yet moved by tonight's job: at most a day's worth, listed first.
        late = [c for c in TableItem.gsi1.query(unused, TableItem.gsi1sk < today.isoformat())]
        page = _wallet_page(keys.member_coupons(program_id, member_id, EXPIRED), limit, None, None)
        page = paging.Page(late + page.items, page.next_cursor, True)
    else:
        page = _wallet_page(keys.member_coupons(program_id, member_id, status), limit, cursor, None)
    items = [coupon_view(c, today) for c in page.items if isinstance(c, CouponItem)]
    return {"items": items, "next_cursor": page.next_cursor}


def _wallet_page(partition: str, limit: int, cursor: str | None, range_condition: Any) -> paging.Page:
    start = paging.decode_cursor(cursor, partition)
    query = TableItem.gsi1.query(partition, range_condition, limit=limit, last_evaluated_key=start)
    items = list(query)
    return paging.Page(items, paging.encode_cursor(query.last_evaluated_key) if len(items) == limit else None,
                       start is None)


def history(program_id: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Every change of the member's coupons, newest first (staff)."""
    page = paging.gsi1_page(keys.coupon_history(program_id, member_id), limit, cursor, newest_first=True)
    if page.first and not page.items and store.get_item(AccountItem, keys.account(program_id, member_id)) is None:
        raise NotFound("no such member", code="member_not_found")
    items = [{"coupon_id": row.coupon_id, "code": row.code, "template_id": row.template_id, "name": row.name,
              "event": row.event, "status": row.status, "ref": row.ref,
              "discount_fen": int(row.discount_fen) if row.discount_fen is not None else None,
              "created_at": row.created_at}
             for row in page.items if isinstance(row, CouponEventItem)]
    return {"items": items, "next_cursor": page.next_cursor}


# --- 核销 at the till, and voiding -------------------------------------------------------------

def _coupon_key(program_id: str, typed: str) -> tuple[str, str] | None:
    code = rules_of.normalise_code(typed)
    return keys.coupon(program_id, code) if code else None


def _as_stored(body: RedeemIn | VoidIn) -> RedeemIn | VoidIn:
    """The body with its code as stored: the same code typed another way is the same request."""
    return body.model_copy(update={"code": rules_of.normalise_code(body.code) or body.code})


def _read_for(caller_key: CallerKey, coupon_key: tuple[str, str] | None) -> tuple[Any, CouponItem]:
    """One BatchGet of the caller's key record and the coupon: (a replay or None, the coupon)."""
    found = store.read_items([caller_key.item_key] + ([coupon_key] if coupon_key else []))
    replayed = caller_key.replay_of(found.get(caller_key.item_key))
    coupon = found.get(coupon_key) if coupon_key else None
    if replayed is None and not isinstance(coupon, CouponItem):
        # Another program's code is not found either: its key carries the caller's program.
        raise NotFound("no such coupon", code="coupon_not_found")
    return replayed, coupon  # type: ignore[return-value]


def redeem(settings: Settings, till: TillPrincipal, body: RedeemIn) -> tuple[dict[str, Any], int]:
    """Use a coupon on an order (核销): checked against its own copied rules and today's date in
    the program's zone, then marked used in one conditional transaction with the till's nonce.
    Idempotent on request_id; two tills racing for one code: one wins, the other gets 409."""
    program_id = till.program_id
    config = program_config(settings, program_id)
    caller_key = CallerKey.generic(program_id, "coupon-redeem", body.request_id, _as_stored(body))
    coupon_key = _coupon_key(program_id, body.code)

    def attempt() -> tuple[dict[str, Any], int]:
        replayed, coupon = _read_for(caller_key, coupon_key)
        if replayed:
            return replayed
        now = clock.now()
        today = config.today(now)
        rules_of.usable_on(coupon.status, dt.date.fromisoformat(coupon.valid_from),
                           dt.date.fromisoformat(coupon.valid_until), today, coupon.used_at)
        rules = CouponRules.model_validate(coupon.rules)
        discount = rules_of.discount_for(rules, rules_of.Order(body.order_amount_fen, till.store_id))
        at = clock.stamp(now)
        answer = {"coupon_id": coupon.coupon_id, "code": coupon.code, "template_id": coupon.template_id,
                  "name": rules.name, "kind": rules.kind, "gift_item": rules.gift_item, "order_id": body.order_id,
                  "order_amount_fen": body.order_amount_fen, "discount_fen": discount, "status": USED, "used_at": at}
        C = CouponItem
        tx = Transaction()
        tx.update(coupon, actions=[
            C.status.set(USED), C.used_at.set(at), C.order_id.set(body.order_id), C.discount_fen.set(discount),
            C.used_store_id.set(till.store_id) if till.store_id else C.used_store_id.remove(),
            C.gsi1pk.set(keys.member_coupons(program_id, coupon.member_id, USED)),
            C.gsi2pk.remove(), C.gsi2sk.remove(), C.changed_at.set(at),
        ], condition=C.status == UNUSED, label="coupon")
        _count_unused(tx, program_id, coupon.member_id, -1)
        _history(tx, coupon, "used", USED, at, body.order_id, discount)
        caller_key.record(tx, answer, 201)
        if till.nonce is not None:
            till.nonce.add_to(tx)
        with reread_if_taken("coupon"):  # another till used it meanwhile: read again, answer 409
            tx.commit()
        return answer, 201

    return with_retries(settings, attempt)


def void(settings: Settings, till: TillPrincipal, body: VoidIn) -> tuple[dict[str, Any], int]:
    """The whole order was cancelled: the coupon it used is unused again, or expired if its window
    has passed. A partial refund never comes here (the coupon stays used; README)."""
    program_id = till.program_id
    config = program_config(settings, program_id)
    caller_key = CallerKey.generic(program_id, "coupon-void", body.request_id, _as_stored(body))
    coupon_key = _coupon_key(program_id, body.code)

    def attempt() -> tuple[dict[str, Any], int]:
        replayed, coupon = _read_for(caller_key, coupon_key)
        if replayed:
            return replayed
        if coupon.status != USED or coupon.order_id != body.order_id:
            raise Conflict("this coupon is not used on this order", code="coupon_not_used")
        now = clock.now()
        today = config.today(now)
        after = rules_of.after_void(dt.date.fromisoformat(coupon.valid_until), today)
        at = clock.stamp(now)
        C = CouponItem
        actions: list[Action] = [C.status.set(after), C.used_at.remove(), C.order_id.remove(), C.discount_fen.remove(),
                   C.used_store_id.remove(), C.changed_at.set(at),
                   C.gsi1pk.set(keys.member_coupons(program_id, coupon.member_id, after))]
        tx = Transaction()
        if after == UNUSED:
            queue_pk, queue_sk = keys.coupon_expiry_queue(program_id, coupon.valid_until, coupon.member_id,
                                                          coupon.code)
            actions += [C.gsi2pk.set(queue_pk), C.gsi2sk.set(queue_sk)]
            _count_unused(tx, program_id, coupon.member_id, +1)
        tx.update(coupon, actions=actions, condition=(C.status == USED) & (C.order_id == body.order_id),
                  label="coupon")
        _history(tx, coupon, "voided", after, at, body.order_id)
        coupon.status, coupon.used_at, coupon.order_id, coupon.discount_fen = after, None, None, None
        answer = coupon_view(coupon, today)
        caller_key.record(tx, answer, 200)
        if till.nonce is not None:
            till.nonce.add_to(tx)
        with reread_if_taken("coupon"):
            tx.commit()
        return answer, 200

    return with_retries(settings, attempt)


# --- expiry and reminders (daily jobs) -------------------------------------------------------

def expire_step(ctx: JobContext) -> Step:
    """`expire-coupons`: unused coupons whose last day was the day before as_of, a page at a time,
    read from that day's queue (what expires that day, not all coupons). Each moves once: its
    status is the condition, so a rerun or a second run moves nothing."""
    day = (ctx.as_of - dt.timedelta(days=1)).isoformat()
    shard = int(ctx.state.get("shard", 0))
    query = TableItem.gsi2.query(keys.coupon_expiry_queue_partition(ctx.program_id, day, shard), limit=PAGE,
                                 last_evaluated_key=ctx.state.get("last_key"))
    expired = 0
    for coupon in query:
        if isinstance(coupon, CouponItem) and coupon.status == UNUSED:
            expired += _expire(coupon)
    counts = {"coupons_expired": expired}
    if query.last_evaluated_key:
        return Step(False, {"shard": shard, "last_key": query.last_evaluated_key}, counts)
    return Step(shard + 1 >= keys.EXPIRY_SHARDS, {"shard": shard + 1}, counts)


def _expire(coupon: CouponItem) -> int:
    at = clock.stamp(clock.now())
    C = CouponItem
    tx = Transaction()
    tx.update(coupon, actions=[
        C.status.set(EXPIRED), C.changed_at.set(at), C.gsi2pk.remove(), C.gsi2sk.remove(),
        C.gsi1pk.set(keys.member_coupons(coupon.program_id, coupon.member_id, EXPIRED)),
    ], condition=(C.status == UNUSED) & (C.valid_until == coupon.valid_until), label="coupon")
    _count_unused(tx, coupon.program_id, coupon.member_id, -1)
    _history(tx, coupon, "expired", EXPIRED, at, f"valid_until:{coupon.valid_until}")
    try:
        tx.commit()
    except ConditionsFailed as failed:
        if "coupon" in failed.labels:
            return 0  # used, voided or expired meanwhile
        raise
    return 1


def remind_step(ctx: JobContext) -> Step:
    """`coupon-reminders`: members holding unused coupons whose last day is 3 days after as_of get
    one subscribe message (template of `coupon_expiring`, e.g. tmpl-coupon) per day listing them;
    sending takes a consent credit as every message does."""
    day = (ctx.as_of + dt.timedelta(days=REMIND_DAYS_BEFORE)).isoformat()
    shard = int(ctx.state.get("shard", 0))
    due: dict[str, list[CouponItem]] = defaultdict(list)
    for coupon in TableItem.gsi2.query(keys.coupon_expiry_queue_partition(ctx.program_id, day, shard)):
        if isinstance(coupon, CouponItem) and coupon.status == UNUSED:
            due[coupon.member_id].append(coupon)
    queued = 0
    for member_id, coupons in due.items():
        names = sorted({str(c.rules.get("name", "")) for c in coupons})
        queued += notifications.enqueue(ctx.settings, ctx.program_id, member_id, message_rules.COUPON_EXPIRING,
                                        f"coupon-expiring#{day}", {
                                            "name": names[0] if len(names) == 1 else f"{len(coupons)}张优惠券",
                                            "count": len(coupons), "valid_until": day,
                                            "days_left": REMIND_DAYS_BEFORE})
    counts = {"coupon_reminders": queued, "coupons_reminded": sum(len(v) for v in due.values())}
    return Step(shard + 1 >= keys.EXPIRY_SHARDS, {"shard": shard + 1}, counts)
