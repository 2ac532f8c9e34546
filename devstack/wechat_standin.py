"""A WeChat API stand-in for the local stack and the tests.

It answers, on loopback, the WeChat calls the service makes, on the real paths and with the real
JSON shapes and errcodes, so the service's WeChat client only has its base URL rewritten:

  GET  /cgi-bin/token                      access token (grant_type=client_credential)
  POST /cgi-bin/stable_token               stable access token (same token unless force_refresh)
  GET  /sns/jscode2session                 wx.login code -> openid, session_key, unionid
  POST /wxa/business/getuserphonenumber    getPhoneNumber code -> phone number
  POST /cgi-bin/message/subscribe/send     subscribe message (recorded, see /_sent)

Dev rules: the login code ``dev-<openid>`` gives that openid, the phone code
``phone-<11 digits>`` gives that number; anything else is errcode 40029 like the real API.

Inspection and control for tests (not WeChat paths, hence the leading underscore):

  GET    /_sent            recorded subscribe messages, oldest first
  DELETE /_sent            forget them
  GET    /_stats           counters ({"token_issued": n, ...})
  POST   /_expire_tokens   every issued token becomes invalid (errcode 40001 on next use)
  POST   /_refuse          {"openid": ...}: sends to that user answer 43101
  DELETE /_refuse          forget every refusal
  POST   /_apps            {"appid": ..., "secret": ...}: register another app

WeChat Pay v3 (orders, queries, refunds, signed notifications; `/_pay/...` controls) answers on
the same port: see devstack/wechatpay_standin.py.

Secrets, tokens, session keys and phone numbers are never logged: request lines are logged
without their query string and bodies are never logged.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack import wechatpay_standin
from devstack.background_server import BackgroundServer

logger = logging.getLogger("devstack.wechat")

DEMO_APPS: Mapping[str, str] = {"wxdemo0000000000": "dev-wechat-secret"}

TOKEN_TTL_SECONDS = 7200
MAX_BODY_BYTES = 1 << 20

_LOGIN_CODE = re.compile(r"dev-([A-Za-z0-9_-]{1,64})")
_PHONE_CODE = re.compile(r"phone-(\d{11})")

JsonDict = dict[str, Any]


def _error(errcode: int, errmsg: str) -> JsonDict:
    return {"errcode": errcode, "errmsg": errmsg}


# The real API's answers, word for word where clients match on them.
INVALID_APPID = _error(40013, "invalid appid")
INVALID_SECRET = _error(40125, "invalid appsecret")
INVALID_GRANT_TYPE = _error(40002, "invalid grant_type")
INVALID_CODE = _error(40029, "invalid code")
INVALID_TOKEN = _error(40001, "invalid credential, access_token is invalid or not latest")
MISSING_TOKEN = _error(41001, "access_token missing")
DATA_FORMAT_ERROR = _error(47001, "data format error")
ARGUMENT_INVALID = _error(47003, "argument invalid!")
USER_REFUSED = _error(43101, "user refuse to accept the msg")
OK = _error(0, "ok")


@dataclass
class _IssuedToken:
    appid: str
    expires_at: float


class WechatState:
    """Everything the stand-in remembers; every method is safe to call from any thread."""

    def __init__(
        self,
        apps: Mapping[str, str] | None = None,
        *,
        token_ttl_seconds: int = TOKEN_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._apps: dict[str, str] = dict(DEMO_APPS if apps is None else apps)
        self._token_ttl = token_ttl_seconds
        self._clock = clock
        self._tokens: dict[str, _IssuedToken] = {}
        self._stable_token: dict[str, str] = {}  # appid -> its current stable token
        self._sent: list[JsonDict] = []
        self._refused: set[str] = set()
        self.session_keys: list[str] = []  # every session_key handed out
        self._stats: dict[str, int] = {
            "token_issued": 0,  # every successful token answer, from either token endpoint
            "token_minted": 0,  # distinct tokens created (a stable token re-served is not new)
            "token_rejected": 0,  # calls refused with 40001 (unknown or expired token)
            "jscode2session": 0,
            "phone_number": 0,
            "subscribe_sent": 0,
            "subscribe_refused": 0,
        }

    def issued_access_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    # --- registry -------------------------------------------------------------------------

    def add_app(self, appid: str, secret: str) -> None:
        with self._lock:
            self._apps[appid] = secret

    def _check_app(self, appid: str, secret: str) -> JsonDict | None:
        if appid not in self._apps:
            return INVALID_APPID
        if not secrets.compare_digest(self._apps[appid], secret):
            return INVALID_SECRET
        return None

    # --- tokens ---------------------------------------------------------------------------

    def _mint(self, appid: str) -> str:
        token = secrets.token_urlsafe(48)
        self._tokens[token] = _IssuedToken(appid, self._clock() + self._token_ttl)
        self._stats["token_minted"] += 1
        return token

    def _token_answer(self, token: str) -> JsonDict:
        self._stats["token_issued"] += 1
        remaining = round(self._tokens[token].expires_at - self._clock())
        return {"access_token": token, "expires_in": max(remaining, 0)}

    def _valid_token(self, token: str) -> _IssuedToken | None:
        issued = self._tokens.get(token)
        if issued is None or issued.expires_at <= self._clock():
            return None
        return issued

    def issue_token(self, grant_type: str, appid: str, secret: str) -> JsonDict:
        """``/cgi-bin/token``: a new token on every call; earlier ones stay valid until they expire."""
        with self._lock:
            if grant_type != "client_credential":
                return INVALID_GRANT_TYPE
            refused = self._check_app(appid, secret)
            if refused:
                return refused
            return self._token_answer(self._mint(appid))

    def issue_stable_token(self, grant_type: str, appid: str, secret: str, force_refresh: bool) -> JsonDict:
        """``/cgi-bin/stable_token``: the app's current token while it is valid, unless forced."""
        with self._lock:
            if grant_type != "client_credential":
                return INVALID_GRANT_TYPE
            refused = self._check_app(appid, secret)
            if refused:
                return refused
            current = self._stable_token.get(appid)
            if force_refresh or current is None or self._valid_token(current) is None:
                current = self._mint(appid)
                self._stable_token[appid] = current
            return self._token_answer(current)

    def _authorize(self, access_token: str | None) -> tuple[str | None, JsonDict | None]:
        """The appid behind a token, or the error the real API gives. Call with the lock held."""
        if not access_token:
            return None, MISSING_TOKEN
        issued = self._valid_token(access_token)
        if issued is None:
            self._stats["token_rejected"] += 1
            return None, INVALID_TOKEN
        return issued.appid, None

    def expire_tokens(self) -> int:
        """Invalidate every token issued so far (to exercise a client's refresh); returns how many."""
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
            self._stable_token.clear()
            return count

    # --- mini-program login and phone -----------------------------------------------------

    def code_to_session(self, appid: str, secret: str, js_code: str, grant_type: str) -> JsonDict:
        with self._lock:
            refused = self._check_app(appid, secret)
            if refused:
                return refused
            if grant_type != "authorization_code":
                return INVALID_GRANT_TYPE
            match = _LOGIN_CODE.fullmatch(js_code)
            if not match:
                return INVALID_CODE
            self._stats["jscode2session"] += 1
            openid = match.group(1)
            session_key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
            self.session_keys.append(session_key)  # tests look for them where they must never be
            return {"openid": openid, "session_key": session_key, "unionid": f"u-{openid}"}

    def phone_number(self, access_token: str | None, body: JsonDict) -> JsonDict:
        with self._lock:
            appid, refused = self._authorize(access_token)
            if refused:
                return refused
            code = body.get("code")
            match = _PHONE_CODE.fullmatch(code) if isinstance(code, str) else None
            if not match:
                return INVALID_CODE
            self._stats["phone_number"] += 1
            digits = match.group(1)
            return {
                **OK,
                "phone_info": {
                    "phoneNumber": digits,
                    "purePhoneNumber": digits,
                    "countryCode": "86",
                    "watermark": {"timestamp": int(self._clock()), "appid": appid},
                },
            }

    # --- subscribe messages ---------------------------------------------------------------

    def send_subscribe_message(self, access_token: str | None, body: JsonDict) -> JsonDict:
        with self._lock:
            _appid, refused = self._authorize(access_token)
            if refused:
                return refused
            touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
            page = body.get("page")
            if not (isinstance(touser, str) and touser and isinstance(template_id, str) and template_id):
                return ARGUMENT_INVALID
            if not isinstance(data, dict) or not (page is None or isinstance(page, str)):
                return ARGUMENT_INVALID
            if touser in self._refused:
                self._stats["subscribe_refused"] += 1
                return USER_REFUSED
            self._stats["subscribe_sent"] += 1
            self._sent.append({"touser": touser, "template_id": template_id, "data": data, "page": page})
            return OK

    def refuse(self, openid: str) -> None:
        with self._lock:
            self._refused.add(openid)

    def clear_refusals(self) -> None:
        with self._lock:
            self._refused.clear()

    def sent_messages(self) -> list[JsonDict]:
        with self._lock:
            return json.loads(json.dumps(self._sent))  # a deep copy callers may keep

    def clear_sent(self) -> None:
        with self._lock:
            self._sent.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)


class _Handler(BaseHTTPRequestHandler):
    server: _StandinServer
    server_version = "devstack-wechat"

    # --- plumbing -------------------------------------------------------------------------

    def _query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _json_body(self) -> JsonDict | None:
        """The body as a JSON object, or None. wechatpy posts JSON without a Content-Type."""
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY_BYTES:
            return None
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def _answer(self, payload: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        # The stdlib logs the raw request line, query string (tokens, secrets) included.
        return

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s -> %s", self.command, urlsplit(self.path).path, code)

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        route = self.server.routes.get((self.command, path))
        if route is None and path.startswith(("/v3/", "/_pay/")):  # WeChat Pay v3 and its controls
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if 0 < length <= MAX_BODY_BYTES else b""
            try:
                if wechatpay_standin.handle(self, self.server.pay, path, raw):
                    return
            except Exception:
                logger.exception("WeChat Pay stand-in failed on %s %s", self.command, path)
                self._answer({"code": "SYSTEM_ERROR", "message": "系统错误"}, HTTPStatus.INTERNAL_SERVER_ERROR)
                return
        if route is None:
            self._answer(_error(-1, f"the WeChat stand-in has no {self.command} {urlsplit(self.path).path}"),
                         HTTPStatus.NOT_FOUND)
            return
        try:
            route(self)
        except Exception:  # a stand-in bug must show up as a 500, not kill the server thread
            logger.exception("WeChat stand-in failed on %s %s", self.command, urlsplit(self.path).path)
            self._answer(_error(-1, "system error"), HTTPStatus.INTERNAL_SERVER_ERROR)

    do_GET = do_POST = do_DELETE = _dispatch

    # --- WeChat paths ---------------------------------------------------------------------

    def token(self) -> None:
        q = self._query()
        self._answer(self.server.state.issue_token(q.get("grant_type", ""), q.get("appid", ""), q.get("secret", "")))

    def stable_token(self) -> None:
        body = self._json_body()
        if body is None:
            self._answer(DATA_FORMAT_ERROR)
            return
        self._answer(
            self.server.state.issue_stable_token(
                str(body.get("grant_type", "")),
                str(body.get("appid", "")),
                str(body.get("secret", "")),
                bool(body.get("force_refresh", False)),
            )
        )

    def jscode2session(self) -> None:
        # wechatpy adds an access_token parameter to this call too; the real API ignores it.
        q = self._query()
        self._answer(
            self.server.state.code_to_session(
                q.get("appid", ""), q.get("secret", ""), q.get("js_code", ""), q.get("grant_type", "")
            )
        )

    def phone_number(self) -> None:
        body = self._json_body()
        state = self.server.state
        self._answer(DATA_FORMAT_ERROR if body is None else state.phone_number(self._query().get("access_token"), body))

    def subscribe_send(self) -> None:
        body = self._json_body()
        state = self.server.state
        self._answer(
            DATA_FORMAT_ERROR if body is None else state.send_subscribe_message(self._query().get("access_token"), body)
        )

    # --- inspection and control -----------------------------------------------------------

    def get_sent(self) -> None:
        self._answer(self.server.state.sent_messages())

    def delete_sent(self) -> None:
        self.server.state.clear_sent()
        self._answer(OK)

    def get_stats(self) -> None:
        self._answer(self.server.state.stats())

    def expire_tokens(self) -> None:
        self._answer({**OK, "expired": self.server.state.expire_tokens()})

    def refuse(self) -> None:
        body = self._json_body() or {}
        openid = body.get("openid")
        if not isinstance(openid, str) or not openid:
            self._answer(ARGUMENT_INVALID, HTTPStatus.BAD_REQUEST)
            return
        self.server.state.refuse(openid)
        self._answer(OK)

    def clear_refusals(self) -> None:
        self.server.state.clear_refusals()
        self._answer(OK)

    def add_app(self) -> None:
        body = self._json_body() or {}
        appid, secret = body.get("appid"), body.get("secret")
        if not (isinstance(appid, str) and appid and isinstance(secret, str) and secret):
            self._answer(ARGUMENT_INVALID, HTTPStatus.BAD_REQUEST)
            return
        self.server.state.add_app(appid, secret)
        self._answer(OK)


_ROUTES: dict[tuple[str, str], Callable[[_Handler], None]] = {
    ("GET", "/cgi-bin/token"): _Handler.token,
    ("POST", "/cgi-bin/stable_token"): _Handler.stable_token,
    ("GET", "/sns/jscode2session"): _Handler.jscode2session,
    ("POST", "/wxa/business/getuserphonenumber"): _Handler.phone_number,
    ("POST", "/cgi-bin/message/subscribe/send"): _Handler.subscribe_send,
    ("GET", "/_sent"): _Handler.get_sent,
    ("DELETE", "/_sent"): _Handler.delete_sent,
    ("GET", "/_stats"): _Handler.get_stats,
    ("POST", "/_expire_tokens"): _Handler.expire_tokens,
    ("POST", "/_refuse"): _Handler.refuse,
    ("DELETE", "/_refuse"): _Handler.clear_refusals,
    ("POST", "/_apps"): _Handler.add_app,
}


class _StandinServer(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client connection must never keep the process alive
    # socketserver's default backlog (5) resets clients when many senders connect at once.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: WechatState, pay: wechatpay_standin.WechatPayState) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.pay = pay
        self.routes = _ROUTES


class WechatStandin(BackgroundServer):
    """The stand-in server, run on a daemon thread: ``start()``, ``url``, ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8001, apps: Mapping[str, str] | None = None) -> None:
        self.state = WechatState(apps)
        # WeChat Pay v3 on the same port (devstack/wechatpay_standin.py).
        self.pay = wechatpay_standin.WechatPayState()
        super().__init__(host, _StandinServer((host, port), self.state, self.pay), "wechat-standin")
