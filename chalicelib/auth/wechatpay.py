"""WeChat Pay's notifications (支付/退款通知): verified in public-key mode before anything reads them.

Order of checks, cheapest and safest first: the five `Wechatpay-*` headers are present; the
serial names our platform public key (an unknown serial would make wechatpayv3 download
certificates: one outbound call per forged request, so it is refused here first); the
timestamp is inside our window (the library does not check it); then wechatpayv3 verifies the
RSA signature over the raw body bytes and decrypts the resource (AES-256-GCM, the APIv3 key).
"""

from __future__ import annotations


import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import Unauthorized
from chalicelib.settings import Settings

HEADERS = ("wechatpay-signature", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial",
           "wechatpay-signature-type")
MAX_NOTIFICATION_BYTES = 64 * 1024


@dataclass(frozen=True)
class PaymentNotice:
    """A verified, decrypted notification: what the notify route's view receives."""

    notification_id: str
    event_type: str  # TRANSACTION.SUCCESS, REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED
    resource: dict[str, Any]


def verify(settings: Settings, headers: Mapping[str, str], raw_body: bytes, now: float | None = None) -> PaymentNotice:
    now = time.time() if now is None else now
    # wechatpayv3 reads the headers by exact names: hand it a plain dict with lowercase keys.
    lowered = {name.lower(): value for name, value in headers.items()}
    if not all(lowered.get(name) for name in HEADERS):
        raise Unauthorized("missing WeChat Pay signature headers")
    if not hmac.compare_digest(lowered["wechatpay-serial"].encode(), settings.secret("wechatpay_public_key_id").encode()):
        raise Unauthorized("unknown WeChat Pay serial", code="unknown_serial")
    timestamp = lowered["wechatpay-timestamp"]
    if not re.fullmatch(r"[0-9]{1,12}", timestamp) or abs(now - int(timestamp)) > settings.wechatpay_notify_window_seconds:
        raise Unauthorized("notification timestamp outside the allowed window", code="stale_timestamp")
    if len(raw_body) > MAX_NOTIFICATION_BYTES:
        raise Unauthorized("notification too large")
    from chalicelib import paysdk  # lazy: wechatpayv3 loads only for notifications

    try:
        body = raw_body.decode("utf-8")
        verified = paysdk.client(settings).callback({name: lowered[name] for name in HEADERS}, body)
    except Exception:  # malformed JSON or resource, an unsupported algorithm: not a notification we accept
        verified = None
    if not isinstance(verified, dict) or not isinstance(verified.get("resource"), dict):
        raise Unauthorized("bad notification signature or resource", code="bad_signature")
    return PaymentNotice(str(verified.get("id") or ""), str(verified.get("event_type") or ""),
                         verified["resource"])


def reply(code: str, message: str) -> dict[str, str]:
    """WeChat Pay's own reply shape (`{"code": "FAIL", "message": ...}` on failure)."""
    return {"code": code, "message": message}



