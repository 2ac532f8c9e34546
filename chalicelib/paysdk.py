"""The one WeChat Pay v3 client (`wechatpayv3`), in public-key mode, built from settings.

Both the outbound calls (`wechat/pay.py`) and the notification authenticator (`auth/wechatpay.py`)
use it. Imported lazily by both: wechatpayv3 (and its RSA key loading) stays off every other path.
"""

from __future__ import annotations

import functools
from typing import Any

from chalicelib.settings import Settings


@functools.lru_cache(maxsize=4)
def _client(mchid: str, serial: str, private_key: str, apiv3_key: str, public_key: str, public_key_id: str,
            gateway: str, notify_url: str, timeout: float) -> Any:
    from wechatpayv3 import WeChatPay, WeChatPayType

    # appid varies by program: every call passes its own (`appid=`); this one is a placeholder.
    client = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=mchid, private_key=private_key,
                       cert_serial_no=serial, appid="", apiv3_key=apiv3_key, notify_url=notify_url,
                       timeout=timeout, public_key=public_key, public_key_id=public_key_id)
    # wechatpayv3 2.0.4 has no endpoint option: its gateway is this attribute. The one place it is
    # set: the real https://api.mch.weixin.qq.com on AWS, the stand-in in the local stack.
    client._core._gate_way = gateway.rstrip("/")
    return client


def client(settings: Settings) -> Any:
    if not (settings.is_local or settings.wechatpay_notify_url.startswith("https://")):
        raise ValueError("LOYALTY_WECHATPAY_NOTIFY_URL must be this API's https address outside the local stage")
    return _client(settings.secret("wechatpay_mchid"), settings.secret("wechatpay_merchant_serial"),
                   settings.secret("wechatpay_merchant_private_key"),
                   settings.secret("wechatpay_apiv3_key"), settings.secret("wechatpay_public_key"),
                   settings.secret("wechatpay_public_key_id"), settings.wechatpay_api_base,
                   settings.wechatpay_notify_url, settings.wechatpay_timeout_seconds)
