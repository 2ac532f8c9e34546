"""Staff accounts (issue 16): log-in with lock-out, the owner managing accounts, the audit log,
and looking a member up the way the console does (by phone through the keyed lookup, invite
code or member id: never by scanning).

Log-in answers the same 401 for an unknown program, an unknown name, a wrong password and a
disabled account, after the same argon2 work (an unknown name is checked against a dummy hash).
`login_max_failures` failures of one account within `login_window_seconds` lock it for
`login_lock_seconds`, the right password included; an address is locked the same way after
`login_max_failures_per_address` (several people share a shop's address).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib import clock, crypto
from chalicelib.auth import roles
from chalicelib.auth import staff as staff_auth
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from chalicelib.settings import Settings
from chalicelib.store import credentials, keys, programs
from chalicelib.store import members as member_store
from chalicelib.store import staff as store

_NAME = r"^[A-Za-z0-9._-]{1,64}$"
_WRONG = "wrong program, username or password"
# The local stack's seeded owner (API.md); the password is refused outside the local stage.
DEV_OWNER_USERNAME, DEV_OWNER_PASSWORD = "owner", "dev-owner-password"


class StaffLoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    program_id: str = Field(pattern=_NAME, description="The program the account belongs to.")
    username: str = Field(pattern=_NAME)
    password: str = Field(min_length=1, max_length=256)


class StaffUserIn(BaseModel):
    """An account as the owner writes it: a new name needs a password; `password` on an existing
    one sets a new one. `points_limit`: the most a clerk may adjust in one request."""

    model_config = ConfigDict(extra="forbid")
    role: roles.Role
    password: str | None = Field(default=None, min_length=8, max_length=256)
    disabled: bool = False
    points_limit: int | None = Field(default=None, ge=0, le=1_000_000)


class LookupQuery(BaseModel):
    """Exactly one of the three."""

    model_config = ConfigDict(extra="ignore")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{5,20}$", description="The bound phone number.")
    invite_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{4,16}$")
    member_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,128}$")

    @model_validator(mode="after")
    def _exactly_one(self) -> LookupQuery:
        if sum(v is not None for v in (self.phone, self.invite_code, self.member_id)) != 1:
            raise ValueError("give exactly one of phone, invite_code, member_id")
        return self


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return credentials.hash_password("not-a-password-of-anyone")


def _audit_login(body: StaffLoginIn, request_id: str, role: str, status: int, error_code: str | None) -> None:
    """Log-ins that succeed, and those that lock an account, are in the audit log too."""
    route = "/v1/admin/auth/login"
    store.append_audit(body.program_id, request_id, clock.stamp(clock.now()), {
        "actor": body.username, "role": role, "method": "POST", "route": route, "path": route, "status": status,
        "error_code": error_code, "body": {"username": body.username, "password": "***"}, "before": None,
        "after": None})


def login(settings: Settings, body: StaffLoginIn, address: str, request_id: str = "-") -> dict[str, Any]:
    now = store.unix(clock.now())
    account = crypto.lookup_hash(settings, f"{body.program_id}\n{body.username}")
    place = crypto.lookup_hash(settings, address)
    known_program = programs.get_program(settings, body.program_id) is not None
    if known_program:
        until = max(store.locked_until(body.program_id, "user", account), store.locked_until(body.program_id, "ip", place))
        if until > now:
            raise Unauthorized(f"too many failed logins: locked until {_iso(until)}", code="login_locked")
    user = store.read_user(body.program_id, body.username) if known_program else None
    matches = credentials.verify_password(user.password_hash if user else _dummy_hash(), body.password)
    if not settings.is_local and body.password == DEV_OWNER_PASSWORD:
        matches = False  # a dev default, like the dev admin key: never outside local
    if user is None or user.disabled or not matches:
        if known_program:
            ends = max(
                store.count_failure(body.program_id, "user", account, now, settings.login_window_seconds,
                                    settings.login_max_failures, settings.login_lock_seconds),
                store.count_failure(body.program_id, "ip", place, now, settings.login_window_seconds,
                                    settings.login_max_failures_per_address, settings.login_lock_seconds))
            if ends:
                _audit_login(body, request_id, user.role if user else "-", 401, "login_locked")
                raise Unauthorized(f"too many failed logins: locked until {_iso(ends)}", code="login_locked")
        raise Unauthorized(_WRONG, code="invalid_credentials")
    token, ttl = staff_auth.issue(settings, body.program_id, user.username)
    _audit_login(body, request_id, user.role, 200, None)
    return {"token": token, "expires_in": ttl, "role": user.role}


def _iso(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).isoformat()


# --- accounts -----------------------------------------------------------------------------------

def _view(user: store.StaffUser) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "disabled": user.disabled,
            "points_limit": user.points_limit, "created_at": user.created_at, "updated_at": user.updated_at}


def list_staff(program_id: str) -> dict[str, Any]:
    return {"items": [_view(user) for user in sorted(store.list_users(program_id), key=lambda u: u.username)]}


def put_staff(settings: Settings, owner: StaffPrincipal, username: str, body: StaffUserIn) -> tuple[dict[str, Any], int]:
    if not username or len(username) > 64:
        raise InvalidRequest("username: 1 to 64 characters")
    program_id = owner.program_id
    existing = store.read_user(program_id, username)
    if owner.action is not None:
        owner.action.before = _view(existing) if existing else None
    if username == owner.username and (body.disabled or body.role != "owner"):
        raise Conflict("an owner cannot disable or demote their own account", code="own_account")
    limit = body.points_limit if body.role == "clerk" else None
    now = clock.stamp(clock.now())
    hashed = credentials.hash_password(body.password) if body.password is not None else None
    if existing is None:
        if hashed is None:
            raise InvalidRequest("password: a new account needs one (8 to 256 characters)",
                                 fields=[{"loc": ["password"], "message": "a new account needs a password"}])
        try:
            store.save_user(program_id, username, role=body.role, password_hash=hashed, disabled=body.disabled,
                            points_limit=limit, now=now, create=True)
        except store.StaffUserExists as exc:
            raise Conflict("this account was just created by someone else", code="staff_exists") from exc
        status = 201
    else:
        store.save_user(program_id, username, role=body.role, password_hash=hashed, disabled=body.disabled,
                        points_limit=limit, now=now, create=False)
        status = 200
    saved = store.read_user(program_id, username)
    assert saved is not None
    return _view(saved), status


def seed_owner(program_id: str, username: str, password_hash: str) -> None:
    """The local stack's first owner (chalicelib/seed.py); kept if it exists."""
    if store.read_user(program_id, username) is None:
        store.save_user(program_id, username, role="owner", password_hash=password_hash,
                        disabled=False, points_limit=None, now=clock.stamp(clock.now()), create=True)


# --- the audit log ------------------------------------------------------------------------------

def audit_page(program_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    items, following = store.audit_page(program_id, limit, cursor)
    return {"items": [{"at": i.at, "actor": i.actor, "role": i.role, "method": i.method, "route": i.route,
                       "path": i.path, "status": int(i.status), "error_code": i.error_code,
                       "request_id": i.request_id, "body": i.body, "before": i.before, "after": i.after}
                      for i in items], "next_cursor": following}


# --- finding a member ---------------------------------------------------------------------------

def find_member(settings: Settings, program_id: str, query: LookupQuery) -> str:
    """The member id, through one keyed read (phone hash or invite code), never a scan."""
    if query.member_id is not None:
        return query.member_id
    if query.phone is not None:
        key = keys.phone_guard(program_id, crypto.lookup_hash(settings, query.phone))
    else:
        assert query.invite_code is not None
        key = keys.invite_guard(program_id, query.invite_code.upper())
    member_id = member_store.identity(key)
    if member_id is None:
        raise NotFound("no member with that phone or invite code", code="member_not_found")
    return member_id
