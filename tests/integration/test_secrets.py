"""Secrets at run time: Secrets Manager through Powertools (cached), each function only its own,
and key rings so data and token keys rotate without losing what the old keys made."""

from __future__ import annotations

import base64
import os

import boto3
import jwt
import pytest
from moto import mock_aws

NEW_KEY = base64.b64encode(b"n" * 32).decode()
OLD_KEY = base64.b64encode(b"o" * 32).decode()


@pytest.fixture
def secrets_manager(monkeypatch):
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="loyalty/prod/data_key", SecretString=f"k1:{NEW_KEY},k0:{OLD_KEY}")
        client.create_secret(Name="loyalty/prod/token_secret", SecretString="t1:" + "a" * 64)
        monkeypatch.setenv("LOYALTY_STAGE", "prod")
        monkeypatch.setenv("LOYALTY_WECHAT_API_BASE", "https://api.weixin.qq.com")
        monkeypatch.setenv("LOYALTY_WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com")
        yield client
    parameters.clear_caches()


def test_a_function_reads_only_the_secrets_it_is_given(secrets_manager, monkeypatch):
    from chalicelib import crypto
    from chalicelib.settings import Settings

    monkeypatch.setenv("LOYALTY_SECRET_IDS", '{"data_key": "loyalty/prod/data_key"}')
    settings = Settings()
    assert crypto.key_ring(settings.secret("data_key")).current == "k1"
    assert settings.token_secret is None and settings.lookup_key is None
    with pytest.raises(RuntimeError):
        settings.secret("token_secret")


def test_secrets_are_cached_and_a_rotation_arrives_after_the_cache_lifetime(secrets_manager, monkeypatch):
    from chalicelib import settings as settings_module

    monkeypatch.setenv("LOYALTY_SECRET_IDS", '{"token_secret": "loyalty/prod/token_secret"}')
    monkeypatch.setenv("LOYALTY_SECRETS_CACHE_SECONDS", "300")
    clock = [5000.0]
    monkeypatch.setattr(settings_module.time, "monotonic", lambda: clock[0])
    settings_module.clear_settings()
    calls = []
    real = secrets_manager.meta.events
    real.register("before-call.secrets-manager.GetSecretValue", lambda **kw: calls.append(1))
    try:
        first = settings_module.get_settings()
        assert settings_module.get_settings() is first
        secrets_manager.put_secret_value(SecretId="loyalty/prod/token_secret", SecretString="t2:" + "b" * 64)
        clock[0] += 299
        assert settings_module.get_settings().secret("token_secret").startswith("t1:")
        clock[0] += 2
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()  # Powertools' own max_age runs on the wall clock
        assert settings_module.get_settings().secret("token_secret").startswith("t2:")
    finally:
        settings_module.clear_settings()


def test_ciphertexts_carry_the_key_id_and_old_keys_still_decrypt():
    from chalicelib import crypto
    from chalicelib.settings import Settings

    old = Settings(data_key=OLD_KEY)  # a single key: id k0
    sealed_old = crypto.encrypt(old, "13800000000", context="P#demo#M#1")
    assert sealed_old.startswith("k0:")
    legacy = sealed_old.split(":", 1)[1]  # as written before key ids existed
    rotated = Settings(data_key=f"k1:{NEW_KEY},k0:{OLD_KEY}")
    sealed_new = crypto.encrypt(rotated, "13800000000", context="P#demo#M#1")
    assert crypto.ciphertext_key_id(sealed_new) == "k1"
    for token in (sealed_old, legacy, sealed_new):
        assert crypto.decrypt(rotated, token, context="P#demo#M#1") == "13800000000"
    with pytest.raises(ValueError, match="no key 'k1'"):
        crypto.decrypt(old, sealed_new, context="P#demo#M#1")


def test_member_tokens_carry_kid_and_verify_while_their_key_is_in_the_ring():
    from chalicelib.auth import tokens
    from chalicelib.errors import Unauthorized
    from chalicelib.settings import Settings

    before = Settings(token_secret="t1:" + "a" * 64)
    token, _ = tokens.issue(before, "demo", "alice", "m1")
    assert jwt.get_unverified_header(token)["kid"] == "t1"
    during = Settings(token_secret="t2:" + "b" * 64 + ",t1:" + "a" * 64)
    assert tokens.verify(during, token).openid == "alice"
    assert jwt.get_unverified_header(tokens.issue(during, "demo", "bob", None)[0])["kid"] == "t2"
    after = Settings(token_secret="t2:" + "b" * 64)
    with pytest.raises(Unauthorized):
        tokens.verify(after, token)
    # A token from before key ids (no kid) verifies with the plain, single key it was made with.
    plain = Settings(token_secret="c" * 64)
    legacy = jwt.encode({"iss": "loyalty", "aud": "demo", "sub": "carol", "iat": 1, "exp": 2**40},
                        "c" * 64, algorithm="HS256")
    assert tokens.verify(plain, legacy).openid == "carol"


def test_wechat_pay_credentials_come_from_secrets_manager_to_the_functions_that_pay(secrets_manager, monkeypatch):
    import json

    from chalicelib.settings import WECHATPAY_SECRET_FIELDS, Settings
    from infra.merge_template import FUNCTION_SECRETS, secret_ids

    values = {field: f"prod-{field}-value" for field in WECHATPAY_SECRET_FIELDS}
    for field, value in values.items():
        secrets_manager.create_secret(Name=f"loyalty/prod/{field}", SecretString=value)
    # What the packaged template gives the frequent jobs' function, read as that function reads it.
    monkeypatch.setenv("LOYALTY_SECRET_IDS", secret_ids("loyalty/prod", FUNCTION_SECRETS["run_frequent_jobs"]))
    paying = Settings()
    assert {field: paying.secret(field) for field in WECHATPAY_SECRET_FIELDS} == values
    # A function that does not pay is given none of them.
    monkeypatch.setenv("LOYALTY_SECRET_IDS", secret_ids("loyalty/prod", FUNCTION_SECRETS["send_notifications"]))
    other = Settings()
    assert all(getattr(other, field) is None for field in WECHATPAY_SECRET_FIELDS)
    with pytest.raises(RuntimeError):
        other.secret("wechatpay_apiv3_key")
    assert "wechatpay" not in json.dumps(FUNCTION_SECRETS["send_notifications"])
