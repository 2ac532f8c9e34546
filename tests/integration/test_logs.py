"""Logs carry request ids and outcomes, never tokens, session keys, phones or secrets.

Every kind of caller makes calls (member, till, staff, a refused login, a WeChat send), and every
line logged — ours and the libraries' — is searched for the secret *values* themselves."""

from __future__ import annotations

import io
import json
import logging

from tests.support import calls


def test_no_secret_value_reaches_a_log_line(api, wechat):
    from chalicelib.logs import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger().registered_formatter)
    # moto's HTTP interception (the `responses` library) logs every URL it lets through to the
    # WeChat stand-in, query strings included; it exists only in these tests, never in Lambda.
    handler.addFilter(lambda record: not record.name.startswith("responses"))
    root = logging.getLogger()
    old_root_level = root.level
    for target in (logger(), root):
        target.addHandler(handler)
    logger().setLevel("DEBUG")
    root.setLevel("INFO")
    sessions_before = len(wechat.state.session_keys)
    try:
        login = api.login("leaky")
        token = login["token"]
        api.member("POST", "/v1/members", token, {"nickname": "Leaky"})
        api.member("POST", "/v1/members/me/phone", token, {"phone_code": "phone-13912345678"})
        card = api.member("GET", "/v1/members/me", token).json
        member_id = card["member_id"]
        api.member("POST", "/v1/members/me/subscriptions", token, {"template_ids": ["tmpl-points"]})
        api.till("POST", "/v1/orders", {"order_id": "o-leaky", "member_id": member_id, "amount_fen": 10_000,
                                        "paid_at": "2026-11-20T12:00:00+08:00"})
        api.till("POST", "/v1/orders", {"order_id": "o-leaky", "member_id": member_id, "amount_fen": 10_000,
                                        "paid_at": "2026-11-20T12:00:00+08:00"})  # a replay
        api.till("POST", "/v1/orders", {"order_id": "o-x", "member_id": member_id, "amount_fen": 1},
                 secret="wrong-secret")  # refused
        api.staff("GET", f"/v1/admin/members/{member_id}")
        api.staff("POST", f"/v1/admin/members/{member_id}/adjustments",
                  {"points": 5, "reason": "log test", "request_id": "adj-leaky"})
        api.staff("GET", "/v1/admin/program", key="not-a-key")  # refused
        api.request("POST", "/v1/auth/login", {"appid": calls.DEMO_APPID, "code": "bad"})
        # A WeChat send, which fetches an access token and uses it.
        from chalicelib.services import notifications
        from chalicelib.settings import get_settings

        notifications.enqueue(get_settings(), "demo", member_id, "points_changed", "log-test",
                              {"type": "earn", "points": 5, "balance": 105, "reason": "log test", "date": "2026-11-20"})
        from chalicelib.store import keys

        sk = keys.notification("demo", member_id, "log-test")[1]
        assert notifications.send(get_settings(), "demo", member_id, sk) == "sent"
    finally:
        logger().setLevel("WARNING")
        root.setLevel(old_root_level)
        for target in (logger(), root):
            target.removeHandler(handler)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert sum(line.get("message") == "request" and bool(line.get("request_id")) for line in lines) == 12
    session_keys = wechat.state.session_keys[sessions_before:]
    access_tokens = wechat.state.issued_access_tokens()
    assert session_keys and access_tokens, "the calls really fetched a session key and an access token"
    secrets = {
        "member token": token, "member token signature": token.split(".")[2],
        "phone": "13912345678", "till secret": calls.TILL_SECRET, "WeChat app secret": "dev-wechat-secret",
        "admin key": calls.ADMIN_KEY, "a refused admin key": "not-a-key",
        **{f"session_key {n}": value for n, value in enumerate(session_keys)},
        **{f"access token {n}": value for n, value in enumerate(access_tokens)},
    }
    leaked = sorted(name for name, value in secrets.items() if value in text)
    assert leaked == []
