"""Provisioning a program's credentials: till keys, admin keys and staff users.

Used by the operator's CLI (`loyalty_admin`), not by the API. Secrets are generated here and
returned once; what is stored is what the request path reads (`store/programs.py`): a till key's
secret encrypted with the data key (the HMAC needs it back), an admin key's SHA-256 fingerprint,
a staff password's argon2id hash. A revoked or rotated key keeps working in a warm Lambda
container until its cached copy expires (`Settings.config_cache_seconds`, 30 s by default).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from chalicelib import crypto
from chalicelib.settings import Settings
from chalicelib.store import keys, programs
from chalicelib.store.models import AdminKeyItem, AppIdItem, StaffUserItem, TillKeyItem

STAFF_ROLES = ("owner", "manager", "clerk")


class CredentialError(ValueError):
    """The change cannot be made as asked; the message says why. Nothing was written."""


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: never its secret."""

    program_id: str
    name: str  # the till key id, or the admin key's name
    created_at: str
    store_id: str | None = None
    ref: str | None = None  # an admin key's fingerprint prefix, as audit rows name it


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _require_program(settings: Settings, program_id: str) -> None:
    if programs.get_program(settings, program_id, fresh=True) is None:
        raise CredentialError(f"no program {program_id!r}")


# -- till keys ---------------------------------------------------------------------------------

def till_keys(program_id: str) -> list[KeyInfo]:
    return [
        KeyInfo(program_id, item.gsi1sk or "", item.created_at, store_id=item.store_id)
        for item in TillKeyItem.gsi1.query(keys.till_keys_list(program_id)) if isinstance(item, TillKeyItem)
    ]


def _till_item(key_id: str) -> TillKeyItem | None:
    try:
        return TillKeyItem.get(*keys.till_key(key_id), consistent_read=True)
    except TillKeyItem.DoesNotExist:
        return None


def create_till_key(settings: Settings, program_id: str, key_id: str, store_id: str | None = None) -> str:
    """A new till key; returns its secret (shown once). Refused if the key id exists anywhere."""
    _require_program(settings, program_id)
    if _till_item(key_id) is not None:
        raise CredentialError(f"till key {key_id!r} already exists; rotate it or pick another id")
    secret = new_secret()
    programs.save_till_key(settings, program_id, key_id, secret, store_id=store_id)
    return secret


def rotate_till_key(settings: Settings, program_id: str, key_id: str) -> str:
    """A new secret for an existing key of this program; the old one stops working (after the cache)."""
    item = _till_item(key_id)
    if item is None or item.program_id != program_id:
        raise CredentialError(f"program {program_id!r} has no till key {key_id!r}")
    secret = new_secret()
    programs.save_till_key(settings, program_id, key_id, secret, store_id=item.store_id)
    return secret


def revoke_till_key(program_id: str, key_id: str) -> None:
    try:
        TillKeyItem(*keys.till_key(key_id)).delete(condition=TillKeyItem.program_id == program_id)
    except DeleteError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise CredentialError(f"program {program_id!r} has no till key {key_id!r}") from exc
        raise
    programs.clear_cache()


# -- admin keys --------------------------------------------------------------------------------

def admin_keys(program_id: str) -> list[KeyInfo]:
    return [
        KeyInfo(program_id, item.name, item.created_at, ref=item.pk.split("#", 1)[1][:12])
        for item in AdminKeyItem.gsi1.query(keys.admin_keys_list(program_id)) if isinstance(item, AdminKeyItem)
    ]


def _admin_items(program_id: str, name: str) -> list[AdminKeyItem]:
    return [item for item in AdminKeyItem.gsi1.query(keys.admin_keys_list(program_id), AdminKeyItem.gsi1sk == name)
            if isinstance(item, AdminKeyItem)]


def create_admin_key(settings: Settings, program_id: str, name: str) -> str:
    _require_program(settings, program_id)
    if _admin_items(program_id, name):
        raise CredentialError(f"program {program_id!r} already has an admin key named {name!r}; rotate it")
    secret = new_secret()
    programs.save_admin_key(program_id, name, secret)
    return secret


def revoke_admin_key(program_id: str, name: str) -> int:
    """Deletes every key of that name (normally one); returns how many."""
    found = _admin_items(program_id, name)
    if not found:
        raise CredentialError(f"program {program_id!r} has no admin key named {name!r}")
    for item in found:
        item.delete()
    programs.clear_cache()
    return len(found)


def rotate_admin_key(settings: Settings, program_id: str, name: str) -> str:
    """A new key under the same name; the old one is deleted once the new one is stored."""
    old = _admin_items(program_id, name)
    if not old:
        raise CredentialError(f"program {program_id!r} has no admin key named {name!r}")
    secret = new_secret()
    programs.save_admin_key(program_id, name, secret)
    fingerprint_pk = keys.admin_key(crypto.key_fingerprint(secret))[0]
    for item in old:
        if item.pk != fingerprint_pk:
            item.delete()
    programs.clear_cache()
    return secret


# -- staff users -------------------------------------------------------------------------------

def _hasher() -> Any:
    from argon2 import PasswordHasher

    # OWASP's argon2id profile (19 MiB, 2 passes, 1 lane): a log-in runs in the API's Lambda, where
    # argon2-cffi's default (64 MiB, 3 passes, 4 lanes) costs several times more per attempt.
    # A hash carries its own parameters, so hashes made with other ones still verify.
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def staff_users(program_id: str) -> list[StaffUserItem]:
    return [item for item in StaffUserItem.gsi1.query(keys.staff_users_list(program_id))
            if isinstance(item, StaffUserItem)]


def create_staff_user(settings: Settings, program_id: str, username: str, password: str, role: str = "owner") -> None:
    if role not in STAFF_ROLES:
        raise CredentialError(f"role must be one of {STAFF_ROLES}")
    if not 8 <= len(password) <= 256:
        raise CredentialError("a staff password has 8 to 256 characters")
    _require_program(settings, program_id)
    pk, sk = keys.staff_user(program_id, username)
    try:
        StaffUserItem(
            pk, sk, program_id=program_id, username=username, password_hash=hash_password(password), role=role,
            created_at=_now(), gsi1pk=keys.staff_users_list(program_id), gsi1sk=username,
        ).save(condition=StaffUserItem.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise CredentialError(f"program {program_id!r} already has a staff user {username!r}") from exc
        raise


# -- the appid map -----------------------------------------------------------------------------

def appid_owner(appid: str) -> str | None:
    try:
        return AppIdItem.get(*keys.appid(appid), consistent_read=True).program_id
    except AppIdItem.DoesNotExist:
        return None


def forget_appid(appid: str, program_id: str) -> None:
    """Drop an appid that no longer belongs to the program (its appid changed)."""
    try:
        AppIdItem(*keys.appid(appid)).delete(condition=AppIdItem.program_id == program_id)
    except DeleteError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
    programs.clear_cache()
