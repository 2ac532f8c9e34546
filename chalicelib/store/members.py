"""Member storage: the WeChat user link, enrolment with its uniqueness guards, phone binding,
and the one-Query read of everything the member card shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from chalicelib.domain.lots import Lot
from chalicelib.store import keys
from chalicelib.store.models import (
    AccountItem,
    CheckinStateItem,
    CouponWalletItem,
    IdentityItem,
    LotItem,
    ProfileItem,
    ReferralItem,
    StoredValueItem,
    TableItem,
    WechatUserItem,
)
from chalicelib.store.tx import ConditionsFailed, Transaction


@dataclass
class MemberRecord:
    account: AccountItem
    profile: ProfileItem
    lots: list[LotItem]
    checkin: CheckinStateItem | None = None
    coupons_unused: int = 0
    stored_value: StoredValueItem | None = None

    @property
    def stored_value_fen(self) -> int:
        """What the member can spend from stored value (frozen money not included)."""
        item = self.stored_value
        return 0 if item is None else int(item.principal) + int(item.bonus)

    @property
    def lot_values(self) -> list[Lot]:
        return [Lot(dt.date.fromisoformat(item.expires_on), int(item.remaining)) for item in self.lots]


def record_login(program_id: str, openid: str, unionid: str | None, session_key_enc: str, now: str) -> str | None:
    """Upsert the WeChat user in one write and return the member it is linked to, if any."""
    pk, sk = keys.wechat_user(program_id, openid)
    user = WechatUserItem(pk, sk)
    actions: list[Action] = [
        WechatUserItem.kind.set(WechatUserItem),
        WechatUserItem.program_id.set(program_id),
        WechatUserItem.openid.set(openid),
        WechatUserItem.session_key_enc.set(session_key_enc),
        WechatUserItem.last_login_at.set(now),
    ]
    if unionid:
        actions.append(WechatUserItem.unionid.set(unionid))
    user.update(actions=actions)
    return user.member_id


def wechat_user(program_id: str, openid: str) -> WechatUserItem | None:
    try:
        return WechatUserItem.get(*keys.wechat_user(program_id, openid), consistent_read=True)
    except DoesNotExist:
        return None


def identity(key: tuple[str, str]) -> str | None:
    try:
        return IdentityItem.get(*key, consistent_read=True).member_id
    except DoesNotExist:
        return None


def create_member(program_id: str, openid: str, unionid: str | None, member_id: str, profile: ProfileItem,
                  account: AccountItem) -> None:
    """Enrol in one transaction. Guards: the WeChat user is not linked yet (label `wechat_user`),
    the unionid is free (`unionid`), the invite code is free (`invite`)."""
    tx = Transaction()
    user_key = keys.wechat_user(program_id, openid)
    wx_pk, wx_sk = keys.member_wechat_users(program_id, member_id, openid)
    tx.update(
        WechatUserItem(*user_key),
        actions=[WechatUserItem.member_id.set(member_id), WechatUserItem.gsi1pk.set(wx_pk),
                 WechatUserItem.gsi1sk.set(wx_sk)],
        condition=WechatUserItem.pk.exists() & WechatUserItem.member_id.does_not_exist(),
        label="wechat_user",
    )
    if unionid:
        tx.put(IdentityItem(*keys.unionid_guard(program_id, unionid), member_id=member_id),
               IdentityItem.pk.does_not_exist(), label="unionid")
    tx.put(IdentityItem(*keys.invite_guard(program_id, profile.invite_code), member_id=member_id),
           IdentityItem.pk.does_not_exist(), label="invite")
    tx.put(profile, ProfileItem.pk.does_not_exist(), label="profile")
    tx.put(account, AccountItem.pk.does_not_exist(), label="account")
    tx.commit()


def link_wechat_user(program_id: str, openid: str, member_id: str) -> None:
    """Link a WeChat user to an existing member (same unionid seen under a new openid)."""
    wx_pk, wx_sk = keys.member_wechat_users(program_id, member_id, openid)
    WechatUserItem(*keys.wechat_user(program_id, openid)).update(
        actions=[WechatUserItem.member_id.set(member_id), WechatUserItem.gsi1pk.set(wx_pk),
                 WechatUserItem.gsi1sk.set(wx_sk)],
        condition=WechatUserItem.member_id.does_not_exist(),
    )


def read_member(program_id: str, member_id: str) -> MemberRecord | None:
    """Account, profile, lots, check-in state, the unused-coupon count and stored value: one consistent
    Query on the member's partition."""
    account = profile = checkin = wallet = None
    coupons_unused = 0
    lots: list[LotItem] = []
    for item in TableItem.query(keys.member_pk(program_id, member_id), TableItem.sk.startswith(keys.CARD_PREFIX),
                                consistent_read=True):
        if isinstance(item, AccountItem):
            account = item
        elif isinstance(item, ProfileItem):
            profile = item
        elif isinstance(item, LotItem):
            lots.append(item)
        elif isinstance(item, CheckinStateItem):
            checkin = item
        elif isinstance(item, CouponWalletItem):
            coupons_unused = int(item.unused)
        elif isinstance(item, StoredValueItem):
            wallet = item
    if account is None or profile is None:
        return None
    return MemberRecord(account, profile, lots, checkin, coupons_unused, wallet)


def bind_phone(program_id: str, member_id: str, phone_hash: str, phone_enc: str, phone_masked: str,
               previous_hash: str | None) -> None:
    """Claim the phone's guard for this member (label `phone` fails if another member holds it)
    and store it encrypted on the profile; release the previous phone's guard."""
    tx = Transaction()
    guard = IdentityItem(*keys.phone_guard(program_id, phone_hash), member_id=member_id)
    tx.put(guard, IdentityItem.pk.does_not_exist() | (IdentityItem.member_id == member_id), label="phone")
    tx.update(
        ProfileItem(*keys.profile(program_id, member_id)),
        actions=[ProfileItem.phone_enc.set(phone_enc), ProfileItem.phone_hash.set(phone_hash),
                 ProfileItem.phone_masked.set(phone_masked), ProfileItem.revision.add(1)],
        condition=ProfileItem.pk.exists(),
        label="profile",
    )
    if previous_hash and previous_hash != phone_hash:
        tx.delete(IdentityItem(*keys.phone_guard(program_id, previous_hash)),
                  IdentityItem.member_id == member_id, label="previous_phone")
    tx.commit()


def record_referral(program_id: str, inviter_id: str, invitee_id: str, created_at: str) -> bool:
    """Count an invitee for the inviter once (the referral row is the once-guard).
    False if it was already counted (a redelivered stream record)."""
    tx = Transaction()
    tx.put(ReferralItem(*keys.referral(program_id, inviter_id, invitee_id), invitee_id=invitee_id,
                        created_at=created_at),
           ReferralItem.pk.does_not_exist(), label="referral")
    tx.update(ProfileItem(*keys.profile(program_id, inviter_id)), actions=[ProfileItem.invited_count.add(1)],
              condition=ProfileItem.pk.exists(), label="inviter")
    try:
        tx.commit()
    except ConditionsFailed as failed:
        if "referral" in failed.labels:
            return False
        raise
    return True


# --- paid membership (issue 14): the member's current end lives on the account --------------

def membership_until(account: AccountItem) -> dt.datetime | None:
    """The end of the member's paid membership as kept on the account (None: never had one)."""
    value = getattr(account, "membership_until", None)
    return dt.datetime.fromisoformat(value) if value else None
