"""Every way a caller can fail to prove itself gets the contract's 4xx and changes nothing."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.support import calls

ORDER = {"order_id": "o-auth", "member_id": "m-none", "amount_fen": 100, "paid_at": "2026-11-20T12:00:00+08:00"}


def error_code(answer):
    return answer.json["error"]["code"]


def test_login_with_a_bad_code_is_401(api):
    answer = api.request("POST", "/v1/auth/login", {"appid": calls.DEMO_APPID, "code": "not-a-dev-code"})
    assert answer.status_code == 401 and error_code(answer) == "invalid_code"


def test_login_with_a_wrong_appid_is_401(api):
    answer = api.request("POST", "/v1/auth/login", {"appid": "wxunknown000000000", "code": "dev-alice"})
    assert answer.status_code == 401 and error_code(answer) == "unknown_appid"


def test_login_answer_has_no_session_key(api):
    answer = api.request("POST", "/v1/auth/login", {"appid": calls.DEMO_APPID, "code": "dev-alice"})
    assert set(answer.json) == {"token", "expires_in", "enrolled", "member_id"}
    claims = jwt.decode(answer.json["token"], options={"verify_signature": False})
    assert "session_key" not in str(claims)


def test_expired_forged_and_missing_tokens_are_401(api):
    from chalicelib.settings import get_settings

    secret = get_settings().token_secret.get_secret_value()
    now = int(time.time())
    claims = {"iss": "loyalty", "aud": "demo", "sub": "alice", "mid": None}
    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 60}, secret, algorithm="HS256")
    forged = jwt.encode({**claims, "iat": now, "exp": now + 600}, "not-the-secret-" * 3, algorithm="HS256")
    unsigned = jwt.encode({**claims, "iat": now, "exp": now + 600}, None, algorithm="none")
    for token, code in ((expired, "token_expired"), (forged, "unauthorized"), (unsigned, "unauthorized"),
                        ("garbage", "unauthorized")):
        answer = api.member("GET", "/v1/members/me", token)
        assert answer.status_code == 401 and error_code(answer) == code, token
    assert api.request("GET", "/v1/members/me").status_code == 401


def test_till_signature_failures_are_401(api):
    body = calls.encode(ORDER)

    def post(headers):
        return api.request("POST", "/v1/orders", headers=headers, raw=body)

    bad = calls.till_headers("POST", "/v1/orders", body, secret="wrong-secret")
    assert post(bad).status_code == 401 and error_code(post(bad)) == "bad_signature"

    stale = calls.till_headers("POST", "/v1/orders", body, timestamp=int(time.time()) - 301)
    assert post(stale).status_code == 401 and error_code(post(stale)) == "stale_timestamp"
    future = calls.till_headers("POST", "/v1/orders", body, timestamp=int(time.time()) + 301)
    assert post(future).status_code == 401

    other_path = calls.till_headers("POST", "/v1/orders/x/refunds", body)
    assert post(other_path).status_code == 401

    unknown_key = calls.till_headers("POST", "/v1/orders", body, key_id="nobody")
    assert post(unknown_key).status_code == 401

    assert api.request("POST", "/v1/orders", ORDER).status_code == 401


def test_replayed_nonce_is_401(api):
    body = calls.encode(ORDER)
    headers = calls.till_headers("POST", "/v1/orders", body, nonce="abcdefghijklmnop1234")
    first = api.request("POST", "/v1/orders", headers=headers, raw=body)
    assert first.status_code == 404  # signed fine; the member does not exist
    replayed = api.request("POST", "/v1/orders", headers=headers, raw=body)
    assert replayed.status_code == 401 and error_code(replayed) == "replayed_nonce"


def test_staff_key_checks(api):
    assert api.staff("POST", "/v1/admin/jobs/reconcile/runs", {}, key="wrong").status_code == 401
    member_token = api.login("alice")["token"]
    assert api.staff("POST", "/v1/admin/jobs/reconcile/runs", {}, key=member_token).status_code == 401


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_dev_defaults_are_refused_outside_local(stage, monkeypatch):
    from pydantic import ValidationError

    from chalicelib.settings import Settings

    from chalicelib.settings import DEV_DATA_KEY

    monkeypatch.setenv("LOYALTY_STAGE", stage)
    monkeypatch.setenv("LOYALTY_WECHAT_API_BASE", "https://api.weixin.qq.com")
    monkeypatch.setenv("LOYALTY_WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com")
    # Not given: no secret at all (never the dev default), and using one fails loudly.
    unset = Settings()
    assert unset.token_secret is unset.data_key is unset.lookup_key is None
    with pytest.raises(RuntimeError, match="not available to this function"):
        unset.secret("data_key")
    # Given the dev default, alone or inside a key ring: refused at start-up.
    for value in (DEV_DATA_KEY, f"k2:eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=,k0:{DEV_DATA_KEY}"):
        monkeypatch.setenv("LOYALTY_DATA_KEY", value)
        with pytest.raises(ValidationError, match="dev default secrets"):
            Settings()


def test_dev_keys_are_refused_outside_local(aws):
    from chalicelib.auth import staff, till
    from chalicelib.errors import Unauthorized
    from chalicelib.settings import Settings

    prod = Settings(stage="prod", token_secret="x" * 40, data_key="eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=",
                    lookup_key="y" * 40, wechat_api_base="https://api.weixin.qq.com",
                    wechatpay_api_base="https://api.mch.weixin.qq.com",
                    **{name: f"prod-{name}" for name in ("wechatpay_mchid", "wechatpay_merchant_serial",
                                                         "wechatpay_merchant_private_key", "wechatpay_apiv3_key",
                                                         "wechatpay_public_key", "wechatpay_public_key_id")})
    with pytest.raises(Unauthorized):
        staff.verify(prod, calls.ADMIN_KEY)
    body = calls.encode(ORDER)
    with pytest.raises(Unauthorized):
        till.verify(prod, {k.lower(): v for k, v in calls.till_headers("POST", "/v1/orders", body).items()},
                    "POST", "/v1/orders", body)
