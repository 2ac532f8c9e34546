"""Staff accounts as the request path reads them, failed-login guards, and the audit log.

A staff user's item is read on every staff request (role, disabled) through the program cache of
`store/programs.py` for `Settings.staff_cache_seconds`; writes through this module drop the
cache, so in one container a disabled account stops at once, elsewhere within that time.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.settings import Settings
from chalicelib.store import keys, paging, programs
from chalicelib.store.models import AuditItem, LoginGuardItem, StaffUserItem


@dataclass(frozen=True)
class StaffUser:
    program_id: str
    username: str
    role: str
    disabled: bool
    points_limit: int | None
    created_at: str
    updated_at: str | None
    password_hash: str


def _user_of(item: StaffUserItem) -> StaffUser:
    limit = item.points_limit
    return StaffUser(item.program_id, item.username, item.role, bool(item.disabled),
                     int(limit) if limit is not None else None, item.created_at, item.updated_at, item.password_hash)


def read_user(program_id: str, username: str) -> StaffUser | None:
    """Straight from the table (login, staff management)."""
    try:
        return _user_of(StaffUserItem.get(*keys.staff_user(program_id, username), consistent_read=True))
    except StaffUserItem.DoesNotExist:
        return None


def cached_user(settings: Settings, program_id: str, username: str) -> StaffUser | None:
    """What a staff token's every request reads: role and disabled, cached briefly."""
    return programs.cached(f"staff:{program_id}", username, settings.staff_cache_seconds,
                           lambda: read_user(program_id, username))


def list_users(program_id: str) -> list[StaffUser]:
    return [_user_of(item) for item in StaffUserItem.gsi1.query(keys.staff_users_list(program_id))
            if isinstance(item, StaffUserItem)]


def save_user(program_id: str, username: str, *, role: str, password_hash: str | None, disabled: bool,
              points_limit: int | None, now: str, create: bool) -> None:
    """Create (refused if the name exists: StaffUserExists) or change an account."""
    pk, sk = keys.staff_user(program_id, username)
    S = StaffUserItem
    if create:
        assert password_hash is not None
        try:
            S(pk, sk, program_id=program_id, username=username, password_hash=password_hash, role=role,
              disabled=int(disabled), points_limit=points_limit, created_at=now, updated_at=now,
              gsi1pk=keys.staff_users_list(program_id), gsi1sk=username).save(condition=S.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise StaffUserExists(username) from exc
            raise
    else:
        actions: list[Action] = [S.role.set(role), S.disabled.set(int(disabled)), S.updated_at.set(now),
                   S.points_limit.set(points_limit) if points_limit is not None else S.points_limit.remove()]
        if password_hash is not None:
            actions.append(S.password_hash.set(password_hash))
        try:
            S(pk, sk).update(actions=actions, condition=S.pk.exists())
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise StaffUserMissing(username) from exc
            raise
    programs.clear_cache()


class StaffUserExists(Exception):
    pass


class StaffUserMissing(Exception):
    pass


# --- failed logins ------------------------------------------------------------------------------

def locked_until(program_id: str, subject: str, value: str) -> int:
    """Unix seconds the subject's lock-out ends (0: never locked)."""
    try:
        item = LoginGuardItem.get(*keys.login_guard(program_id, subject, value), consistent_read=True)
    except LoginGuardItem.DoesNotExist:
        return 0
    return int(item.locked_until or 0)


def count_failure(program_id: str, subject: str, value: str, now: int, window: int, limit: int, lock: int) -> int:
    """Count one failed login of the subject; returns when its lock-out ends (0: not locked).
    Two conditional updates, no read-modify-write: a new window starts at 1 only if the old one
    ended; otherwise the counter goes up by one. The update that reaches `limit` sets the lock."""
    G = LoginGuardItem
    item = G(*keys.login_guard(program_id, subject, value))
    try:
        item.update(actions=[G.failures.set(1), G.window_until.set(now + window)],
                    condition=G.window_until.does_not_exist() | (G.window_until <= now))
        count = 1
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        item.update(actions=[G.failures.add(1)])
        count = int(item.failures)
    if count >= limit:
        until = now + lock
        try:
            # Only the update that crossed the limit (or one after a lock ended) sets the end.
            item.update(actions=[G.locked_until.set(until)],
                        condition=G.locked_until.does_not_exist() | (G.locked_until <= now))
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
        return until
    return 0


# --- the audit log ------------------------------------------------------------------------------

def append_audit(program_id: str, request_id: str, at: str, fields: dict[str, Any]) -> None:
    """Append one row under a new random id (never overwriting one: a conditional put)."""
    entry_id = secrets.token_hex(8)
    pk, sk = keys.audit_entry(program_id, entry_id)
    item = AuditItem(pk, sk, program_id=program_id, at=at, request_id=request_id,
                     gsi1pk=keys.audit_log(program_id), gsi1sk=f"{at}#{entry_id}", **fields)
    item.save(condition=AuditItem.pk.does_not_exist())


def audit_page(program_id: str, limit: int, cursor: str | None) -> tuple[list[AuditItem], str | None]:
    page = paging.gsi1_page(keys.audit_log(program_id), limit, cursor, newest_first=True)
    return [item for item in page.items if isinstance(item, AuditItem)], page.next_cursor


def unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())
