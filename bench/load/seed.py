"""Seeds a member population into the running local stack, through the app's own store.

Each member is what an enrolment writes (`store.members.record_login` + `create_member`): the
WeChat user linked to the member, the invite-code guard, the profile (in the members list) and
the account -- built with the app's models and keys and written 25 at a time with BatchWriteItem
(an enrolment's guards cannot fail on a fresh population, so its transaction is not needed).
Members whose traffic spends points (hot members and a share of the rest) start with a balance
given by the app's own staff adjustment (`services.ledger.adjust`: ledger row, lot, account).
Member tokens are issued with the app's token code, as `/v1/auth/login` would.

Needs the stack's environment (`LOYALTY_DYNAMODB_ENDPOINT`, ...) set before it is imported.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

PROGRAM = "demo"
STARTING_POINTS = 100_000
_INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


@dataclass
class SeededMember:
    member_id: str
    openid: str
    token: str
    hot: bool
    points: int


def member_id_for(run: str, n: int) -> str:
    # Distinctive and never a substring of another id: the baseline substitutes ids in requests.
    return f"ld{run}m{n:06d}z"


def seed_members(count: int, *, hot: int, rich_share: float, run: str) -> tuple[list[SeededMember], dict[str, Any]]:
    from chalicelib import crypto
    from chalicelib.auth import tokens
    from chalicelib.auth.principals import StaffPrincipal
    from chalicelib.services import ledger
    from chalicelib.settings import get_settings
    from chalicelib.store import keys
    from chalicelib.store.models import AccountItem, IdentityItem, ProfileItem, TableItem, WechatUserItem

    from chalicelib.services.members import program_config

    settings = get_settings()
    base_tier = program_config(settings, PROGRAM).base_tier.code
    began = time.monotonic()
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    members: list[SeededMember] = []
    items: list[Any] = []
    for n in range(count):
        member_id = member_id_for(run, n)
        openid = f"ld{run}o{n:06d}z"
        user_pk, user_sk = keys.wechat_user(PROGRAM, openid)
        invite_code = "".join(secrets.choice(_INVITE_ALPHABET) for _ in range(8))
        profile = ProfileItem(*keys.profile(PROGRAM, member_id), program_id=PROGRAM, member_id=member_id,
                              openid=openid, nickname=f"load {n}", invite_code=invite_code, enrolled_at=now)
        profile.gsi1pk, profile.gsi1sk = keys.members_list(PROGRAM, member_id)
        items += [
            WechatUserItem(user_pk, user_sk, program_id=PROGRAM, openid=openid, member_id=member_id,
                           session_key_enc=crypto.encrypt(settings, "seeded-session-key", context=user_pk),
                           last_login_at=now),
            IdentityItem(*keys.invite_guard(PROGRAM, invite_code), member_id=member_id),
            profile,
            AccountItem(*keys.account(PROGRAM, member_id), program_id=PROGRAM, member_id=member_id,
                        tier=base_tier, updated_at=now),
        ]
        token, _ = tokens.issue(settings, PROGRAM, openid, member_id)
        members.append(SeededMember(member_id, openid, token, hot=n < hot, points=0))

    def write(chunk: list[Any]) -> None:
        with TableItem.batch_write() as batch:
            for item in chunk:
                batch.save(item)

    chunks = [items[i:i + 250] for i in range(0, len(items), 250)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, chunks))
    enrolled_in = time.monotonic() - began

    staff = StaffPrincipal(PROGRAM, "load-seed", "seed")
    rich = [m for i, m in enumerate(members) if m.hot or i % max(1, round(1 / rich_share)) == 0] if rich_share else \
        [m for m in members if m.hot]

    def give(member: SeededMember) -> None:
        body = ledger.AdjustmentIn(points=STARTING_POINTS, reason="load seed", request_id=f"seed-{member.member_id}")
        answer, status = ledger.adjust(settings, staff, member.member_id, body)
        assert status == 201, answer
        member.points = STARTING_POINTS

    began_points = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(give, rich))
    figures = {"members": count, "items_written": len(items), "batch_requests": -(-len(items) // 25),
               "enrolled_seconds": round(enrolled_in, 1), "members_with_points": len(rich),
               "points_seconds": round(time.monotonic() - began_points, 1)}
    return members, figures


def as_json(members: list[SeededMember]) -> list[dict[str, Any]]:
    return [asdict(m) for m in members]
