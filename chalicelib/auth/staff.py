"""Merchant staff: `Authorization: Bearer <staff token>` from `POST /v1/admin/auth/login`, or
`Bearer <admin key>` (machine access, every permission).

Admin keys are stored as SHA-256 fingerprints. A staff token is our own HS256 JWT (the member
tokens' key ring, another issuer, so neither kind passes for the other); it names the account,
and the account's role and `disabled` are read on every request (cached `staff_cache_seconds`),
so a disabled account's tokens stop within that time and a role change applies just as fast.
"""

from __future__ import annotations

import time

import jwt

from chalicelib import crypto
from chalicelib.auth import roles
from chalicelib.auth.permissions import ALL
from chalicelib.auth.principals import StaffPrincipal
from chalicelib.errors import Unauthorized
from chalicelib.settings import Settings
from chalicelib.store import programs
from chalicelib.store import staff as staff_store

DEV_ADMIN_KEY = "dev-admin-key"
_ISSUER, _ALGORITHM = "loyalty-staff", "HS256"


def issue(settings: Settings, program_id: str, username: str) -> tuple[str, int]:
    now, ttl = int(time.time()), settings.staff_token_ttl_seconds
    claims = {"iss": _ISSUER, "aud": program_id, "sub": username, "iat": now, "exp": now + ttl}
    ring = crypto.key_ring(settings.secret("token_secret"))
    return jwt.encode(claims, ring.key(ring.current), algorithm=_ALGORITHM, headers={"kid": ring.current}), ttl


def verify(settings: Settings, bearer: str) -> StaffPrincipal:
    if bearer.count(".") == 2:
        return _verify_token(settings, bearer)
    if bearer == DEV_ADMIN_KEY and not settings.is_local:
        raise Unauthorized("dev keys are refused outside the local stage")
    key = programs.get_admin_key(settings, bearer)
    if key is None:
        raise Unauthorized("unknown admin key")
    # An admin key is machine access for the whole program: every permission.
    return StaffPrincipal(key.program_id, key.name, key.fingerprint[:12], ALL)


def _verify_token(settings: Settings, token: str) -> StaffPrincipal:
    try:
        program_id = jwt.decode(token, options={"verify_signature": False}).get("aud")
        kid = jwt.get_unverified_header(token).get("kid") or crypto.LEGACY_KEY_ID
        ring = crypto.key_ring(settings.secret("token_secret"))
        if not isinstance(program_id, str) or not isinstance(kid, str) or kid not in ring.keys:
            raise Unauthorized("invalid token")
        claims = jwt.decode(token, ring.key(kid), algorithms=[_ALGORITHM], audience=program_id, issuer=_ISSUER,
                            options={"require": ["exp", "iat", "sub", "aud", "iss"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    user = staff_store.cached_user(settings, program_id, claims["sub"])
    if user is None or user.disabled:
        raise Unauthorized("this staff account is disabled", code="staff_disabled")
    return StaffPrincipal(program_id, user.username, f"u:{user.username}", roles.permissions_of(user.role),
                          username=user.username, role=user.role,
                          # A clerk whose owner set no limit may not adjust at all (0).
                          points_limit=(user.points_limit or 0) if user.role == "clerk" else None)
