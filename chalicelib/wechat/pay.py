"""WeChat Pay v3 calls (through `wechatpayv3`, see `chalicelib/paysdk.py`): JSAPI orders and the
`pay_params` of wx.requestPayment, queries, closing, refunds and refund queries.

Every answer is signature-checked by the library with the platform public key. A timeout, a
5xx or an answer whose signature fails is `WechatPayUnavailable` (503 retry_later: nothing of
ours changed); a refusal WeChat Pay states is `WechatPayRefused` with its code.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from chalicelib import paysdk
from chalicelib.errors import Conflict, RetryLater
from chalicelib.logs import logger
from chalicelib.settings import Settings


class WechatPayUnavailable(RetryLater):
    """WeChat Pay timed out, failed or answered unverifiably: retry later."""


class WechatPayRefused(Conflict):
    """WeChat Pay answered 4xx with a code (ORDERPAID, ORDER_NOT_EXIST, NOT_ENOUGH...)."""

    def __init__(self, wechat_code: str, message: str) -> None:
        super().__init__(f"WeChat Pay refused: {wechat_code}", code="payment_refused")
        self.wechat_code = wechat_code
        self.wechat_message = message


def _call(operation: str, method: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    try:
        status, text = method(**kwargs)
    except Exception as exc:  # requests' errors, or the library's "failed to verify the signature"
        logger().warning("wechat pay call failed", extra={"operation": operation, "error": type(exc).__name__})
        raise WechatPayUnavailable("WeChat Pay is unavailable; retry shortly") from None
    body: dict[str, Any] = {}
    if text:
        try:
            parsed = json.loads(text)
            body = parsed if isinstance(parsed, dict) else {}
        except (TypeError, ValueError):
            body = {}
    if status >= 500:
        logger().warning("wechat pay error", extra={"operation": operation, "status": status})
        raise WechatPayUnavailable("WeChat Pay is unavailable; retry shortly")
    return status, body


def _refused(status: int, body: dict[str, Any]) -> WechatPayRefused:
    return WechatPayRefused(str(body.get("code") or status), str(body.get("message") or ""))


def jsapi_order(settings: Settings, *, appid: str, out_trade_no: str, description: str, total_fen: int,
                openid: str, time_expire: str, attach: str) -> str:
    """Create (or, for the same out_trade_no and body, find again) a JSAPI order: its prepay_id."""
    client = paysdk.client(settings)
    status, body = _call("jsapi_order", client.pay, description=description, out_trade_no=out_trade_no,
                         amount={"total": total_fen, "currency": "CNY"}, payer={"openid": openid},
                         time_expire=time_expire, appid=appid, attach=attach)
    if status != 200 or not body.get("prepay_id"):
        raise _refused(status, body)
    return str(body["prepay_id"])


def pay_params(settings: Settings, appid: str, prepay_id: str) -> dict[str, str]:
    """What wx.requestPayment needs, signed with the merchant key (RSA, v3)."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    package = f"prepay_id={prepay_id}"
    signature = paysdk.client(settings).sign([appid, timestamp, nonce, package])
    return {"appId": appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package, "signType": "RSA",
            "paySign": signature}


def query_order(settings: Settings, out_trade_no: str) -> dict[str, Any] | None:
    """The order as WeChat Pay has it (`trade_state`...), or None if it does not know it."""
    status, body = _call("query_order", paysdk.client(settings).query, out_trade_no=out_trade_no)
    if status == 404 or body.get("code") == "ORDER_NOT_EXIST":
        return None
    if status != 200:
        raise _refused(status, body)
    return body


def close_order(settings: Settings, out_trade_no: str) -> None:
    """Close an unpaid order; WechatPayRefused("ORDERPAID") if it was paid meanwhile."""
    status, body = _call("close_order", paysdk.client(settings).close, out_trade_no=out_trade_no)
    if status not in (200, 204):
        raise _refused(status, body)


def refund(settings: Settings, *, out_refund_no: str, out_trade_no: str, refund_fen: int, total_fen: int,
           reason: str) -> dict[str, Any]:
    """Ask for a refund (idempotent on out_refund_no at WeChat Pay): its `status` (SUCCESS,
    PROCESSING, CLOSED, ABNORMAL)."""
    status, body = _call("refund", paysdk.client(settings).refund, out_refund_no=out_refund_no,
                         out_trade_no=out_trade_no, reason=reason,
                         amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"})
    if status != 200:
        raise _refused(status, body)
    return body


def query_refund(settings: Settings, out_refund_no: str) -> dict[str, Any] | None:
    status, body = _call("query_refund", paysdk.client(settings).query_refund, out_refund_no=out_refund_no)
    if status == 404 or body.get("code") == "RESOURCE_NOT_EXISTS":
        return None
    if status != 200:
        raise _refused(status, body)
    return body
