"""Finding every item of one member through their keys and indexes (never by scanning the table),
and the erasure's own writes. What each kind is to a member is domain/privacy.py's table.

Where a member's items are:
  P#P#M#M (every sort key)          account, profile, lots, ledger ops, coupons' history, consents...
  gsi1 P#P#M#M#POINTS               ledger rows, orders and refunds of orders (in order partitions)
  gsi1 P#P#M#M#HOLDS                holds
  gsi1 P#P#M#M#COUPONS#<status>     coupons (keyed by code)
  gsi1 P#P#M#M#WX, the profile      WeChat users (every openid linked to the member)
  the profile's unionid/phone/code  identity guards
  SV#<kind>#<key> rows, PAYREF#     WeChat Pay orders and refunds, till payments and their refunds
  the profile's revision            webhook events that copy profile fields (their ids are derived)
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from chalicelib.domain import webhooks as webhook_rules
from chalicelib.domain.privacy import PROFILE_EVENT_TYPES
from chalicelib.store import keys
from chalicelib.store.models import (
    ErasureItem,
    LedgerItem,
    OrderItem,
    PayOrderRefItem,
    PrivacyLogItem,
    ProfileItem,
    StoredValueEntryItem,
    TableItem,
    WechatUserItem,
)

COUPON_STATUSES = ("unused", "used", "expired")
Key = tuple[str, str]


def _batch(item_keys: list[Key]) -> list[TableItem]:
    unique = sorted(set(item_keys))
    return list(TableItem.batch_get(unique, consistent_read=True)) if unique else []


def _money_keys(program_id: str, entry: StoredValueEntryItem) -> list[Key]:
    """The records a stored-value row names through its own key (SV#<kind>#<key>)."""
    _, kind, key = entry.sk.split("#", 2)
    if kind == "topup":
        return [keys.pay_order(key)]
    if kind == "erasure":
        return []  # the erasure's own row (a bonus forfeited)
    if kind in ("refund", "refunded"):
        return [keys.pay_refund(key)]
    if kind == "payrefund" and "#" in key:
        payment_id, refund_id = key.split("#", 1)
        return [keys.sv_payment(program_id, payment_id), keys.sv_payment_refund(program_id, payment_id, refund_id)]
    return [keys.sv_payment(program_id, key)]  # pay, capture, release: a till payment


def profile_event_keys(program_id: str, member_id: str, revision: int) -> list[str]:
    """Partitions of the webhook events that copy profile fields: the enrolment and every change
    (their ids are derived from the change, domain/webhooks.py)."""
    sources = [("member.enrolled", f"enrolled#{member_id}")] + [
        ("member.updated", f"updated#{member_id}#{n}") for n in range(1, revision + 1)]
    assert {t for t, _ in sources} <= set(PROFILE_EVENT_TYPES)
    return [keys.webhook_event(program_id, webhook_rules.event_id(
        program_id, webhook_rules.Fact(t, member_id, source, None, {})))[0] for t, source in sources]


def member_items(program_id: str, member_id: str, openids: set[str], revision: int | None = None) -> list[TableItem]:
    """Every item of the member (each once), by key and index reads, every page of each.
    `openids`: WeChat users known to be the member's beyond what the index lists (the caller's)."""
    found: dict[Key, TableItem] = {}

    def add(items: Iterator[TableItem] | list[TableItem]) -> None:
        for item in items:
            found.setdefault((item.pk, item.sk), item)

    add(TableItem.query(keys.member_pk(program_id, member_id), consistent_read=True))
    add(TableItem.gsi1.query(keys.points_history(program_id, member_id)))
    add(TableItem.gsi1.query(keys.member_holds(program_id, member_id)))
    for status in COUPON_STATUSES:
        add(TableItem.gsi1.query(keys.member_coupons(program_id, member_id, status)))
    add(TableItem.gsi1.query(keys.member_wechat_users_partition(program_id, member_id)))

    profile = found.get(keys.profile(program_id, member_id))
    more: list[Key] = [keys.wechat_user(program_id, openid) for openid in openids]
    if isinstance(profile, ProfileItem):
        more.append(keys.wechat_user(program_id, profile.openid))
        more.append(keys.invite_guard(program_id, profile.invite_code))
        if profile.unionid:
            more.append(keys.unionid_guard(program_id, profile.unionid))
        if profile.phone_hash:
            more.append(keys.phone_guard(program_id, profile.phone_hash))
        # The one-trial guards by WeChat id and by member (the phone's stays: domain/privacy.py).
        more += [keys.trial_claim_member(program_id, member_id), keys.trial_claim_wechat(program_id, profile.openid)]
        if profile.unionid:
            more.append(keys.trial_claim_wechat(program_id, profile.unionid))
        revision = int(profile.revision or 0) if revision is None else revision
    for item in list(found.values()):
        if isinstance(item, OrderItem):
            more.append(keys.order_totals(program_id, item.pk.rsplit("#ORDER#", 1)[1]))
        elif isinstance(item, StoredValueEntryItem):
            more += _money_keys(program_id, item)
        elif isinstance(item, PayOrderRefItem):
            more.append(keys.pay_order(item.out_trade_no))
    add([item for item in _batch(more) if getattr(item, "member_id", member_id) == member_id
         or isinstance(item, (WechatUserItem,))])
    for partition in profile_event_keys(program_id, member_id, revision or 0):
        add(TableItem.query(partition))
    return list(found.values())


def wechat_users_of(items: list[TableItem], member_id: str) -> list[WechatUserItem]:
    return [item for item in items if isinstance(item, WechatUserItem) and item.member_id == member_id]


def kind_of(item: TableItem) -> str:
    """The item's kind as stored (models' discriminator)."""
    return str(TableItem._attributes["kind"]._class_map[type(item)])  # type: ignore[attr-defined]


def plain(item: TableItem) -> dict[str, Any]:
    """Every attribute of an item as plain JSON values."""
    out: dict[str, Any] = {}
    for name in item.get_attributes():
        value = kind_of(item) if name == "kind" else getattr(item, name, None)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, (set, frozenset)):
            value = sorted(value)
        out[name] = value
    return out


# --- erasure's own items ---------------------------------------------------------------------

def erasure(program_id: str, member_id: str, consistent: bool = True) -> ErasureItem | None:
    try:
        return ErasureItem.get(*keys.erasure(program_id, member_id), consistent_read=consistent)
    except DoesNotExist:
        return None


def start_erasure(program_id: str, member_id: str, requested_by: str, now: str, revision: int) -> ErasureItem:
    """The erasure's item, written once (a second request resumes it: attempts + 1)."""
    item = ErasureItem(*keys.erasure(program_id, member_id))
    item.update(actions=[
        ErasureItem.kind.set(ErasureItem), ErasureItem.program_id.set(program_id),
        ErasureItem.member_id.set(member_id), ErasureItem.status.set("erasing"),
        ErasureItem.requested_by.set(ErasureItem.requested_by | requested_by),
        ErasureItem.requested_at.set(ErasureItem.requested_at | now),
        ErasureItem.summary.set(ErasureItem.summary | {"profile_revision": revision}),
        ErasureItem.attempts.add(1),
    ], condition=ErasureItem.status.does_not_exist() | (ErasureItem.status != "done"))
    return item


def finish_erasure(item: ErasureItem, summary: dict[str, Any], now: str) -> None:
    item.update(actions=[ErasureItem.status.set("done"), ErasureItem.completed_at.set(now),
                         ErasureItem.summary.set(summary)])


def delete(item: TableItem) -> None:
    """Deleting twice is harmless (a resumed erasure)."""
    TableItem(item.pk, item.sk).delete(add_version_condition=False)


def strip(item: TableItem, attributes: tuple[str, ...], erased: str) -> None:
    """Clear personal attributes of a record that stays (non-null ones get `erased`)."""
    model = type(item)
    actions: list[Action] = []
    for name in attributes:
        attribute = model.get_attributes()[name]
        actions.append(attribute.set(erased) if not attribute.null else attribute.remove())
    if actions:
        model(item.pk, item.sk).update(actions=actions, condition=model.pk.exists(), add_version_condition=False)


def log(program_id: str, member_id: str, action: str, by: str, outcome: str, at: dt.datetime, items: int,
        log_id: str) -> None:
    """An export or erasure, logged without the personal data (member id, who, when, outcome)."""
    stamp = at.isoformat()
    PrivacyLogItem(*keys.privacy_log(program_id, stamp[:7], stamp, log_id), program_id=program_id,
                   member_id=member_id, action=action, by=by, outcome=outcome, at=stamp, items=items,
                   gsi1pk=keys.privacy_log_list(program_id), gsi1sk=f"{stamp}#{log_id}").save()


def forfeit_key(program_id: str, member_id: str) -> Key:
    return keys.member_operation(program_id, member_id, "erasure", member_id)


__all__ = ["LedgerItem", "kind_of", "member_items", "plain", "erasure", "start_erasure", "finish_erasure", "delete",
           "strip", "log", "forfeit_key", "wechat_users_of", "profile_event_keys"]
