"""The local stack as a developer meets it: the API, the WeChat stand-in and the stream trigger."""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by name
    from conftest import RunningStack

DEMO_APPID, DEMO_SECRET = "wxdemo0000000000", "dev-wechat-secret"


def _openid() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def _token(stack: RunningStack) -> str:
    answer = requests.get(
        f"{stack.wechat}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": DEMO_APPID, "secret": DEMO_SECRET},
        timeout=5,
    ).json()
    assert answer["expires_in"] == 7200
    return answer["access_token"]


def test_health(stack: RunningStack) -> None:
    answer = requests.get(f"{stack.api}/health", timeout=5)

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_an_unknown_path_is_a_404_in_the_envelope_and_echoes_no_token(stack: RunningStack) -> None:
    """What API Gateway answers through the template's gateway responses; `chalice local` alone
    would say 403 and repeat the Authorization header in the body."""
    for headers in ({}, {"Authorization": "Bearer secret-token-value"}):
        answer = requests.get(f"{stack.api}/v1/no-such-thing", headers=headers, timeout=5)

        assert answer.status_code == 404
        error = answer.json()["error"]
        assert error["code"] == "not_found" and error["request_id"] == answer.headers["X-Request-Id"]
        assert "secret-token-value" not in answer.text


def test_login_code_gives_its_openid(stack: RunningStack) -> None:
    openid = _openid()
    params = {"appid": DEMO_APPID, "secret": DEMO_SECRET, "js_code": f"dev-{openid}",
              "grant_type": "authorization_code", "access_token": "wechatpy-adds-this"}

    session = requests.get(f"{stack.wechat}/sns/jscode2session", params=params, timeout=5).json()

    assert session["openid"] == openid
    assert session["unionid"] == f"u-{openid}"
    assert len(base64.b64decode(session["session_key"])) == 16


def test_login_refusals_use_wechat_errcodes(stack: RunningStack) -> None:
    def login(**changes: str) -> dict:
        params = {"appid": DEMO_APPID, "secret": DEMO_SECRET, "js_code": "dev-x", "grant_type": "authorization_code"}
        return requests.get(f"{stack.wechat}/sns/jscode2session", params={**params, **changes}, timeout=5).json()

    assert login(js_code="not-a-dev-code")["errcode"] == 40029
    assert login(appid="wxsomebodyelse000")["errcode"] == 40013
    assert login(secret="wrong")["errcode"] == 40125


def test_phone_code_gives_its_number(stack: RunningStack) -> None:
    url = f"{stack.wechat}/wxa/business/getuserphonenumber"

    answer = requests.post(url, params={"access_token": _token(stack)}, json={"code": "phone-13800001234"},
                           timeout=5).json()

    assert answer["errcode"] == 0
    assert answer["phone_info"]["purePhoneNumber"] == "13800001234"
    assert answer["phone_info"]["countryCode"] == "86"
    assert answer["phone_info"]["watermark"]["appid"] == DEMO_APPID
    bad_code = requests.post(url, params={"access_token": _token(stack)}, json={"code": "13800001234"}, timeout=5)
    assert bad_code.json()["errcode"] == 40029
    bad_token = requests.post(url, params={"access_token": "forged"}, json={"code": "phone-13800001234"}, timeout=5)
    assert bad_token.json()["errcode"] == 40001


def test_subscribe_messages_are_listed_in_order(stack: RunningStack) -> None:
    openid, token = _openid(), _token(stack)
    url = f"{stack.wechat}/cgi-bin/message/subscribe/send"
    first = {"touser": openid, "template_id": "tmpl-points", "page": "pages/card",
             "data": {"thing1": {"value": "积分到账"}}}
    second = {"touser": openid, "template_id": "tmpl-tier", "data": {"thing2": {"value": "银卡"}}}

    for body in (first, second):
        assert requests.post(url, params={"access_token": token}, json=body, timeout=5).json() == {
            "errcode": 0, "errmsg": "ok"}

    mine = [m for m in stack.wechat_sent() if m["touser"] == openid]
    assert mine == [first, {**second, "page": None}]


def test_a_refusing_user_gets_nothing(stack: RunningStack) -> None:
    openid = _openid()
    requests.post(f"{stack.wechat}/_refuse", json={"openid": openid}, timeout=5).raise_for_status()

    answer = requests.post(f"{stack.wechat}/cgi-bin/message/subscribe/send", params={"access_token": _token(stack)},
                           json={"touser": openid, "template_id": "tmpl-points", "data": {}}, timeout=5).json()

    assert answer["errcode"] == 43101
    assert not [m for m in stack.wechat_sent() if m["touser"] == openid]


def test_a_table_write_reaches_the_stream_handler(stack: RunningStack) -> None:
    pk = f"E2E#probe#{uuid.uuid4().hex}"

    stack.dynamodb().put_item(TableName=stack.table_name, Item={"pk": {"S": pk}, "sk": {"S": "PROBE"}})

    stack.wait_for_stream_record(lambda r: r["keys"].get("pk") == pk)
    stack.settle()  # each function has its own poller (as on Lambda): both have seen it now
    delivered = {entry["function"]: record for entry in stack.pump_entries() if entry.get("outcome") == "ok"
                 for record in entry["records"] if record["keys"].get("pk") == pk}
    record = delivered["on_table_change"]
    assert record["event"] == "INSERT"
    assert record["keys"] == {"pk": pk, "sk": "PROBE"}


def test_the_seeded_program_went_through_the_stream(stack: RunningStack) -> None:
    # The pump reads from the stream's start, so writes made before it started are delivered too.
    stack.settle()

    delivered = {r["keys"].get("pk") for e in stack.pump_entries() if e["outcome"] == "ok" for r in e["records"]}
    assert "PROGRAM#demo" in delivered
