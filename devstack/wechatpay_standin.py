"""The WeChat Pay v3 stand-in, served on the WeChat stand-in's port (devstack/wechat_standin.py).

It speaks the real protocol, signatures included, so the service's real wechatpayv3 client and
its real notification verification run locally:

- every request must carry a valid merchant `Authorization` (WECHATPAY2-SHA256-RSA2048, checked
  with the merchant's dev public key); every answer is signed with the stand-in platform's dev
  private key (`Wechatpay-Signature`, `-Timestamp`, `-Nonce`, `-Serial` = the public key id);
- notifications are encrypted with the APIv3 key (AEAD_AES_256_GCM) and signed the same way.

WeChat Pay paths:
  POST /v3/pay/transactions/jsapi                       a JSAPI order -> prepay_id (same order again: same id)
  GET  /v3/pay/transactions/out-trade-no/{no}?mchid=    the order (trade_state NOTPAY | SUCCESS | CLOSED | REFUND)
  POST /v3/pay/transactions/out-trade-no/{no}/close     204; 400 ORDERPAID if it was paid
  POST /v3/refund/domestic/refunds                      a refund (idempotent on out_refund_no)
  GET  /v3/refund/domestic/refunds/{out_refund_no}      the refund

Control for the local stack and tests:
  POST /_pay/confirm   {"out_trade_no", "variant"?, "times"?}: the payer paid; send the service the
                       signed notification `times` times at once (default 1). Variants: ok (default),
                       bad_signature, stale_timestamp, wrong_amount, unknown_serial. Answers the
                       delivery statuses and WeChat Pay's view of the order.
  POST /_pay/pay       {"out_trade_no"}: the payer paid, and no notification is sent (the query job's case)
  POST /_pay/refund_mode {"status": "SUCCESS" | "PROCESSING" | "ABNORMAL"}: how refunds answer from now on
  POST /_pay/refund_finish {"out_refund_no", "status"}: a PROCESSING refund ends; its notification is sent
  GET  /_pay/orders, GET /_pay/refunds                  what the stand-in holds
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.settings import DEV_WECHATPAY_APIV3_KEY, DEV_WECHATPAY_MCHID, DEV_WECHATPAY_PUBLIC_KEY_ID
from devstack.wechatpay_keys import DEV_MERCHANT_PUBLIC_KEY, DEV_PLATFORM_PRIVATE_KEY

logger = logging.getLogger("devstack.wechatpay")

JsonDict = dict[str, Any]
_AUTH = re.compile(r'^WECHATPAY2-SHA256-RSA2048 (.+)$')
_PAIR = re.compile(r'(\w+)="([^"]*)"')
VARIANTS = ("ok", "bad_signature", "stale_timestamp", "wrong_amount", "unknown_serial")
CST = dt.timezone(dt.timedelta(hours=8))


def _sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def _now_text() -> str:
    return dt.datetime.now(CST).replace(microsecond=0).isoformat()


class WechatPayState:
    """Orders and refunds the stand-in holds; thread-safe."""

    def __init__(self, mchid: str = DEV_WECHATPAY_MCHID, apiv3_key: str = DEV_WECHATPAY_APIV3_KEY,
                 public_key_id: str = DEV_WECHATPAY_PUBLIC_KEY_ID) -> None:
        self._lock = threading.Lock()
        self.mchid = mchid
        self.apiv3_key = apiv3_key
        self.public_key_id = public_key_id
        key = serialization.load_pem_private_key(DEV_PLATFORM_PRIVATE_KEY.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._platform_key = key
        merchant = serialization.load_pem_public_key(DEV_MERCHANT_PUBLIC_KEY.encode())
        assert isinstance(merchant, rsa.RSAPublicKey)
        self._merchant_key = merchant
        self._forger_key: rsa.RSAPrivateKey | None = None
        self.orders: dict[str, JsonDict] = {}
        self.refunds: dict[str, JsonDict] = {}
        self.refund_mode = "SUCCESS"
        self.stats = {"orders": 0, "queries": 0, "closes": 0, "refunds": 0, "refund_queries": 0,
                      "notifications": 0, "refused_auth": 0}

    # --- signatures ---------------------------------------------------------------------------

    def check_request(self, method: str, path: str, body: str, authorization: str) -> bool:
        match = _AUTH.match(authorization or "")
        if not match:
            return False
        fields = dict(_PAIR.findall(match.group(1)))
        if fields.get("mchid") != self.mchid:
            return False
        message = f"{method}\n{path}\n{fields.get('timestamp', '')}\n{fields.get('nonce_str', '')}\n{body}\n"
        try:
            self._merchant_key.verify(base64.b64decode(fields.get("signature", "")), message.encode(),
                                      padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return abs(time.time() - int(fields.get("timestamp") or 0)) <= 300

    def signed_headers(self, body: str, *, timestamp: int | None = None, key: rsa.RSAPrivateKey | None = None,
                       serial: str | None = None) -> dict[str, str]:
        ts, nonce = str(int(time.time()) if timestamp is None else timestamp), secrets.token_hex(16)
        return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": _sign(key or self._platform_key, f"{ts}\n{nonce}\n{body}\n"),
                "Wechatpay-Serial": serial or self.public_key_id,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}

    def _forger(self) -> rsa.RSAPrivateKey:
        if self._forger_key is None:
            self._forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._forger_key

    # --- orders -------------------------------------------------------------------------------

    def _transaction(self, order: JsonDict) -> JsonDict:
        view = {"appid": order["appid"], "mchid": order["mchid"], "out_trade_no": order["out_trade_no"],
                "trade_state": order["trade_state"], "trade_state_desc": order["trade_state"],
                "attach": order.get("attach", ""),
                "amount": {"total": order["amount"]["total"], "currency": "CNY"},
                "payer": {"openid": order["payer"]["openid"]}}
        if order.get("transaction_id"):
            view.update(transaction_id=order["transaction_id"], trade_type="JSAPI", bank_type="OTHERS",
                        success_time=order["success_time"])
            view["amount"].update(payer_total=order["amount"]["total"], payer_currency="CNY")
        return view

    def create_order(self, body: JsonDict) -> tuple[int, JsonDict]:
        with self._lock:
            no = body.get("out_trade_no")
            amount = (body.get("amount") or {}).get("total")
            if not (isinstance(no, str) and 6 <= len(no) <= 32 and isinstance(amount, int) and amount > 0
                    and body.get("mchid") == self.mchid and (body.get("payer") or {}).get("openid")
                    and body.get("notify_url") and body.get("appid") and body.get("description")):
                return 400, {"code": "PARAM_ERROR", "message": "参数错误"}
            fingerprint = json.dumps(body, sort_keys=True)
            existing = self.orders.get(no)
            if existing is not None:
                if existing["trade_state"] == "SUCCESS":
                    return 400, {"code": "ORDERPAID", "message": "该订单已支付"}
                if existing["fingerprint"] != fingerprint:
                    return 400, {"code": "INVALID_REQUEST", "message": "201 商户订单号重复"}
                return 200, {"prepay_id": existing["prepay_id"]}
            self.stats["orders"] += 1
            self.orders[no] = {**body, "fingerprint": fingerprint, "prepay_id": f"wx{uuid.uuid4().hex[:30]}",
                               "trade_state": "NOTPAY", "transaction_id": None, "success_time": None, "refunded": 0}
            return 200, {"prepay_id": self.orders[no]["prepay_id"]}

    def query_order(self, no: str) -> tuple[int, JsonDict]:
        with self._lock:
            self.stats["queries"] += 1
            order = self.orders.get(no)
            if order is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            return 200, self._transaction(order)

    def close_order(self, no: str) -> tuple[int, JsonDict | None]:
        with self._lock:
            self.stats["closes"] += 1
            order = self.orders.get(no)
            if order is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            if order["trade_state"] == "SUCCESS":
                return 400, {"code": "ORDERPAID", "message": "该订单已支付"}
            order["trade_state"] = "CLOSED"
            return 204, None

    def pay(self, no: str) -> JsonDict | None:
        """The payer paid (idempotent); None for an unknown or closed order."""
        with self._lock:
            order = self.orders.get(no)
            if order is None or order["trade_state"] == "CLOSED":
                return None
            if order["trade_state"] == "NOTPAY":
                order.update(trade_state="SUCCESS", transaction_id=f"42{secrets.randbelow(10**26):026d}",
                             success_time=_now_text())
            return order

    # --- refunds ------------------------------------------------------------------------------

    def _refund_view(self, refund: JsonDict) -> JsonDict:
        return {key: refund[key] for key in ("refund_id", "out_refund_no", "transaction_id", "out_trade_no", "channel",
                                             "user_received_account", "create_time", "status", "amount")} | (
            {"success_time": refund["success_time"]} if refund.get("success_time") else {})

    def create_refund(self, body: JsonDict) -> tuple[int, JsonDict]:
        with self._lock:
            no, order_no = body.get("out_refund_no"), body.get("out_trade_no")
            amount = body.get("amount") or {}
            if not (isinstance(no, str) and isinstance(amount.get("refund"), int) and amount["refund"] > 0):
                return 400, {"code": "PARAM_ERROR", "message": "参数错误"}
            existing = self.refunds.get(no)
            if existing is not None:
                return 200, self._refund_view(existing)
            order = self.orders.get(order_no or "")
            if order is None or order["transaction_id"] is None:
                return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}
            if amount.get("total") != order["amount"]["total"]:
                return 400, {"code": "INVALID_REQUEST", "message": "订单金额或退款金额与之前请求不一致"}
            if order["refunded"] + amount["refund"] > order["amount"]["total"]:
                return 400, {"code": "INVALID_REQUEST", "message": "申请退款金额超过订单可退金额"}
            self.stats["refunds"] += 1
            status = self.refund_mode
            if status == "SUCCESS" or status == "PROCESSING":
                order["refunded"] += amount["refund"]
            refund = {"refund_id": f"50{secrets.randbelow(10**26):026d}", "out_refund_no": no,
                      "transaction_id": order["transaction_id"], "out_trade_no": order_no, "channel": "ORIGINAL",
                      "user_received_account": "支付用户零钱", "create_time": _now_text(), "status": status,
                      "success_time": _now_text() if status == "SUCCESS" else None,
                      "amount": {"total": order["amount"]["total"], "refund": amount["refund"],
                                 "payer_total": order["amount"]["total"], "payer_refund": amount["refund"],
                                 "currency": "CNY"},
                      "notify_url": body.get("notify_url") or order["notify_url"]}
            self.refunds[no] = refund
            return 200, self._refund_view(refund)

    def query_refund(self, no: str) -> tuple[int, JsonDict]:
        with self._lock:
            self.stats["refund_queries"] += 1
            refund = self.refunds.get(no)
            if refund is None:
                return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}
            return 200, self._refund_view(refund)

    def finish_refund(self, no: str, status: str) -> JsonDict | None:
        with self._lock:
            refund = self.refunds.get(no)
            if refund is None or refund["status"] != "PROCESSING":
                return None
            refund["status"] = status
            if status == "SUCCESS":
                refund["success_time"] = _now_text()
            else:
                self.orders[refund["out_trade_no"]]["refunded"] -= refund["amount"]["refund"]
            return refund

    # --- notifications ------------------------------------------------------------------------

    def _encrypt(self, plaintext: JsonDict, associated_data: str) -> JsonDict:
        nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay's
        data = json.dumps(plaintext, ensure_ascii=False).encode()
        ciphertext = AESGCM(self.apiv3_key.encode()).encrypt(nonce.encode(), data, associated_data.encode())
        return {"original_type": associated_data, "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(), "associated_data": associated_data,
                "nonce": nonce}

    def notification(self, resource: JsonDict, event_type: str, original_type: str,
                     variant: str = "ok") -> tuple[dict[str, str], bytes]:
        """A signed notification (headers, raw body) of `resource`, spoilt as `variant` says."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; one of {VARIANTS}")
        if variant == "wrong_amount":
            resource = {**resource, "amount": {**resource["amount"], "total": resource["amount"]["total"] + 1,
                                               "payer_total": resource["amount"]["total"] + 1}}
        body = json.dumps({"id": str(uuid.uuid4()), "create_time": _now_text(), "resource_type": "encrypt-resource",
                           "event_type": event_type, "summary": "支付成功" if event_type.startswith("TRANS") else "退款状态变更",
                           "resource": self._encrypt(resource, original_type)}, ensure_ascii=False)
        headers = self.signed_headers(
            body, timestamp=int(time.time()) - 3600 if variant == "stale_timestamp" else None,
            key=self._forger() if variant == "bad_signature" else None,
            serial="PUB_KEY_ID_UNKNOWN0000000000000000009" if variant == "unknown_serial" else None)
        return {**headers, "Content-Type": "application/json"}, body.encode()

    def payment_notification(self, no: str, variant: str = "ok") -> tuple[dict[str, str], bytes, str]:
        """Mark the order paid and build its TRANSACTION.SUCCESS notification; also its notify_url."""
        order = self.pay(no)
        if order is None:
            raise KeyError(no)
        with self._lock:
            resource = self._transaction(order)
        headers, body = self.notification(resource, "TRANSACTION.SUCCESS", "transaction", variant)
        return headers, body, order["notify_url"]

    def refund_notification(self, no: str) -> tuple[dict[str, str], bytes, str]:
        with self._lock:
            refund = dict(self.refunds[no])
        resource = {"mchid": self.mchid, "out_trade_no": refund["out_trade_no"], "transaction_id": refund["transaction_id"],
                    "out_refund_no": no, "refund_id": refund["refund_id"], "refund_status": refund["status"],
                    "success_time": refund.get("success_time") or _now_text(), "user_received_account": "支付用户零钱",
                    "amount": {"total": refund["amount"]["total"], "refund": refund["amount"]["refund"],
                               "payer_total": refund["amount"]["total"], "payer_refund": refund["amount"]["refund"]}}
        event = {"SUCCESS": "REFUND.SUCCESS", "ABNORMAL": "REFUND.ABNORMAL"}.get(refund["status"], "REFUND.CLOSED")
        headers, body = self.notification(resource, event, "refund")
        return headers, body, refund["notify_url"]

    def deliver(self, url: str, headers: dict[str, str], body: bytes, times: int = 1) -> list[int]:
        """POST the notification `times` times at once (as WeChat Pay's retries can overlap)."""
        def send(_: int) -> int:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as error:
                return int(error.code)
            except (urllib.error.URLError, OSError):
                return 0  # nobody listening (the in-process tests post notifications themselves)

        with self._lock:
            self.stats["notifications"] += times
        with ThreadPoolExecutor(max_workers=max(1, min(times, 32))) as pool:
            return list(pool.map(send, range(times)))


# --- HTTP ---------------------------------------------------------------------------------------

_ORDER = re.compile(r"^/v3/pay/transactions/out-trade-no/([A-Za-z0-9_*|-]{1,64})$")
_CLOSE = re.compile(r"^/v3/pay/transactions/out-trade-no/([A-Za-z0-9_*|-]{1,64})/close$")
_REFUND = re.compile(r"^/v3/refund/domestic/refunds/([A-Za-z0-9_*|@-]{1,64})$")


def handle(handler: Any, state: WechatPayState, path: str, raw: bytes) -> bool:
    """Answer a WeChat Pay or `/_pay` request on the WeChat stand-in's handler; False: not ours."""
    method = handler.command
    if path.startswith("/_pay/"):
        return _control(handler, state, method, path, raw)
    if not path.startswith("/v3/"):
        return False
    body_text = raw.decode("utf-8", errors="replace")
    if not state.check_request(method, handler.path, body_text, handler.headers.get("Authorization", "")):
        with state._lock:
            state.stats["refused_auth"] += 1
        _answer(handler, state, 401, {"code": "SIGN_ERROR", "message": "签名错误"})
        return True
    try:
        body = json.loads(body_text) if body_text else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        _answer(handler, state, 400, {"code": "PARAM_ERROR", "message": "参数错误"})
        return True
    status: int
    answer: JsonDict | None
    if method == "POST" and path == "/v3/pay/transactions/jsapi":
        status, answer = state.create_order(body)
    elif method == "GET" and _ORDER.match(path):
        status, answer = state.query_order(_ORDER.match(path).group(1))  # type: ignore[union-attr]
    elif method == "POST" and _CLOSE.match(path):
        status, answer = state.close_order(_CLOSE.match(path).group(1))  # type: ignore[union-attr]
    elif method == "POST" and path == "/v3/refund/domestic/refunds":
        status, answer = state.create_refund(body)
    elif method == "GET" and _REFUND.match(path):
        status, answer = state.query_refund(_REFUND.match(path).group(1))  # type: ignore[union-attr]
    else:
        status, answer = 404, {"code": "NOT_FOUND", "message": f"the stand-in has no {method} {path}"}
    _answer(handler, state, status, answer)
    return True


def _answer(handler: Any, state: WechatPayState, status: int, payload: JsonDict | None) -> None:
    text = "" if payload is None else json.dumps(payload, ensure_ascii=False)
    raw = text.encode()
    handler.send_response(status)
    if payload is not None:
        handler.send_header("Content-Type", "application/json; charset=utf-8")
    for name, value in state.signed_headers(text).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


def _plain(handler: Any, status: int, payload: Any) -> None:
    raw = json.dumps(payload, ensure_ascii=False).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


def _control(handler: Any, state: WechatPayState, method: str, path: str, raw: bytes) -> bool:
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if method == "GET" and path == "/_pay/orders":
        with state._lock:
            _plain(handler, 200, [state._transaction(o) | {"refunded": o["refunded"]} for o in state.orders.values()])
    elif method == "GET" and path == "/_pay/refunds":
        with state._lock:
            _plain(handler, 200, [state._refund_view(r) for r in state.refunds.values()])
    elif method == "GET" and path == "/_pay/stats":
        with state._lock:
            _plain(handler, 200, dict(state.stats))
    elif method == "POST" and path == "/_pay/confirm":
        no, variant = str(body.get("out_trade_no") or ""), str(body.get("variant") or "ok")
        times = body.get("times", 1)
        if variant not in VARIANTS or not isinstance(times, int) or not 1 <= times <= 100:
            _plain(handler, 400, {"code": "PARAM_ERROR", "message": f"variant one of {VARIANTS}, times 1-100"})
            return True
        try:
            headers, payload, url = state.payment_notification(no, variant)
        except KeyError:
            _plain(handler, 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在或已关闭"})
            return True
        statuses = state.deliver(url, headers, payload, times)
        _plain(handler, 200, {"out_trade_no": no, "variant": variant, "deliveries": statuses,
                              "order": state.query_order(no)[1]})
    elif method == "POST" and path == "/_pay/pay":
        order = state.pay(str(body.get("out_trade_no") or ""))
        _plain(handler, 200 if order else 404, {"paid": order is not None})
    elif method == "POST" and path == "/_pay/refund_mode":
        mode = body.get("status")
        if mode not in ("SUCCESS", "PROCESSING", "ABNORMAL"):
            _plain(handler, 400, {"code": "PARAM_ERROR", "message": "status: SUCCESS, PROCESSING or ABNORMAL"})
            return True
        with state._lock:
            state.refund_mode = str(mode)
        _plain(handler, 200, {"refund_mode": mode})
    elif method == "POST" and path == "/_pay/refund_finish":
        no, status = str(body.get("out_refund_no") or ""), body.get("status", "SUCCESS")
        refund = state.finish_refund(no, str(status)) if status in ("SUCCESS", "ABNORMAL", "CLOSED") else None
        if refund is None:
            _plain(handler, 404, {"code": "RESOURCE_NOT_EXISTS", "message": "no PROCESSING refund by that number"})
            return True
        headers, payload, url = state.refund_notification(no)
        _plain(handler, 200, {"out_refund_no": no, "status": status, "deliveries": state.deliver(url, headers, payload)})
    else:
        return False
    return True
