"""Coupon rules (优惠券): what a template says, what a coupon copies of it, when a coupon is valid,
and what it takes off an order. Pure: integers and calendar days, no I/O.

A coupon copies its template's `CouponRules` when it is issued, so a later edit of the template
never changes a coupon already in a wallet.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import Conflict, InvalidRequest

Kind = Literal["amount_off", "percent_off", "gift"]
UNUSED, USED, EXPIRED = "unused", "used", "expired"
STATUSES = (UNUSED, USED, EXPIRED)

# Codes people read off a phone and type into a till: no 0/O, 1/I/L look-alikes. 31 symbols give
# 4.95 bits each; 12 of them are 59 bits of randomness (the issue asks for at least 40).
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12


class CouponRules(BaseModel):
    """A template's rules, as checked by `check_rules` and copied onto every coupon it issues."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)
    name: str
    kind: Kind
    threshold_fen: int = 0
    off_fen: int | None = None
    percent: int | None = None  # what the customer pays: 80 = 八折 (20% off)
    max_off_fen: int | None = None
    gift_item: str | None = None
    valid_days: int | None = None  # N calendar days from the day of issue, that day included
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    store_ids: list[str] | None = None  # None: every store


def check_rules(rules: CouponRules) -> None:
    """Refuse rules that cannot make a sensible coupon, naming the field (400)."""
    def bad(field: str, why: str) -> InvalidRequest:
        return InvalidRequest(f"{field}: {why}")

    if rules.threshold_fen < 0:
        raise bad("threshold_fen", "must not be negative")
    for field in ("off_fen", "max_off_fen"):
        value = getattr(rules, field)
        if value is not None and value < 1:
            raise bad(field, "must be at least 1 fen")
    if rules.kind == "amount_off":
        if rules.off_fen is None:
            raise bad("off_fen", "an amount_off template needs off_fen")
        if rules.threshold_fen > 0 and rules.off_fen >= rules.threshold_fen:
            raise bad("off_fen", "must be less than threshold_fen (满减: the order must still cost something)")
        for field in ("percent", "max_off_fen"):
            if getattr(rules, field) is not None:
                raise bad(field, "only percent_off templates take it")
    elif rules.kind == "percent_off":
        if rules.percent is None:
            raise bad("percent", "a percent_off template needs percent (80 = 八折)")
        if not 1 <= rules.percent <= 99:
            raise bad("percent", "must be 1 to 99 (what the customer pays, 80 = 八折)")
        if rules.off_fen is not None:
            raise bad("off_fen", "only amount_off templates take it")
    else:
        for field in ("off_fen", "percent", "max_off_fen"):
            if getattr(rules, field) is not None:
                raise bad(field, "a gift template takes none")
    window = rules.valid_from is not None or rules.valid_until is not None
    if rules.valid_days is not None and window:
        raise bad("valid_days", "give either valid_days or valid_from + valid_until, not both")
    if rules.valid_days is None and not window:
        raise bad("valid_days", "give valid_days or valid_from + valid_until")
    if rules.valid_days is not None and not 1 <= rules.valid_days <= 3660:
        raise bad("valid_days", "must be 1 to 3660")
    if window:
        if rules.valid_from is None:
            raise bad("valid_from", "valid_until needs valid_from")
        if rules.valid_until is None:
            raise bad("valid_until", "valid_from needs valid_until")
        if rules.valid_until < rules.valid_from:
            raise bad("valid_until", "the window is empty: valid_until is before valid_from")
    if rules.store_ids is not None and not rules.store_ids:
        raise bad("store_ids", "an empty list would allow no store; omit it to allow every store")


def window_for(rules: CouponRules, issued_on: dt.date) -> tuple[dt.date, dt.date]:
    """The days (inclusive, program time zone) a coupon issued on `issued_on` can be used."""
    if rules.valid_days is not None:
        return issued_on, issued_on + dt.timedelta(days=rules.valid_days - 1)
    assert rules.valid_from is not None and rules.valid_until is not None  # check_rules
    return rules.valid_from, rules.valid_until


def can_issue(rules: CouponRules, today: dt.date) -> bool:
    """A fixed window that has ended issues nothing (the coupon would be born expired)."""
    return rules.valid_until is None or rules.valid_until >= today


@dataclass(frozen=True)
class Order:
    amount_fen: int
    store_id: str | None


def discount_for(rules: CouponRules, order: Order) -> int:
    """What the coupon takes off this order, in fen; never more than the order. Refusals are 409s."""
    if order.amount_fen < rules.threshold_fen:
        raise Conflict(f"the order must be at least {rules.threshold_fen} fen for this coupon",
                       code="threshold_not_met")
    if rules.store_ids is not None and order.store_id not in rules.store_ids:
        raise Conflict("this coupon cannot be used at this store", code="store_not_allowed")
    if rules.kind == "amount_off":
        off = rules.off_fen or 0
    elif rules.kind == "percent_off":
        # Rounded down: the discount is whole fen and never more than the percent promises.
        off = order.amount_fen * (100 - (rules.percent or 100)) // 100
        if rules.max_off_fen is not None:
            off = min(off, rules.max_off_fen)
    else:
        off = 0  # a gift coupon hands over an item; the order's price does not change
    return max(0, min(off, order.amount_fen))


def usable_on(status: str, valid_from: dt.date, valid_until: dt.date, today: dt.date, used_at: str | None) -> None:
    """Refuse a coupon that cannot be used today, whatever the expiry job has done so far."""
    if status == USED:
        raise Conflict(f"this coupon was already used at {used_at}", code="coupon_used")
    if status == EXPIRED or today > valid_until:
        raise Conflict(f"this coupon expired after {valid_until.isoformat()}", code="coupon_expired")
    if today < valid_from:
        raise Conflict(f"this coupon can be used from {valid_from.isoformat()}", code="coupon_not_yet_valid")


def shown_status(status: str, valid_until: dt.date, today: dt.date) -> str:
    """The status a member sees: an unused coupon past its window is expired, job or not."""
    return EXPIRED if status == UNUSED and today > valid_until else status


def after_void(valid_until: dt.date, today: dt.date) -> str:
    """A used coupon whose whole order was cancelled: unused again, or expired if its time passed."""
    return UNUSED if today <= valid_until else EXPIRED


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(typed: str) -> str | None:
    """What a till sends (lower case, spaces or dashes allowed) as the stored code; None if it
    cannot be a code at all."""
    code = typed.replace("-", "").replace(" ", "").upper()
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def rules_json(rules: CouponRules) -> dict[str, Any]:
    return rules.model_dump(mode="json")
