"""Logs carry request ids and outcomes, never tokens, session keys, phones or secrets."""

from __future__ import annotations

import json


def test_no_secret_reaches_a_log_line(api, wechat, capsys):
    from chalicelib.logs import logger

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
    out = capsys.readouterr()
    text = out.out + out.err
    lines = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    assert any(line.get("message") == "request" and line.get("request_id") for line in lines)
    for secret in (token, "13912345678", "dev-pos-secret", "dev-wechat-secret", "session_key", "dev-admin-key"):
        assert secret not in text, secret
    assert token.split(".")[2] not in text
