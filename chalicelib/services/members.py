"""Login, enrolment, phone binding and the member card."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.expressions.update import Action

from chalicelib import clock, crypto, ids
from chalicelib.auth import tokens
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.domain import membership as membership_rules
from chalicelib.domain import tiers as tier_rules
from chalicelib.domain.card import CardFacts, build_card
from chalicelib.domain.program import ProgramConfig
from chalicelib.domain.text import FreeText
from chalicelib.errors import Conflict, InvalidRequest, NotFound, RetryLater, Unauthorized
from chalicelib.settings import Settings
from chalicelib.store import keys, members as store
from chalicelib.services import flags
from chalicelib.services.programs import program_config
from chalicelib.store import programs
from chalicelib.store.models import AccountItem, ProfileItem
from chalicelib.store.tx import ConditionsFailed

DEV_APPID = "wxdemo0000000000"
# Invite codes avoid look-alike characters (0/O, 1/I/L) because people type them.
_INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_INVITE_LENGTH = 8


_DEVICE_ID = r"^[\x21-\x7e]{8,128}$"


class LoginIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")
    appid: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=256)
    device_id: str | None = Field(default=None, pattern=_DEVICE_ID,
                                  description="Optional: the device's id, if the mini-program sends one (risk flags "
                                              "for many members behind one device; stored only as a keyed hash).")


class EnrollIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")
    nickname: FreeText | None = Field(default=None, min_length=1, max_length=32)
    birthday: dt.date | None = None
    invite_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{4,16}$")
    device_id: str | None = Field(default=None, pattern=_DEVICE_ID, description="Optional, as at login.")


class ProfileIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")
    nickname: FreeText | None = Field(default=None, min_length=1, max_length=32)
    # Set once: birthday gifts depend on it, so members cannot move it around.
    birthday: dt.date | None = None


class PhoneIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")
    phone_code: str = Field(min_length=1, max_length=256)


def _gateway(settings: Settings, program_id: str) -> Any:
    from chalicelib.wechat import gateway  # lazy: keeps wechatpy off read paths

    return gateway.for_program(settings, program_id)


def login(settings: Settings, body: LoginIn) -> dict[str, Any]:
    if body.appid == DEV_APPID and not settings.is_local:
        raise Unauthorized("dev apps are refused outside the local stage", code="unknown_appid")
    program_id = programs.program_for_appid(settings, body.appid)
    if program_id is None:
        raise Unauthorized("unknown appid", code="unknown_appid")
    session = _gateway(settings, program_id).code_to_session(body.code)
    user_pk, _ = keys.wechat_user(program_id, session.openid)
    member_id = store.record_login(
        program_id, session.openid, session.unionid,
        crypto.encrypt(settings, session.session_key, context=user_pk), clock.now().isoformat(),
    )
    if member_id and body.device_id:
        flags.note_device(settings, program_id, body.device_id, member_id)
    token, expires_in = tokens.issue(settings, program_id, session.openid, member_id)
    return {"token": token, "expires_in": expires_in, "enrolled": member_id is not None, "member_id": member_id}


def resolve_member_id(principal: MemberPrincipal) -> str:
    """The caller's member id; 404 `not_enrolled` before enrolment."""
    if principal.member_id:
        return principal.member_id
    user = store.wechat_user(principal.program_id, principal.openid)
    if user is None:  # logins write it first: gone means the member erased their account
        raise Unauthorized("log in again", code="login_required")
    if not user.member_id:
        raise NotFound("enrol first: this WeChat user is not a member yet", code="not_enrolled")
    return user.member_id


def card(settings: Settings, principal: MemberPrincipal) -> dict[str, Any]:
    return card_of(settings, principal.program_id, resolve_member_id(principal))


def card_of(settings: Settings, program_id: str, member_id: str) -> dict[str, Any]:
    record = store.read_member(program_id, member_id)
    if record is None:
        raise NotFound("no such member", code="member_not_found")
    config = program_config(settings, program_id)
    today = config.today(clock.now())
    return build_card(config, facts_of(config, record, today), today)


def facts_of(config: ProgramConfig, record: store.MemberRecord, today: dt.date) -> CardFacts:
    account, profile = record.account, record.profile
    return CardFacts(
        member_id=profile.member_id,
        nickname=profile.nickname,
        birthday=profile.birthday,
        tier_code=account.tier,
        growth=tier_rules.growth_in_window(config, dict(account.growth_months or {}), int(account.growth), today),
        growth_lifetime=int(account.growth),
        tier_since=account.tier_since,
        checkin_last=dt.date.fromisoformat(record.checkin.last_date) if record.checkin else None,
        checkin_streak=int(record.checkin.streak) if record.checkin else 0,
        held=int(account.held),
        debt=int(account.debt),
        pending=int(account.pending or 0),
        stored_value_fen=record.stored_value_fen,
        invite_code=profile.invite_code,
        invited_count=int(profile.invited_count),
        phone_masked=profile.phone_masked,
        enrolled_at=profile.enrolled_at,
        lots=record.lot_values,
        coupons_unused=record.coupons_unused,
        membership=membership_rules.card_view(config.membership, account.membership_plan_id, account.membership_until,
                                              clock.now()),
    )


def enroll(settings: Settings, principal: MemberPrincipal, body: EnrollIn) -> tuple[dict[str, Any], int]:
    """201 and the new card; 200 and the existing card if this person is already a member.
    Concurrent enrolments of one person make one member: the WeChat user link is conditional."""
    program_id = principal.program_id
    user = store.wechat_user(program_id, principal.openid)
    if user is None:
        raise Unauthorized("log in again", code="login_required")
    if user.member_id:
        return card_of(settings, program_id, user.member_id), 200
    config = program_config(settings, program_id)
    inviter = None
    if body.invite_code:
        inviter = store.identity(keys.invite_guard(program_id, body.invite_code.upper()))
        if inviter is None:
            raise InvalidRequest("unknown invite code", code="unknown_invite_code")

    for _attempt in range(5):
        member_id = ids.new_member_id()
        now = clock.now().isoformat()
        profile = ProfileItem(
            *keys.profile(program_id, member_id),
            program_id=program_id, member_id=member_id, openid=principal.openid, unionid=user.unionid,
            nickname=body.nickname, birthday=body.birthday.isoformat() if body.birthday else None,
            invite_code="".join(secrets.choice(_INVITE_ALPHABET) for _ in range(_INVITE_LENGTH)),
            invited_by=inviter, enrolled_at=now,
        )
        profile.gsi1pk, profile.gsi1sk = keys.members_list(program_id, member_id)
        if body.birthday:
            profile.gsi2pk, profile.gsi2sk = keys.birthday_queue(program_id, body.birthday.strftime("%m-%d"), member_id)
        account = AccountItem(
            *keys.account(program_id, member_id),
            program_id=program_id, member_id=member_id, tier=config.base_tier.code, updated_at=now,
        )
        try:
            store.create_member(program_id, principal.openid, user.unionid, member_id, profile, account)
            if body.device_id:
                flags.note_device(settings, program_id, body.device_id, member_id)
            return card_of(settings, program_id, member_id), 201
        except ConditionsFailed as failed:
            if "wechat_user" in failed.labels:
                winner = store.wechat_user(program_id, principal.openid)
                if winner is None or not winner.member_id:
                    raise Unauthorized("log in again", code="login_required") from None
                return card_of(settings, program_id, winner.member_id), 200
            if "unionid" in failed.labels and user.unionid:
                existing = store.identity(keys.unionid_guard(program_id, user.unionid))
                if existing:
                    store.link_wechat_user(program_id, principal.openid, existing)
                    return card_of(settings, program_id, existing), 200
            if "invite" not in failed.labels:
                raise
            # An invite code collision (rare): draw another and try again.
    raise RetryLater("could not allocate an invite code")


def bind_phone(settings: Settings, principal: MemberPrincipal, body: PhoneIn) -> dict[str, Any]:
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    record = store.read_member(program_id, member_id)
    if record is None:
        raise NotFound("no such member", code="member_not_found")
    try:
        phone = _gateway(settings, program_id).phone_number(body.phone_code)
    except Unauthorized as exc:
        raise InvalidRequest("the phone code is invalid or was already used", code="invalid_phone_code") from exc
    phone_hash = crypto.lookup_hash(settings, phone)
    profile_pk, _ = keys.profile(program_id, member_id)
    try:
        store.bind_phone(program_id, member_id, phone_hash,
                         crypto.encrypt(settings, phone, context=profile_pk),
                         crypto.mask_phone(phone), record.profile.phone_hash)
    except ConditionsFailed as failed:
        if "phone" in failed.labels:
            # A second member reaching for a number another holds is what the shared-phone rule counts.
            flags.note_phone(settings, program_id, phone_hash, member_id)
            raise Conflict("this phone number belongs to another member", code="phone_in_use") from None
        raise
    flags.note_phone(settings, program_id, phone_hash, member_id)
    return card_of(settings, program_id, member_id)


def update_profile(settings: Settings, principal: MemberPrincipal, body: ProfileIn) -> dict[str, Any]:
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    actions: list[Action] = []
    condition = ProfileItem.pk.exists()
    if body.nickname is not None:
        actions.append(ProfileItem.nickname.set(body.nickname))
    if body.birthday is not None:
        queue_pk, queue_sk = keys.birthday_queue(program_id, body.birthday.strftime("%m-%d"), member_id)
        actions += [ProfileItem.birthday.set(body.birthday.isoformat()),
                    ProfileItem.gsi2pk.set(queue_pk), ProfileItem.gsi2sk.set(queue_sk)]
        condition &= ProfileItem.birthday.does_not_exist() | (ProfileItem.birthday == body.birthday.isoformat())
    if actions:
        from pynamodb.exceptions import UpdateError

        actions.append(ProfileItem.revision.add(1))  # names the member.updated event (webhooks)

        try:
            ProfileItem(*keys.profile(program_id, member_id)).update(actions=actions, condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("the birthday is already set", code="birthday_already_set") from None
            raise
    return card_of(settings, program_id, member_id)
