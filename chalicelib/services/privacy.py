"""Members' rights: the export of everything held about a member, erasure (by the member or by
staff for a request received elsewhere), and withdrawing consent for messages.

What each item kind is to a member, and so what export and erasure do with it, is one table:
domain/privacy.py `KINDS`. Items are found through the member's keys and indexes
(store/privacy.py `member_items`), never by scanning the table.

Erasure, in this order (every step can run again: a crash half way is resumed by asking again):
  1. settle: pending WeChat Pay orders are settled (paid) or closed; stored value (frozen money
     included) must then be zero, else 409 `stored_value_not_settled` and nothing changes.
  2. the erasure item is written (status `erasing`): from here the member's tokens are refused.
  3. open holds are released; then the points are forfeited (one ledger row `forfeit`, keyed
     by the erasure, so it is written once).
  4. OWNED and PERSONAL items are deleted (coupons revoked, consents dropped, WeChat users,
     identity guards, the profile last: it is what finds the guards); FINANCIAL records stay
     under the member id with their personal attributes cleared (a pay order's openid);
     webhook events that copied profile fields are deleted.
  5. the erasure item is marked `done` with what was done; the log row says who and when.
"""

from __future__ import annotations

from typing import Any

from chalicelib import clock, crypto, ids
from chalicelib.auth.principals import MemberPrincipal, StaffPrincipal
from chalicelib.domain import balance
from chalicelib.domain import privacy as rules
from chalicelib.errors import Conflict, NotFound
from chalicelib.logs import logger
from chalicelib.services import holds
from chalicelib.services.members import resolve_member_id
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as ledger_store
from chalicelib.store import privacy as store
from chalicelib.store.models import (
    ErasureItem,
    HoldItem,
    PayOrderItem,
    ProfileItem,
    StoredValueItem,
    SubscriptionItem,
    TableItem,
)
from chalicelib.store.tx import ConditionsFailed, Transaction

FORFEIT_TYPE = "forfeit"
MEMBER = "member"


def _log(program_id: str, member_id: str, action: str, by: str, outcome: str, items: int) -> None:
    now = clock.now()
    store.log(program_id, member_id, action, by, outcome, now, items, ids.new_entry_id())
    logger().info("privacy request", extra={"action": action, "member_id": member_id, "by": by,
                                            "outcome": outcome, "items": items})


def _by(staff: StaffPrincipal | None) -> str:
    return MEMBER if staff is None else f"staff:{staff.key_name}"


# --- export ----------------------------------------------------------------------------------

def export_mine(settings: Settings, principal: MemberPrincipal) -> dict[str, Any]:
    member_id = resolve_member_id(principal)
    return export(settings, principal.program_id, member_id, {principal.openid}, None)


def export(settings: Settings, program_id: str, member_id: str, openids: set[str],
           staff: StaffPrincipal | None) -> dict[str, Any]:
    """Every item held about the member, by kind (the person's own phone unmasked, here only)."""
    items = store.member_items(program_id, member_id, openids)
    profile = next((i for i in items if isinstance(i, ProfileItem) and i.member_id == member_id), None)
    if profile is None:
        raise NotFound("no such member", code="member_not_found")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    count = 0
    for item in sorted(items, key=lambda i: (store.kind_of(i), i.pk, i.sk)):
        kind = store.kind_of(item)
        if not rules.KINDS[kind].exported:
            continue
        by_kind.setdefault(kind, []).append(rules.export_view(kind, store.plain(item)))
        count += 1
    phone = None
    if profile.phone_enc:
        phone = crypto.decrypt(settings, profile.phone_enc, context=profile.pk)
    document = {
        "member_id": member_id,
        "exported_at": clock.stamp(clock.now()),
        "profile": {"member_id": member_id, "openid": profile.openid, "unionid": profile.unionid,
                    "nickname": profile.nickname, "birthday": profile.birthday, "phone": phone,
                    "invite_code": profile.invite_code, "invited_by": profile.invited_by,
                    "enrolled_at": profile.enrolled_at},
        "items": by_kind,
        "counts": {kind: len(rows) for kind, rows in by_kind.items()},
        "retention": {kind: h.why for kind, h in rules.KINDS.items() if h.cls == rules.FINANCIAL and kind in by_kind},
    }
    _log(program_id, member_id, "export", _by(staff), "completed", count)
    return document


# --- erasure ---------------------------------------------------------------------------------

def erase_mine(settings: Settings, principal: MemberPrincipal) -> dict[str, Any]:
    member_id = resolve_member_id(principal)
    return erase(settings, principal.program_id, member_id, {principal.openid}, None)


def erase_by_staff(settings: Settings, staff: StaffPrincipal, member_id: str) -> dict[str, Any]:
    return erase(settings, staff.program_id, member_id, set(), staff)


def _view(item: ErasureItem) -> dict[str, Any]:
    summary = dict(item.summary or {})
    summary.pop("profile_revision", None)
    return {"member_id": item.member_id, "status": item.status, "requested_by": item.requested_by,
            "requested_at": item.requested_at, "completed_at": item.completed_at, "summary": summary}


def _settle_money(settings: Settings, program_id: str, member_id: str, items: list[TableItem]) -> dict[str, int]:
    """Step 1: no pending WeChat Pay order may outlive the member; stored value must be zero."""
    from chalicelib.services import payments  # lazy: wechatpayv3 only where money moves

    _refuse_unless_stored_value_settled(program_id, member_id)  # before anything changes
    settled = 0
    for item in items:
        if isinstance(item, PayOrderItem) and item.status == "pending":
            payments.settle_or_close_now(settings, item, clock.now())
            settled += 1
    if settled:
        _refuse_unless_stored_value_settled(program_id, member_id)  # a settled order credited it
    return {"pay_orders_settled": settled}


def _refuse_unless_stored_value_settled(program_id: str, member_id: str) -> None:
    wallet = ledger_store.get_item(StoredValueItem, keys.stored_value(program_id, member_id))
    if isinstance(wallet, StoredValueItem):
        principal = int(wallet.principal)
        frozen = int(wallet.frozen_principal) + int(wallet.frozen_bonus)
        # Paid-in money is the member's: refunded (staff, top-up refunds) or spent first. Bonus
        # money was given, not paid: what is left of it is forfeited with the points.
        if principal or frozen:
            raise Conflict(
                f"stored value must be refunded or spent first (principal {principal} fen, frozen {frozen} fen: "
                "pending till payments and refunds settle first)", code="stored_value_not_settled")


def _forfeit_bonus(settings: Settings, program_id: str, member_id: str) -> int:
    """What is left of given (bonus) stored value goes, with its history row (keyed by the
    erasure: written once); the liability falls with it."""
    from chalicelib.domain.stored_value import Wallet
    from chalicelib.services.programs import program_config
    from chalicelib.store import stored_value as wallets

    config = program_config(settings, program_id)
    for _attempt in range(5):
        read = ledger_store.get_item(StoredValueItem, keys.stored_value(program_id, member_id))
        if not isinstance(read, StoredValueItem) or not int(read.bonus):
            return 0
        before = wallets.wallet_of(read)
        if before.principal or before.frozen_principal or before.frozen_bonus:
            raise Conflict("stored value moved during the erasure: ask again", code="stored_value_not_settled")
        bonus = before.bonus
        tx = Transaction()
        now = clock.now()
        wallets.write(tx, program_id, member_id, read, Wallet(), wallets.Entry(
            "erasure", member_id, "bonus_forfeit", 0, -bonus, member_id), clock.stamp(now),
            config.today(now).isoformat(), ids.new_entry_id())
        try:
            tx.commit()
            return bonus
        except ConditionsFailed as failed:
            if wallets.ENTRY_LABEL in failed.labels:
                return 0
    raise Conflict("the stored value kept changing; ask again", code="erasure_busy")


def _forfeit(settings: Settings, program_id: str, member_id: str) -> int:
    """Step 3: every point goes (lots drained, debt and pending cleared), with its ledger row;
    keyed by the erasure, so a resumed erasure writes it once."""
    for _attempt in range(5):
        record = ledger_store.member(program_id, member_id)
        if record is None:
            return 0
        before = ledger_store.balances_of(record.account)
        lots = {lot.expires_on: int(lot.remaining) for lot in record.lot_values if int(lot.remaining)}
        after = balance.Balances(points=0, held=0, debt=0, growth=before.growth,
                                 growth_months=before.growth_months, pending=0)
        change = balance.Change(after, {day: -n for day, n in lots.items()})
        row = ledger_store.LedgerRow(
            key=store.forfeit_key(program_id, member_id), type=FORFEIT_TYPE, points=-before.points,
            reason="account erased at the member's request", ref=member_id, request_hash=None, response=None,
            detail={"lots": sum(lots.values()), "debt": before.debt, "held": before.held},
            pending=-before.pending)
        try:
            ledger_store.apply_change(program_id, record.account, change, lots, row, clock.stamp(clock.now()),
                                      ids.new_entry_id())
            return before.points
        except ConditionsFailed as failed:
            if "ledger" in failed.labels:
                return 0  # forfeited by an earlier attempt
    raise Conflict("the account kept changing; ask again", code="erasure_busy")


def erase(settings: Settings, program_id: str, member_id: str, openids: set[str],
          staff: StaffPrincipal | None) -> dict[str, Any]:
    by = _by(staff)
    done = store.erasure(program_id, member_id)
    if done is not None and done.status == "done":
        return _view(done)
    items = store.member_items(program_id, member_id, openids)
    profile = next((i for i in items if isinstance(i, ProfileItem) and i.member_id == member_id), None)
    if profile is None and done is None:
        raise NotFound("no such member", code="member_not_found")
    try:
        summary: dict[str, Any] = _settle_money(settings, program_id, member_id, items)
    except Conflict as refused:
        _log(program_id, member_id, "erasure", by, f"refused:{refused.code}", 0)
        raise
    revision = int(profile.revision or 0) if profile is not None else int((done.summary or {}).get("profile_revision", 0)) if done else 0
    erasure = store.start_erasure(program_id, member_id, by, clock.stamp(clock.now()), revision)
    # The WeChat users first: a token without a member id resolves through them, so from here on
    # every token of the member is refused (one with a member id: by the erasure item).
    for user in store.wechat_users_of(items, member_id):
        store.delete(user)

    released = 0
    for item in items:
        if isinstance(item, HoldItem) and item.status == holds.HELD:
            try:
                holds.settle(settings, program_id, item.hold_id, holds.RELEASED, "member erased")
                released += 1
            except Conflict:
                pass  # settled meanwhile
    summary["holds_released"] = released
    summary["points_forfeited"] = _forfeit(settings, program_id, member_id)
    summary["bonus_forfeited_fen"] = _forfeit_bonus(settings, program_id, member_id)

    # Read again: steps 1-3 wrote rows (the forfeit, released holds) that are the member's too.
    items = store.member_items(program_id, member_id, openids, revision=revision)
    deleted: dict[str, int] = {}
    stripped = 0
    profile_items: list[TableItem] = []
    for item in items:
        kind = store.kind_of(item)
        handling = rules.KINDS[kind]
        if kind == "profile":
            profile_items.append(item)  # last: it is what finds the identity guards
        elif handling.deleted or handling.cls == rules.OUTBOX:
            store.delete(item)
            deleted[kind] = deleted.get(kind, 0) + 1
        elif handling.strip:
            store.strip(item, handling.strip, rules.ERASED)
            stripped += 1
    for item in profile_items:
        store.delete(item)
        deleted["profile"] = deleted.get("profile", 0) + 1
    summary.update({"deleted": deleted, "records_stripped": stripped,
                    "records_kept": sum(1 for i in items if rules.KINDS[store.kind_of(i)].cls == rules.FINANCIAL)})
    store.finish_erasure(erasure, summary, clock.stamp(clock.now()))
    _log(program_id, member_id, "erasure", by, "completed", sum(deleted.values()))
    finished = store.erasure(program_id, member_id)
    assert finished is not None
    return _view(finished)


# --- consent ---------------------------------------------------------------------------------

def withdraw_consent(settings: Settings, principal: MemberPrincipal, template_id: str) -> dict[str, Any]:
    """Drop the member's send credits for a template: no message of it goes out any more (the
    sender takes a credit before sending; none left: the job is dropped `no_consent`)."""
    from chalicelib.services import notifications

    member_id = resolve_member_id(principal)
    SubscriptionItem(*keys.subscription(principal.program_id, member_id, template_id)).delete(
        add_version_condition=False)
    return {"credits": notifications.credits(principal.program_id, member_id)}


# --- the log ---------------------------------------------------------------------------------

def log_page(staff: StaffPrincipal, limit: int, cursor: str | None) -> dict[str, Any]:
    """The program's exports and erasures, newest first (no personal data in them)."""
    from chalicelib.store import paging
    from chalicelib.store.models import PrivacyLogItem

    page = paging.gsi1_page(keys.privacy_log_list(staff.program_id), limit, cursor, newest_first=True)
    return {"items": [{"action": item.action, "member_id": item.member_id, "by": item.by, "outcome": item.outcome,
                       "at": item.at, "items": int(item.items)}
                      for item in page.items if isinstance(item, PrivacyLogItem)],
            "next_cursor": page.next_cursor}

