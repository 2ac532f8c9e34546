"""Functional tests: the app through `chalice.test.Client`, DynamoDB in-process (moto), WeChat
through the local stack's stand-in on a loopback port."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.conftest import WECHAT_PORT
from tests.support import calls


@pytest.fixture(scope="session")
def wechat():
    from devstack.wechat_standin import WechatStandin

    with WechatStandin(port=WECHAT_PORT) as standin:
        yield standin


@pytest.fixture
def standin(wechat):
    """The WeChat stand-in's state, with nothing sent and no refusals set up before or after the test."""
    wechat.state.clear_sent()
    wechat.state.clear_refusals()
    yield wechat.state
    wechat.state.clear_refusals()


@pytest.fixture
def aws(wechat):
    from chalicelib.seed import seed_demo_program
    from chalicelib.settings import get_settings
    from chalicelib.store import programs, schema
    from devstack import serial_dynamodb

    serial_dynamodb.install()
    with mock_aws():
        schema.create_table(boto3.client("dynamodb", region_name="us-east-1"), get_settings().table_name)
        programs.clear_cache()
        seed_demo_program()
        yield
    programs.clear_cache()


class Api:
    """The app under test, with one method per kind of caller."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                raw: bytes | None = None) -> Any:
        payload = raw if raw is not None else (calls.encode(body) if body is not None else b"")
        response = self.client.http.request(method, path, headers=headers or {}, body=payload)
        response.json = json.loads(response.body) if response.body else None
        return response

    def login(self, openid: str) -> dict[str, Any]:
        answer = self.request("POST", "/v1/auth/login", {"appid": calls.DEMO_APPID, "code": f"dev-{openid}"})
        assert answer.status_code == 200, answer.body
        return answer.json

    def member(self, method: str, path: str, token: str, body: Any = None) -> Any:
        return self.request(method, path, body, calls.bearer(token))

    def enrolled(self, openid: str, **profile: Any) -> str:
        token = self.login(openid)["token"]
        answer = self.member("POST", "/v1/members", token, profile)
        assert answer.status_code in (200, 201), answer.body
        return token

    def till(self, method: str, path: str, body: Any = None, **sign: Any) -> Any:
        payload = calls.encode(body) if body is not None else b""
        return self.request(method, path, headers=calls.till_headers(method, path, payload, **sign), raw=payload)

    def staff(self, method: str, path: str, body: Any = None, key: str = calls.ADMIN_KEY) -> Any:
        return self.request(method, path, body, calls.bearer(key))


@pytest.fixture
def api(aws):
    from chalice.test import Client

    from app import app

    # The local stage: its config sets only LOYALTY_STAGE=local, which the tests use anyway.
    with Client(app, stage_name="local") as client:
        yield Api(client)
