"""HTTP helpers for the running stack, as the mini-program, a till and staff call it."""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.support import calls


class Http:
    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> requests.Response:
        payload = json.dumps(body).encode() if body is not None else b""
        return requests.request(method, self.base + path, data=payload, headers=headers or {}, timeout=30)

    def login(self, openid: str) -> dict[str, Any]:
        answer = self.call("POST", "/v1/auth/login", {"appid": calls.DEMO_APPID, "code": f"dev-{openid}"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def member(self, method: str, path: str, token: str, body: Any = None) -> requests.Response:
        return self.call(method, path, body, calls.bearer(token))

    def enrolled(self, openid: str, **profile: Any) -> tuple[str, str]:
        token = self.login(openid)["token"]
        answer = self.member("POST", "/v1/members", token, profile)
        assert answer.status_code in (200, 201), answer.text
        return token, answer.json()["member_id"]

    def till(self, method: str, path: str, body: Any = None) -> requests.Response:
        payload = json.dumps(body).encode() if body is not None else b""
        return requests.request(method, self.base + path, data=payload,
                                headers=calls.till_headers(method, path, payload), timeout=30)

    def staff(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.call(method, path, body, calls.bearer(calls.ADMIN_KEY))
