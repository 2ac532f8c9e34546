"""How a route is declared, authenticated, parsed and answered, in one place.

    @route(bp, "/v1/orders", ["POST"], auth=TILL, status=201)
    def post_order(ctx):
        body = ctx.body(OrderIn)
        return ledger.accrue_order(ctx.till, body)

Domain errors become the contract's error envelope here; the middleware stamps `X-Request-Id`
on every answer (Chalice's own 404/405/415 included) and writes one access log line.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urlencode

from chalice import Blueprint, Chalice, Response
from pydantic import BaseModel, ValidationError

from chalicelib.auth import staff, till, tokens
from chalicelib.auth.principals import MemberPrincipal, StaffPrincipal, TillPrincipal
from chalicelib.errors import InvalidRequest, LoyaltyError, RetryLater, Unauthorized
from chalicelib.logs import logger
from chalicelib.settings import Settings, get_settings

M = TypeVar("M", bound=BaseModel)

PUBLIC, MEMBER, TILL, STAFF = "public", "member", "till", "staff"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_PAGE_LIMIT_DEFAULT, _PAGE_LIMIT_MAX = 20, 100


def current_request_id() -> str:
    return _request_id.get()


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": current_request_id()}}


def error_response(status: int, code: str, message: str) -> Response:
    return Response(body=error_body(code, message), status_code=status,
                    headers={"Content-Type": "application/json"})


@dataclass
class RequestContext:
    request: Any
    settings: Settings
    principal: MemberPrincipal | TillPrincipal | StaffPrincipal | None

    @property
    def member(self) -> MemberPrincipal:
        assert isinstance(self.principal, MemberPrincipal)
        return self.principal

    @property
    def till(self) -> TillPrincipal:
        assert isinstance(self.principal, TillPrincipal)
        return self.principal

    @property
    def staff(self) -> StaffPrincipal:
        assert isinstance(self.principal, StaffPrincipal)
        return self.principal

    def body(self, model: type[M]) -> M:
        """Parse the JSON body; anything off (bad JSON, unknown or missing fields, wrong types) is
        a 400. JSON mode, so strict models still read dates and times from ISO strings."""
        raw = self.request.raw_body or b"{}"
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidRequest(_describe(exc)) from exc

    def query(self, model: type[M]) -> M:
        params = {k: v for k, v in (self.request.query_params or {}).items()}
        try:
            return model.model_validate(params)
        except ValidationError as exc:
            raise InvalidRequest(_describe(exc)) from exc

    def page_limit(self) -> tuple[int, str | None]:
        params = self.request.query_params or {}
        raw_limit = params.get("limit")
        limit = _PAGE_LIMIT_DEFAULT
        if raw_limit is not None:
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _PAGE_LIMIT_MAX:
                raise InvalidRequest(f"limit must be an integer from 1 to {_PAGE_LIMIT_MAX}")
            limit = int(raw_limit)
        return limit, params.get("cursor")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def path_with_query(request: Any) -> str:
    """The path the caller signed: the route with its parameters filled in, plus the query."""
    path = request.path
    for name, value in (request.uri_params or {}).items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    if request.query_params:
        pairs = [(k, v) for k in request.query_params for v in request.query_params.getlist(k)]
        path += "?" + urlencode(pairs)
    return path


def _bearer(request: Any) -> str:
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("missing bearer credentials")
    return value.strip()


def authenticate(kind: str, request: Any, settings: Settings) -> Any:
    if kind == PUBLIC:
        return None
    if kind == MEMBER:
        return tokens.verify(settings, _bearer(request))
    if kind == STAFF:
        return staff.verify(settings, _bearer(request))
    if kind == TILL:
        return till.verify(settings, request.headers, request.method, path_with_query(request),
                           request.raw_body or b"")
    raise ValueError(f"unknown auth kind {kind}")


def route(bp: Blueprint | Chalice, path: str, methods: list[str], *, auth: str, status: int = 200,
          **chalice_kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handler(**path_params: str) -> Response:
            settings = get_settings()
            request = bp.current_request
            try:
                ctx = RequestContext(request, settings, authenticate(auth, request, settings))
                result = view(ctx, **path_params)
            except LoyaltyError as exc:
                return error_response(exc.status, exc.code, exc.message)
            except Exception as exc:  # noqa: BLE001 - the one place unknown failures are mapped
                if _is_throttle(exc):
                    err = RetryLater()
                    return error_response(err.status, err.code, err.message)
                logger().exception("unhandled error", extra={"path": path})
                return error_response(500, "internal_error", "internal error")
            if isinstance(result, Response):
                return result
            answer_status = status
            if isinstance(result, tuple):
                result, answer_status = result
            return Response(body=result, status_code=answer_status,
                            headers={"Content-Type": "application/json"})

        handler.auth_kind = auth  # type: ignore[attr-defined]  # read by the OpenAPI generator
        bp.route(path, methods=methods, content_types=["application/json", "text/plain"],
                 **chalice_kwargs)(handler)
        return handler

    return decorate


_THROTTLE_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


def _aws_error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "cause_response_code", None)  # PynamoDB wraps botocore errors
    if code:
        return code
    response = getattr(exc, "response", None)  # botocore ClientError
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _is_throttle(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if _aws_error_code(seen) in _THROTTLE_CODES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def register_middleware(app: Chalice) -> None:
    @app.middleware("http")
    def request_envelope(event: Any, get_response: Callable[[Any], Response]) -> Response:
        presented = event.headers.get("x-request-id") or ""
        request_id = presented if _CLIENT_REQUEST_ID.match(presented) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = get_response(event)
            response = _envelope_chalice_errors(response)
            response.headers["X-Request-Id"] = request_id
            logger().info("request", extra={
                "request_id": request_id, "method": event.method, "route": event.path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            })
            return response
        finally:
            _request_id.reset(token)


_CHALICE_CODES = {400: "invalid_request", 403: "forbidden", 404: "not_found",
                  405: "method_not_allowed", 415: "unsupported_media_type"}


def _envelope_chalice_errors(response: Response) -> Response:
    """Chalice answers some errors itself as {"Code", "Message"}; give them the contract's shape."""
    body = response.body
    if isinstance(body, dict) and "Code" in body and "Message" in body and response.status_code >= 400:
        status = response.status_code
        code = _CHALICE_CODES.get(status, "internal_error" if status >= 500 else "invalid_request")
        message = "internal error" if status >= 500 else str(body["Message"])
        return Response(body=error_body(code, message), status_code=status,
                        headers={**response.headers, "Content-Type": "application/json"})
    return response
