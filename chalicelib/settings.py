"""Typed settings, read once from the environment (prefix ``LOYALTY_``).

The local stack's published dev defaults live here so that `make run` works with no set-up;
outside the ``local`` stage they are never used: given explicitly they are refused at start-up,
and a secret not given at all is absent, so a deployment that forgot one fails loudly when it is
used instead of running with a key everybody knows.

Deployed functions read their secrets from Secrets Manager at run time: ``LOYALTY_SECRET_IDS``
names, per secret field, the secret holding it (``{"data_key": "loyalty/prod/data_key"}``), and
each function is given only the ones it uses. They are fetched with the Powertools parameters
utility and re-read every ``secrets_cache_seconds``, so a rotation reaches warm containers too.
Outside ``local`` a secret a function was not given is ``None``: using it is a bug, and fails.
A secret's value may be a key ring, ``id:value,id:value`` (the first is current; see crypto.py).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from chalicelib.wechatpay_dev_keys import DEV_MERCHANT_PRIVATE_KEY, DEV_PLATFORM_PUBLIC_KEY

LOCAL_STAGE = "local"

# Published dev defaults (also in ../shared/API.md). Never valid outside the local stage.
DEV_TOKEN_SECRET = "dev-token-secret-not-for-production-use"
DEV_DATA_KEY = "ZGV2LWRhdGEta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE="  # base64 of a 32-byte dev key
DEV_LOOKUP_KEY = "dev-lookup-key-not-for-production-use"
# WeChat Pay (wechatpayv3, public-key mode): the stand-in's merchant and platform dev keys.
DEV_WECHATPAY_MCHID = "1900000001"
DEV_WECHATPAY_MERCHANT_SERIAL = "DEV0000000000000000000000000000000000001"
DEV_WECHATPAY_APIV3_KEY = "dev-apiv3-key-not-for-production"  # 32 bytes, as WeChat Pay's are
DEV_WECHATPAY_PUBLIC_KEY_ID = "PUB_KEY_ID_DEV0000000000000000000001"
DEV_SECRETS = frozenset({DEV_TOKEN_SECRET, DEV_DATA_KEY, DEV_LOOKUP_KEY, DEV_WECHATPAY_APIV3_KEY})
SECRET_FIELDS = ("token_secret", "data_key", "lookup_key")
# WeChat Pay's credentials: from Secrets Manager like the others (one secret per field), given
# only to the functions that pay, query or refund (infra/merge_template.py FUNCTION_SECRETS).
WECHATPAY_SECRET_FIELDS = ("wechatpay_mchid", "wechatpay_merchant_serial", "wechatpay_merchant_private_key",
                           "wechatpay_apiv3_key", "wechatpay_public_key", "wechatpay_public_key_id")


class SecretsManagerSource(PydanticBaseSettingsSource):
    """The secret fields named in ``secret_ids``, from Secrets Manager (Powertools, cached)."""

    def __init__(self, settings_cls: type[BaseSettings], secret_ids: dict[str, str], max_age: int) -> None:
        super().__init__(settings_cls)
        self.secret_ids, self.max_age = secret_ids, max_age

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # every value comes from __call__

    def __call__(self) -> dict[str, Any]:
        if not self.secret_ids:
            return {}
        unknown = set(self.secret_ids) - {*SECRET_FIELDS, *WECHATPAY_SECRET_FIELDS}
        if unknown:
            raise ValueError(f"LOYALTY_SECRET_IDS names unknown secrets: {sorted(unknown)}")
        from aws_lambda_powertools.utilities import parameters

        return {field: parameters.get_secret(secret_id, max_age=self.max_age)
                for field, secret_id in self.secret_ids.items()}


class TableSettings(BaseSettings):
    """Where the table is. Read when the models are imported, which also happens when
    `chalice package` loads the app to build a template, where no secret is set."""

    model_config = SettingsConfigDict(env_prefix="LOYALTY_", frozen=True, extra="ignore")

    stage: str = LOCAL_STAGE
    table_name: str = "loyalty-local"
    region: str = "us-east-1"
    # Set for the local stack (moto server) and tests; empty on AWS.
    dynamodb_endpoint: str | None = None


class Settings(TableSettings):

    # Secret field -> Secrets Manager secret id (JSON in LOYALTY_SECRET_IDS); empty: from the environment.
    secret_ids: dict[str, str] = Field(default_factory=dict)
    secrets_cache_seconds: int = Field(default=300, ge=0)

    token_secret: SecretStr | None = SecretStr(DEV_TOKEN_SECRET)
    token_ttl_seconds: int = Field(default=7200, ge=60, le=86400 * 30)
    # AES-256-GCM key (base64) for phones, session keys and till secrets at rest.
    data_key: SecretStr | None = SecretStr(DEV_DATA_KEY)
    # HMAC key for the phone lookup hash; separate from data_key so either can rotate alone.
    lookup_key: SecretStr | None = SecretStr(DEV_LOOKUP_KEY)

    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout_seconds: float = 5.0

    # WeChat Pay v3. The merchant's private key signs our requests and `pay_params`; the platform
    # public key (public-key mode: no certificate download) verifies WeChat Pay's answers and
    # notifications; the APIv3 key decrypts notification resources. Dev defaults: local only.
    # All five come from the stage's secret like the other secrets (infra: SecretStr fields); the
    # mchid, serial and public key are not secret as such, but belong to the same merchant account.
    # Outside local these come only from the function's environment: absent (None) where not given.
    wechatpay_mchid: SecretStr | None = SecretStr(DEV_WECHATPAY_MCHID)
    wechatpay_merchant_serial: SecretStr | None = SecretStr(DEV_WECHATPAY_MERCHANT_SERIAL)
    wechatpay_merchant_private_key: SecretStr | None = SecretStr(DEV_MERCHANT_PRIVATE_KEY)
    wechatpay_apiv3_key: SecretStr | None = SecretStr(DEV_WECHATPAY_APIV3_KEY)
    wechatpay_public_key: SecretStr | None = SecretStr(DEV_PLATFORM_PUBLIC_KEY)
    wechatpay_public_key_id: SecretStr | None = SecretStr(DEV_WECHATPAY_PUBLIC_KEY_ID)
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"
    # Where WeChat Pay sends payment and refund notifications (this service's notify route). Set per
    # deployment (the API's https address); an order is refused while it is not https outside local.
    wechatpay_notify_url: str = "http://127.0.0.1:8000/v1/payments/wechat/notify"
    wechatpay_timeout_seconds: float = 5.0
    # A notification signed longer ago than this (either way) is refused: replays of old ones.
    wechatpay_notify_window_seconds: int = Field(default=300, ge=30, le=3600)
    # An unpaid order closes after this long; the frequent job queries, then closes it.
    wechatpay_order_ttl_minutes: int = Field(default=30, ge=5, le=24 * 60)

    hmac_skew_seconds: int = 300
    nonce_window_seconds: int = 600
    # Program config and till keys are cached per Lambda container for this long.
    config_cache_seconds: int = Field(default=30, ge=0)
    # Staff accounts (issue 16). A staff token lives this long; a change to an account (disabled,
    # role) reaches a warm container within staff_cache_seconds (at once in the one that made it).
    staff_token_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=86400)
    staff_cache_seconds: int = Field(default=5, ge=0, le=60)
    # Lock-out: this many failed logins of one account, or from one address, within the window
    # lock it for login_lock_seconds (the right password included).
    login_max_failures: int = Field(default=10, ge=3, le=100)
    login_window_seconds: int = Field(default=900, ge=60)
    login_lock_seconds: int = Field(default=900, ge=60)
    login_max_failures_per_address: int = Field(default=30, ge=3, le=1000)
    # Optimistic-concurrency retries on one member before answering 503 retry_later.
    max_conflict_retries: int = Field(default=60, ge=1)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The daily jobs' task queue (jobs.py): the daily schedule sends one task per program, the
    # queue's consumer works it and sends the next. Unset: tasks run one after another in-process
    # (tests, the CLI). The endpoint is set for the local stack (moto server) only.
    job_queue_url: str | None = None
    sqs_endpoint: str | None = None

    @property
    def is_local(self) -> bool:
        return self.stage == LOCAL_STAGE

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        from_env = env_settings()
        secrets = SecretsManagerSource(settings_cls, from_env.get("secret_ids") or {},
                                       int(from_env.get("secrets_cache_seconds") or 300))
        return init_settings, env_settings, secrets, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _no_dev_default_for_unset_secrets(cls, data: Any) -> Any:
        """Outside local, a secret the function was not given is None rather than the dev default."""
        if isinstance(data, dict) and data.get("stage", LOCAL_STAGE) != LOCAL_STAGE:
            data = {**data, **{name: None for name in (*SECRET_FIELDS, *WECHATPAY_SECRET_FIELDS)
                               if data.get(name) is None}}
        return data

    def secret(self, name: str) -> str:
        """A secret's value; fails loudly in a function that was not given it."""
        value = getattr(self, name)
        if value is None:
            raise RuntimeError(f"{name} is not available to this function (LOYALTY_SECRET_IDS)")
        return str(value.get_secret_value())

    @model_validator(mode="after")
    def _refuse_dev_defaults_outside_local(self) -> Settings:
        if self.is_local:
            return self
        in_use = [
            name
            for name in (*SECRET_FIELDS, "wechatpay_apiv3_key")
            if getattr(self, name) is not None
            and DEV_SECRETS & {part.rpartition(":")[2] for part in getattr(self, name).get_secret_value().split(",")}
        ]
        dev_wechatpay = {"wechatpay_mchid": DEV_WECHATPAY_MCHID, "wechatpay_merchant_serial": DEV_WECHATPAY_MERCHANT_SERIAL,
                         "wechatpay_merchant_private_key": DEV_MERCHANT_PRIVATE_KEY,
                         "wechatpay_public_key": DEV_PLATFORM_PUBLIC_KEY,
                         "wechatpay_public_key_id": DEV_WECHATPAY_PUBLIC_KEY_ID}
        in_use += [name for name, dev in dev_wechatpay.items()
                   if getattr(self, name) is not None and getattr(self, name).get_secret_value() == dev]
        if in_use:
            raise ValueError(f"dev default secrets refused outside the local stage: {', '.join(in_use)}")
        if not self.wechat_api_base.startswith("https://"):
            raise ValueError("wechat_api_base must be https outside the local stage")
        if not self.wechatpay_api_base.startswith("https://"):
            raise ValueError("wechatpay_api_base must be https outside the local stage")
        return self


_loaded: tuple[float, Settings] | None = None


def get_settings() -> Settings:
    """Read once per container; with secrets from Secrets Manager, again every secrets_cache_seconds."""
    global _loaded
    now = time.monotonic()
    if _loaded is None or (_loaded[1].secret_ids and now - _loaded[0] >= _loaded[1].secrets_cache_seconds):
        _loaded = (now, Settings())
    return _loaded[1]


def clear_settings() -> None:
    global _loaded
    _loaded = None


@functools.lru_cache(maxsize=1)
def get_table_settings() -> TableSettings:
    return TableSettings()
