"""The WeChat stand-in on its own (a private instance per test, so the shared stack is untouched):
token life cycle, refusals, the control paths, and wechatpy 1.8.18 talking to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack.wechat_standin import WechatStandin

APPID, SECRET = "wxtest0000000001", "test-secret"


@pytest.fixture
def standin() -> Iterator[WechatStandin]:
    with WechatStandin(port=0, apps={APPID: SECRET}) as server:  # port 0: any free port
        yield server


def _get(standin: WechatStandin, path: str, **params: Any) -> Any:
    return requests.get(f"{standin.url}{path}", params=params, timeout=5).json()


def _post(standin: WechatStandin, path: str, body: Any, **params: Any) -> Any:
    return requests.post(f"{standin.url}{path}", params=params, json=body, timeout=5).json()


def _stable_token(standin: WechatStandin, force_refresh: bool = False) -> dict[str, Any]:
    body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": force_refresh}
    return _post(standin, "/cgi-bin/stable_token", body)


def test_the_app_registry_is_the_constructors(standin: WechatStandin) -> None:
    token = _get(standin, "/cgi-bin/token", grant_type="client_credential", appid=APPID, secret=SECRET)
    demo = _get(standin, "/cgi-bin/token", grant_type="client_credential", appid="wxdemo0000000000",
                secret="dev-wechat-secret")

    assert token["expires_in"] == 7200 and token["access_token"]
    assert demo == {"errcode": 40013, "errmsg": "invalid appid"}
    assert _get(standin, "/cgi-bin/token", grant_type="client_credential", appid=APPID, secret="x")["errcode"] == 40125
    assert _get(standin, "/cgi-bin/token", grant_type="password", appid=APPID, secret=SECRET)["errcode"] == 40002


def test_apps_can_be_added_later(standin: WechatStandin) -> None:
    assert _post(standin, "/_apps", {"appid": "wxlater000000000", "secret": "s"})["errcode"] == 0
    standin.state.add_app("wxlater000000001", "t")

    for appid, secret in (("wxlater000000000", "s"), ("wxlater000000001", "t")):
        assert "access_token" in _get(standin, "/cgi-bin/token", grant_type="client_credential", appid=appid,
                                      secret=secret)


def test_the_stable_token_is_reused_unless_forced(standin: WechatStandin) -> None:
    first, again = _stable_token(standin), _stable_token(standin)
    forced = _stable_token(standin, force_refresh=True)

    assert first["access_token"] == again["access_token"] != forced["access_token"]
    stats = _get(standin, "/_stats")
    assert stats["token_issued"] == 3  # every answer with a token counts
    assert stats["token_minted"] == 2


def test_expired_tokens_are_refused_with_40001(standin: WechatStandin) -> None:
    token = _stable_token(standin)["access_token"]
    assert _post(standin, "/wxa/business/getuserphonenumber", {"code": "phone-13900000000"},
                 access_token=token)["errcode"] == 0

    assert _post(standin, "/_expire_tokens", {})["expired"] == 1

    refused = {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
    assert _post(standin, "/wxa/business/getuserphonenumber", {"code": "phone-13900000000"},
                 access_token=token) == refused
    assert _post(standin, "/cgi-bin/message/subscribe/send", {"touser": "o", "template_id": "t", "data": {}},
                 access_token=token) == refused
    assert _get(standin, "/_stats")["token_rejected"] == 2
    assert _stable_token(standin)["access_token"] != token  # a fresh one after expiry


def test_calls_without_a_token_get_41001(standin: WechatStandin) -> None:
    assert _post(standin, "/cgi-bin/message/subscribe/send", {"touser": "o", "template_id": "t", "data": {}},
                 )["errcode"] == 41001


def test_refusals_and_the_sent_list_can_be_reset(standin: WechatStandin) -> None:
    token = _stable_token(standin)["access_token"]
    message = {"touser": "carol", "template_id": "tmpl-points", "data": {"thing1": {"value": "10"}}}
    _post(standin, "/_refuse", {"openid": "carol"})
    assert _post(standin, "/cgi-bin/message/subscribe/send", message, access_token=token)["errcode"] == 43101

    requests.delete(f"{standin.url}/_refuse", timeout=5).raise_for_status()
    assert _post(standin, "/cgi-bin/message/subscribe/send", message, access_token=token)["errcode"] == 0
    assert _get(standin, "/_sent") == [{**message, "page": None}]

    requests.delete(f"{standin.url}/_sent", timeout=5).raise_for_status()
    assert _get(standin, "/_sent") == []


def test_malformed_bodies_get_wechat_errors(standin: WechatStandin) -> None:
    token = _stable_token(standin)["access_token"]
    url = f"{standin.url}/cgi-bin/message/subscribe/send"

    not_json = requests.post(url, params={"access_token": token}, data=b"{", timeout=5).json()
    no_user = _post(standin, "/cgi-bin/message/subscribe/send", {"template_id": "t", "data": {}}, access_token=token)

    assert not_json["errcode"] == 47001
    assert no_user["errcode"] == 47003
    assert requests.get(f"{standin.url}/cgi-bin/nothing", timeout=5).status_code == 404


def test_secrets_are_not_logged(standin: WechatStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="devstack.wechat")
    token = _stable_token(standin)["access_token"]
    session = _get(standin, "/sns/jscode2session", appid=APPID, secret=SECRET, js_code="dev-dave",
                   grant_type="authorization_code")
    _post(standin, "/wxa/business/getuserphonenumber", {"code": "phone-13700000000"}, access_token=token)

    logged = caplog.text
    assert caplog.records  # the requests were logged...
    for secret in (SECRET, token, session["session_key"], "13700000000"):
        assert secret not in logged  # ...without what they carried


def _wechatpy_client(base: str) -> Any:
    """wechatpy 1.8.18's client with its hard-coded https://api.weixin.qq.com/ replaced."""
    from wechatpy import WeChatClient

    class Client(WeChatClient):
        API_BASE_URL = f"{base}/cgi-bin/"

        def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
            if kwargs.get("api_base_url") == "https://api.weixin.qq.com/":
                kwargs["api_base_url"] = f"{base}/"
            return super()._request(method, url_or_endpoint, **kwargs)

        def fetch_access_token(self) -> Any:
            return self._fetch_access_token(
                url=f"{base}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    return Client(APPID, SECRET)


def test_wechatpy_talks_to_it(standin: WechatStandin) -> None:
    client = _wechatpy_client(standin.url)

    session = client.wxa.code_to_session("dev-erin")
    client.wxa.send_subscribe_message("erin", "tmpl-tier", {"thing1": {"value": "金卡"}}, page="pages/card")
    standin.state.expire_tokens()
    # wechatpy sees 40001, fetches a new token and retries: the stand-in's answers drive its refresh.
    client.wxa.send_subscribe_message("erin", "tmpl-points", {"thing1": {"value": "100"}})

    assert session["openid"] == "erin" and session["unionid"] == "u-erin"
    assert [m["template_id"] for m in standin.state.sent_messages()] == ["tmpl-tier", "tmpl-points"]
    assert standin.state.stats()["token_issued"] == 2
