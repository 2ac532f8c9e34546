"""Helpers that make requests the way each kind of caller does."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from chalicelib.auth import till

DEMO_APPID = "wxdemo0000000000"
ADMIN_KEY = "dev-admin-key"
TILL_KEY_ID, TILL_SECRET = "dev-pos", "dev-pos-secret"


def till_headers(method: str, path: str, body: bytes, *, key_id: str = TILL_KEY_ID, secret: str = TILL_SECRET,
                 timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(12)
    return {
        "Content-Type": "application/json",
        "X-Loyalty-Key": key_id,
        "X-Loyalty-Timestamp": ts,
        "X-Loyalty-Nonce": nonce,
        "X-Loyalty-Signature": till.sign(secret, method, path, ts, nonce, body),
    }


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
