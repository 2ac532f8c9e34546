"""Member tokens: our own HS256 JWTs (pyjwt), signed with the stage's secret.

The secret is a key ring (crypto.key_ring): tokens are signed with the current key and carry its
id as `kid`; any key still in the ring verifies (a token without `kid` predates key ids: `k0`)."""

from __future__ import annotations

import time

import jwt

from chalicelib import crypto
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.errors import Unauthorized
from chalicelib.settings import Settings

_ISSUER = "loyalty"
_ALGORITHM = "HS256"


def issue(settings: Settings, program_id: str, openid: str, member_id: str | None) -> tuple[str, int]:
    now = int(time.time())
    ttl = settings.token_ttl_seconds
    claims = {"iss": _ISSUER, "aud": program_id, "sub": openid, "mid": member_id, "iat": now, "exp": now + ttl}
    ring = crypto.key_ring(settings.secret("token_secret"))
    return jwt.encode(claims, ring.key(ring.current), algorithm=_ALGORITHM, headers={"kid": ring.current}), ttl


def verify(settings: Settings, token: str) -> MemberPrincipal:
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        program_id = unverified.get("aud")
        if not isinstance(program_id, str):
            raise Unauthorized("invalid token")
        kid = jwt.get_unverified_header(token).get("kid") or crypto.LEGACY_KEY_ID
        ring = crypto.key_ring(settings.secret("token_secret"))
        if not isinstance(kid, str) or kid not in ring.keys:
            raise Unauthorized("invalid token")
        claims = jwt.decode(
            token,
            ring.key(kid),
            algorithms=[_ALGORITHM],
            audience=program_id,
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    member_id = claims.get("mid")
    return MemberPrincipal(program_id, claims["sub"], member_id if isinstance(member_id, str) else None)
