"""Logs carry request ids and outcomes, never tokens, session keys, phones or secrets."""

from __future__ import annotations

import io
import json
import logging


def test_no_secret_reaches_a_log_line(api, wechat):
    from chalicelib.logs import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger().registered_formatter)
    logger().addHandler(handler)
    logger().setLevel("DEBUG")
    try:
        login = api.login("leaky")
        token = login["token"]
        api.member("POST", "/v1/members", token, {})
        api.member("POST", "/v1/members/me/phone", token, {"phone_code": "phone-13912345678"})
        api.member("GET", "/v1/members/me", token)
        api.request("POST", "/v1/auth/login", {"appid": "wxdemo0000000000", "code": "bad"})
    finally:
        logger().setLevel("WARNING")
        logger().removeHandler(handler)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert sum(line.get("message") == "request" and bool(line.get("request_id")) for line in lines) == 5
    for secret in (token, "13912345678", "dev-pos-secret", "dev-wechat-secret", "session_key", "dev-admin-key"):
        assert secret not in text, secret
    assert token.split(".")[2] not in text
