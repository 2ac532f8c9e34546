"""Our one door to WeChat, through wechatpy. wechatpy is imported only when a call is made, so
member read paths never pay for it.

WeChat errcodes become domain errors here; the token is shared through the table
(`store/wechat_tokens.py`); a rejected token is refreshed once and the call retried once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from chalicelib.errors import InvalidRequest, RetryLater, Unauthorized, WechatUnavailable
from chalicelib.settings import Settings
from chalicelib.store import wechat_tokens

T = TypeVar("T")

_REAL_BASE = "https://api.weixin.qq.com/"
_TOKEN_REJECTED = {40001, 40014, 42001}
_BAD_CODE = {40029, 40163, 40226}  # invalid, already used, high-risk user
_BAD_APP = {40013, 40125, 41002, 41004}  # invalid appid / secret
_WAIT_FOR_TOKEN_SECONDS = 5.0


@dataclass(frozen=True)
class WechatSession:
    openid: str
    unionid: str | None
    session_key: str


class WechatError(Exception):
    """A WeChat answer with a non-zero errcode that the caller may want to act on."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"wechat errcode {errcode}")
        self.errcode = errcode
        self.errmsg = errmsg


def _make_client(settings: Settings, appid: str, secret: str, locked_refresh: Callable[[Callable[[], Any]], Any]) -> Any:
    from wechatpy import WeChatClient  # lazy: ~40 ms of imports

    base = settings.wechat_api_base.rstrip("/") + "/"

    class _Client(WeChatClient):
        API_BASE_URL = base + "cgi-bin/"

        def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
            if url_or_endpoint.startswith(_REAL_BASE):
                url_or_endpoint = base + url_or_endpoint[len(_REAL_BASE):]
            if str(kwargs.get("api_base_url", "")).startswith(_REAL_BASE):
                kwargs["api_base_url"] = base + kwargs["api_base_url"][len(_REAL_BASE):]
            if url_or_endpoint == "sns/jscode2session":
                # jscode2session takes no access token; a list (not a dict) stops wechatpy adding one.
                kwargs["params"] = list(kwargs["params"].items())
            return super()._request(method, url_or_endpoint, **kwargs)

        def fetch_access_token(self) -> Any:
            # wechatpy calls this itself when the session has no token: take the table lock too.
            return locked_refresh(self.fetch_access_token_unlocked)

        def fetch_access_token_unlocked(self) -> Any:
            return self._fetch_access_token(
                url=base + "cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    return _Client(appid, secret, session=_TableSession(appid), timeout=settings.wechat_timeout_seconds,
                   auto_retry=False)


class _TableSession:
    """wechatpy session storage backed by the shared token item."""

    def __init__(self, appid: str) -> None:
        self._appid = appid

    def get(self, key: str, default: Any = None) -> Any:
        return wechat_tokens.read(self._appid) or default

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        wechat_tokens.write(self._appid, value, ttl or 7200)

    def delete(self, key: str) -> None:
        return None


class WechatGateway:
    def __init__(self, settings: Settings, appid: str, secret: str) -> None:
        self._settings = settings
        self._appid = appid
        self._client = _make_client(settings, appid, secret, lambda fetch: self.access_token(fetch))

    def code_to_session(self, code: str) -> WechatSession:
        result = self._call(lambda: self._client.wxa.code_to_session(code), needs_token=False)
        return WechatSession(result["openid"], result.get("unionid"), result["session_key"])

    def phone_number(self, phone_code: str) -> str:
        result = self._call(lambda: self._client.post(
            "wxa/business/getuserphonenumber", data={"code": phone_code}, api_base_url=self._base()))
        return str(result["phone_info"]["purePhoneNumber"])

    def send_subscribe_message(self, openid: str, template_id: str, data: dict[str, Any],
                               page: str | None = None) -> None:
        self._call(lambda: self._client.wxa.send_subscribe_message(openid, template_id, data, page))

    def _base(self) -> str:
        return self._settings.wechat_api_base.rstrip("/") + "/"

    def access_token(self, fetch: Callable[[], Any] | None = None) -> str:
        """The shared token; one caller refreshes it while the others wait for that refresh."""
        fetch = fetch or self._client.fetch_access_token_unlocked
        deadline = time.monotonic() + _WAIT_FOR_TOKEN_SECONDS
        while True:
            token = wechat_tokens.read(self._appid)
            if token:
                return token
            holder = wechat_tokens.try_lock(self._appid)
            if holder:
                try:
                    token = wechat_tokens.read(self._appid)  # somebody may have just refreshed it
                    if token:
                        return token
                    self._raw(fetch)
                    return wechat_tokens.read(self._appid) or ""
                finally:
                    wechat_tokens.unlock(self._appid, holder)
            if time.monotonic() > deadline:
                raise RetryLater("waiting for the WeChat access token")
            time.sleep(0.05)

    def _call(self, call: Callable[[], T], needs_token: bool = True) -> T:
        if not needs_token:
            return self._raw(call)
        token = self.access_token()
        try:
            return self._raw(call)
        except WechatError as exc:
            if exc.errcode not in _TOKEN_REJECTED:
                raise
            wechat_tokens.discard(self._appid, token)
            self.access_token()
            return self._raw(call)

    def _raw(self, call: Callable[[], T]) -> T:
        from wechatpy.exceptions import WeChatClientException
        from requests import RequestException

        try:
            return call()
        except WeChatClientException as exc:
            errcode = exc.errcode
            if errcode is None:
                raise WechatUnavailable("WeChat did not answer properly") from None
            if errcode in _BAD_CODE:
                raise Unauthorized("the WeChat code is invalid or was already used", code="invalid_code") from None
            if errcode in _BAD_APP:
                raise InvalidRequest("this program's WeChat app credentials are not accepted",
                                     code="wechat_app_rejected") from None
            raise WechatError(int(errcode), str(exc.errmsg)) from None
        except RequestException:
            raise WechatUnavailable("WeChat could not be reached") from None


def for_program(settings: Settings, program_id: str) -> WechatGateway:
    """The gateway for one program's mini-program (its appid and WeChat secret)."""
    from chalicelib.errors import NotFound
    from chalicelib.store import programs

    program = programs.get_program(settings, program_id)
    if program is None:
        raise NotFound("unknown program")
    return WechatGateway(settings, program.config.appid, program.wechat_secret)
