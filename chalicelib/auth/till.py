"""Till (POS) requests: HMAC-SHA256 over method, path, timestamp, nonce and body hash
(../shared/API.md), with a clock-skew limit and a nonce replay window."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from chalicelib.auth.principals import NonceClaim, TillPrincipal
from chalicelib.errors import Unauthorized
from chalicelib.settings import Settings
from chalicelib.store import programs

DEV_TILL_KEY_ID = "dev-pos"
_NONCE = re.compile(r"^[A-Za-z0-9]{16,64}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def path_with_query(request: Any) -> str:
    """The path a till signs: the route with its parameters filled in, each percent-encoded
    leaving only RFC 3986 unreserved characters, plus the query as form-encoded pairs."""
    path = str(request.path)
    for name, value in (request.uri_params or {}).items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    if request.query_params:
        pairs = [(k, v) for k in request.query_params for v in request.query_params.getlist(k)]
        path += "?" + urlencode(pairs)
    return path


def string_to_sign(method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join([method.upper(), path_with_query, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def sign(secret: str, method: str, path_with_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = string_to_sign(method, path_with_query, timestamp, nonce, body)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify(
    settings: Settings,
    headers: Mapping[str, str],
    method: str,
    path_with_query: str,
    body: bytes,
    now: float | None = None,
) -> TillPrincipal:
    now = time.time() if now is None else now
    key_id = headers.get("x-loyalty-key") or ""
    timestamp = headers.get("x-loyalty-timestamp") or ""
    nonce = headers.get("x-loyalty-nonce") or ""
    signature = headers.get("x-loyalty-signature") or ""
    if not (key_id and timestamp and nonce and signature):
        raise Unauthorized("missing till signature headers")
    # ASCII digits only: str.isdigit() also passes "²", which int() refuses.
    if not re.fullmatch(r"[0-9]{1,12}", timestamp) or abs(now - int(timestamp)) > settings.hmac_skew_seconds:
        raise Unauthorized("timestamp outside the allowed clock skew", code="stale_timestamp")
    if not _NONCE.match(nonce) or not _SIGNATURE.match(signature):
        raise Unauthorized("malformed nonce or signature")
    if not _KEY_ID.match(key_id):  # it becomes part of a table key: never an oversized one
        raise Unauthorized("unknown till key")
    if key_id == DEV_TILL_KEY_ID and not settings.is_local:
        raise Unauthorized("dev keys are refused outside the local stage")
    till_key = programs.get_till_key(settings, key_id)
    if till_key is None:
        raise Unauthorized("unknown till key")
    expected = sign(till_key.secret, method, path_with_query, timestamp, nonce, body)
    if not hmac.compare_digest(expected, signature):
        raise Unauthorized("bad signature", code="bad_signature")
    # Only a correctly signed request may spend a nonce; otherwise anyone could burn them. It is
    # spent by the request's own write, or on its own after the view (schemes.Till.finish).
    claim = NonceClaim(key_id, nonce, now, settings.nonce_window_seconds)
    return TillPrincipal(till_key.program_id, key_id, till_key.store_id, claim)
