"""Members' rights under PIPL (个人信息保护法 Art. 45, 47): what every item kind is to a member.

One explicit table, `KINDS`: every item kind in the table (models' discriminator) is classified
once, and export and erasure are driven by it. A kind missing here fails tests/unit/
test_architecture.py, so a new kind cannot ship without someone deciding what it is to a member.

Classes:
  PERSONAL   identifies the person (profile, WeChat ids, the phone's lookup guard): exported; erased.
  OWNED      the member's operational state (balances, lots, coupons, consents, queues): exported;
             deleted once money is settled and points are forfeited.
  FINANCIAL  a record of money or points the law or the books need (orders, refunds, stored-value
             and payment records, ledger rows): exported; KEPT (>= 5 years for prepaid records,
             商务部《单用途商业预付卡管理办法》 and the accounting rules) under the member id, which
             is a random id that becomes pseudonymous once every PERSONAL item is gone; the fields
             in `strip` are cleared.
  OUTBOX     copies already sent to the merchant's systems (webhook events and deliveries): not
             exported (the items they copy are); the ones that carry profile fields are deleted.
  SHARED     not about one member (program config, keys, queues, counters) or about many (risk
             cases, sightings under the phone's keyed HMAC, kept for anti-abuse): neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Class = Literal["personal", "owned", "financial", "outbox", "shared"]
PERSONAL: Class = "personal"
OWNED: Class = "owned"
FINANCIAL: Class = "financial"
OUTBOX: Class = "outbox"
SHARED: Class = "shared"


@dataclass(frozen=True)
class Handling:
    cls: Class
    why: str
    # Attributes never shown in an export (secrets, keyed hashes, internal records).
    hidden: tuple[str, ...] = ()
    # FINANCIAL: attributes cleared on erasure (the record stays).
    strip: tuple[str, ...] = ()

    @property
    def exported(self) -> bool:
        return self.cls in (PERSONAL, OWNED, FINANCIAL)

    @property
    def deleted(self) -> bool:
        return self.cls in (PERSONAL, OWNED)


def _h(cls: Class, why: str, hidden: tuple[str, ...] = (), strip: tuple[str, ...] = ()) -> Handling:
    return Handling(cls, why, hidden, strip)


# Attributes no export shows whatever the kind: index slots, idempotency records, versions.
INTERNAL = ("gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "ttl", "request_hash", "response", "version")

# Every item kind -> what it is to a member. One line per kind; keep in the order of models.py.
KINDS: dict[str, Handling] = {
    "program": _h(SHARED, "a program's configuration"),
    "appid": _h(SHARED, "appid -> program"),
    "admin_key": _h(SHARED, "a staff key (hashed)"),
    "till_key": _h(SHARED, "a till key"),
    "staff_user": _h(SHARED, "a staff login"),
    "nonce": _h(SHARED, "a till request's nonce"),
    "wechat_user": _h(PERSONAL, "openid, unionid, the WeChat session", hidden=("session_key_enc",)),
    "identity": _h(PERSONAL, "unionid / phone / invite code -> member (uniqueness guards)"),
    "account": _h(OWNED, "points, tier, growth"),
    "profile": _h(PERSONAL, "nickname, birthday, phone (encrypted), openid, unionid",
                  hidden=("phone_enc", "phone_hash")),
    "lot": _h(OWNED, "points by expiry day"),
    "referral": _h(OWNED, "an invitee this member brought in"),
    "ledger": _h(FINANCIAL, "a points change (and refunds of orders): the points ledger"),
    "order": _h(FINANCIAL, "a paid order and what it earned"),
    "order_totals": _h(FINANCIAL, "what was refunded of an order"),
    "idempotency": _h(SHARED, "a caller's key record (fingerprint and answer), no identifiers"),
    "hold": _h(OWNED, "points frozen for a checkout (released before erasure)"),
    "redemption": _h(FINANCIAL, "what points (and cash) bought"),
    "job_run": _h(SHARED, "a scheduled job's run"),
    "reward": _h(SHARED, "a reward in the catalogue"),
    "reward_limit": _h(OWNED, "how many of a limited reward the member holds"),
    "checkin_state": _h(OWNED, "check-in streak"),
    "tier_change": _h(OWNED, "tier history"),
    "tiered_member": _h(OWNED, "the tier review's queue entry"),
    "expiry_reminder": _h(OWNED, "an expiry reminder"),
    "winback": _h(OWNED, "a win-back message queued"),
    "subscription": _h(OWNED, "consent credits for subscribe messages"),
    "notification": _h(OWNED, "a message to the member"),
    "webhook": _h(SHARED, "a merchant's endpoint"),
    "webhook_count": _h(SHARED, "a program's endpoint count"),
    "webhook_event": _h(OUTBOX, "an event sent to the merchant"),
    "webhook_delivery": _h(OUTBOX, "an event's delivery to one endpoint"),
    "webhook_sequence": _h(OWNED, "the member's last event number"),
    "pending": _h(OWNED, "points held back by a risk rule"),
    "till_rate": _h(SHARED, "a till key's hourly counters"),
    "sighting": _h(SHARED, "members behind one phone/device keyed HMAC (anti-abuse)"),
    "flag": _h(SHARED, "a risk case about members"),
    "coupon_template": _h(SHARED, "a coupon template"),
    "coupon_template_version": _h(SHARED, "a coupon template's version"),
    "coupon": _h(OWNED, "a coupon in the wallet (revoked on erasure)"),
    "coupon_wallet": _h(OWNED, "the unused-coupon count"),
    "coupon_limit": _h(OWNED, "coupons issued of a limited template"),
    "coupon_event": _h(OWNED, "coupon history"),
    "stored_value": _h(FINANCIAL, "the stored-value account (zero at erasure)"),
    "sv_entry": _h(FINANCIAL, "a stored-value change"),
    "pay_order": _h(FINANCIAL, "a WeChat Pay order", strip=("openid",)),
    "pay_refund": _h(FINANCIAL, "a WeChat Pay refund"),
    "sv_payment": _h(FINANCIAL, "a till payment with stored value"),
    "sv_payment_refund": _h(FINANCIAL, "a refund of a till payment"),
    "liability": _h(SHARED, "the program's stored-value liability of a day"),
    "wechat_token": _h(SHARED, "the mini-program's access token"),
    "wechat_token_lock": _h(SHARED, "the access token's refresh lock"),
    # --- members' rights (issue 17) ---
    "pay_order_ref": _h(FINANCIAL, "a pointer in the member's partition to a WeChat Pay order of theirs"),
    "membership": _h(FINANCIAL, "a paid-membership entitlement (start, end, source: the payment or the trial)"),
    "trial_claim": _h(PERSONAL, "the one-trial guards by WeChat id (unionid or openid) and by member"),
    "trial_phone": _h(SHARED, "the one-trial guard under the phone's keyed HMAC (anti-abuse, kept)"),
    "lottery_seed": _h(SHARED, "a lottery's server seed (encrypted) and its SHA-256"),
    "lottery_prize": _h(SHARED, "a lottery prize's stock left"),
    "lottery_member": _h(OWNED, "the member's draw counts in a lottery"),
    "lottery_draw": _h(FINANCIAL, "a draw: points spent, prize won (kept: the lottery's audit recomputes every draw)"),
    "referral_cap": _h(OWNED, "invitees rewarded per day and month (the inviter's caps)"),
    "referral_reward": _h(OWNED, "the reward of one referral (the inviter's)"),
    "day_counter": _h(SHARED, "one shard of a program day's figures"),
    "counted": _h(SHARED, "a change already counted into the day's figures (expires)"),
    "active_mark": _h(SHARED, "a member id was active on a day, counted once (expires)"),
    "day_summary": _h(SHARED, "a closed day's figures"),
    "tier_count": _h(SHARED, "one shard of a program day's members moved into or out of a tier"),
    "day_repurchase": _h(SHARED, "the program's repurchase rate over the RFM window to a day"),
    "member_tags": _h(OWNED, "the member's tags, staff's and computed"),
    "rfm": _h(OWNED, "the member's RFM scores and the figures behind them"),
    "segment": _h(SHARED, "a named segment's rules"),
    "campaign": _h(SHARED, "a campaign: its segment snapshot (member ids) and summary"),
    "login_guard": _h(SHARED, "failed staff log-ins of an account or an address"),
    "audit": _h(SHARED, "a staff action (who, what, when; member ids as in the path, bodies without secrets)"),
    "erasure": _h(SHARED, "audit: an erasure's status, who asked, when (no personal data)"),
    "privacy_log": _h(SHARED, "audit: an export or erasure, logged: when, by whom, completed"),
}

# Profile fields whose webhook events copy them (member.enrolled, member.updated): erased with it.
PROFILE_EVENT_TYPES = ("member.enrolled", "member.updated")

# What erasure puts in place of a stripped attribute (non-null attributes stay present).
ERASED = ""


def export_view(kind: str, attributes: dict[str, object]) -> dict[str, object]:
    """An item as the export shows it: every attribute but the internal and hidden ones."""
    handling = KINDS[kind]
    dropped = set(INTERNAL) | set(handling.hidden)
    return {name: value for name, value in attributes.items() if name not in dropped}


def unclassified(kinds: set[str]) -> set[str]:
    return kinds - set(KINDS)
