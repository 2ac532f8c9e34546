"""How a route is declared, authenticated, parsed and answered, in one place.

    @route(bp, "/v1/orders", ["POST"], auth=TILL, status=201, body="chalicelib.services.ledger:OrderIn",
           response="chalicelib.api.schemas:OrderAccrued", summary="Report a paid order", errors=(404, 409))
    def post_order(ctx):
        from chalicelib.services import ledger

        return ledger.accrue_order(ctx.settings, ctx.till, ctx.body())

`auth` is an authenticator object (`chalicelib/auth/schemes.py`): PUBLIC, MEMBER, TILL, or
STAFF.require("<permission>"). It authenticates before the view and finishes after it (the
till's nonce), so a new scheme needs no change here.

Models are named lazily, as `"package.module:Class"` strings (`ModelRef`; a class works too),
and a view imports its services inside itself: an api module imports only `chalice` and this
module at the top, so `import app` (every cold start) registers every route without loading any
feature's services, rules or models. A route's models are imported the first time it parses a
body or query, or when `openapi.py` builds the document (`Operation.body`, `.response`, `.query`,
each resolved once and cached); a feature's code, on the first request that calls into it.
`tests/unit/test_cold_start.py` checks what `import app` loads, and that every string names a
pydantic model.

What a route declares (its body, query and response models, statuses, summary) is both what this
module enforces and what `openapi.py` publishes, so the document cannot drift from the code.
Domain errors become the contract's error envelope here; the middleware stamps `X-Request-Id`
on every answer (Chalice's own 404/405/415 included) and writes one access log line.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar, Union

from chalice import Blueprint, Chalice, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from chalicelib.auth.principals import MemberPrincipal, StaffPrincipal, TillPrincipal
from chalicelib.auth.schemes import MEMBER, PUBLIC, STAFF, TILL, WECHATPAY, Authenticator, Outcome
from chalicelib.errors import InvalidRequest, LoyaltyError, RetryLater
from chalicelib.logs import logger
from chalicelib.settings import Settings, get_settings

T = TypeVar("T", bound=BaseModel)

__all__ = ["MEMBER", "PUBLIC", "STAFF", "TILL", "WECHATPAY", "Page", "PageQuery", "route", "operations_of",
           "error_response", "seal_cursor", "ModelRef", "resolve_model"]
JSON = "application/json"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX = 20, 100
# The largest real body (an order of 200 lines with long names) is about 100 KB. The program's
# rules are stored as one item, where JSON escapes can double them: 128 KB keeps that item under
# DynamoDB's 400 KB, so an oversized body is a 413 here instead of a failed write.
MAX_BODY_BYTES = 128 * 1024


class BodyTooLarge(LoyaltyError):
    status, code = 413, "body_too_large"


def current_request_id() -> str:
    return _request_id.get()


def error_body(code: str, message: str, fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "request_id": current_request_id()}
    if fields:
        error["fields"] = fields
    return {"error": error}


def error_response(status: int, code: str, message: str, auth: Authenticator | None = None,
                   fields: list[dict[str, Any]] | None = None) -> Response:
    """The contract's error envelope, or the body the caller's scheme answers errors in (WeChat Pay).
    `fields`: where a body failed validation, one `{"loc", "message"}` per field (the console
    shows each on its field)."""
    from chalicelib import metrics

    metrics.emit("Refusals", code=code)
    body = (auth.error_body(code, message) if auth is not None else None) or error_body(code, message, fields)
    return Response(body=body, status_code=status, headers={"Content-Type": JSON})


# --- path parameters -----------------------------------------------------------------------

@dataclass(frozen=True)
class PathParameter:
    """One kind of path parameter: checked before the view runs, published in the document."""

    pattern: str
    description: str
    # Values the document lists (e.g. job names); computed when the document is built.
    choices: Callable[[], list[str]] | None = None

    def check(self, name: str, value: str) -> None:
        # Anything else could never name a resource, and an overlong or odd value must not reach
        # a DynamoDB key (2 KB partition / 1 KB sort key limits): 400, not a failed write.
        if not re.fullmatch(self.pattern, value):
            raise InvalidRequest(f"{name}: {self.description.rstrip('.')}")


def _job_names() -> list[str]:
    from chalicelib import wiring  # loads every job's module: only when the document is built

    return sorted(wiring.daily_jobs())


# Ids callers choose (order, hold, request ids) are 1-64 of these characters; a redemption id
# adds "rd-" to one, so 128 leaves room without letting a path build an oversized key.
_ID, _ID_TEXT = r"[A-Za-z0-9._:-]{1,128}", "1 to 128 of A-Z a-z 0-9 . _ : -"
PATH_PARAMETERS: dict[str, PathParameter] = {
    "member_id": PathParameter(_ID, f"A member id: {_ID_TEXT}"),
    "order_id": PathParameter(_ID, f"The till's order id: {_ID_TEXT}"),
    "hold_id": PathParameter(_ID, f"The till's hold id: {_ID_TEXT}"),
    "redemption_id": PathParameter(_ID, f"A redemption id (`rd-` + the request_id): {_ID_TEXT}"),
    "reward_id": PathParameter(_ID, f"A reward id: {_ID_TEXT}"),
    "template_id": PathParameter(_ID, f"A coupon template id: {_ID_TEXT}"),
    "payment_id": PathParameter(_ID, f"The till's stored-value payment id: {_ID_TEXT}"),
    "top_up_id": PathParameter(_ID, f"A top-up id (its WeChat Pay out_trade_no): {_ID_TEXT}"),
    "entry_id": PathParameter(_ID, f"The `id` of a history row of type `pending`: {_ID_TEXT}"),
    "flag_id": PathParameter(_ID, f"A flag id: {_ID_TEXT}"),
    "webhook_id": PathParameter(r"[A-Za-z0-9._:-]{1,64}", "A webhook id: 1 to 64 of A-Z a-z 0-9 . _ : -"),
    "event_id": PathParameter(r"evt_[0-9a-f]{32}", "An event id: evt_ and 32 hex digits"),
    "lottery_id": PathParameter(_ID, f"A lottery id: {_ID_TEXT}"),
    "job": PathParameter(r"[a-z0-9-]{1,64}", "A job name: 1 to 64 of a-z 0-9 -", choices=_job_names),
    "username": PathParameter(r"[A-Za-z0-9._-]{1,64}", "A staff username: 1 to 64 of A-Z a-z 0-9 . _ -"),
    # insight (issue 15)
    "tag": PathParameter(r"[\w.:-]{1,32}", "A tag: 1 to 32 letters (any script), digits, . _ : -"),
    "segment_id": PathParameter(r"[A-Za-z0-9._:-]{1,48}", "A segment id: 1 to 48 of A-Z a-z 0-9 . _ : -"),
    "campaign_id": PathParameter(r"[A-Za-z0-9._:-]{1,48}", "A campaign id: 1 to 48 of A-Z a-z 0-9 . _ : -"),
    # issue 16, second pass: a job run's day
    "as_of": PathParameter(r"\d{4}-\d{2}-\d{2}", "A day: YYYY-MM-DD"),
}


def path_parameter_names(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


# --- paged lists ---------------------------------------------------------------------------

class PageQuery(BaseModel):
    """`?limit=&cursor=` of every paged list. The cursor is sealed on the way out (see
    `seal_cursor`), so one that was not issued by this service is a 400, never a bad query."""

    model_config = ConfigDict(extra="ignore", defer_build=True)  # built on the first paged request
    limit: int = Field(default=PAGE_LIMIT_DEFAULT, ge=1, le=PAGE_LIMIT_MAX,
                       description=f"Items per page, 1 to {PAGE_LIMIT_MAX}.")
    cursor: str | None = Field(default=None, max_length=2048,
                               description="`next_cursor` of the previous page, as given; absent or empty for the "
                                           "first page.")

    @field_validator("limit", mode="before")
    @classmethod
    def _ascii_digits(cls, value: Any) -> Any:
        # Query values are text; "1e2", " 5" or "５" are not the integer the document promises.
        if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,9}", value):
            raise ValueError("must be an integer")
        return value

    @field_validator("cursor")
    @classmethod
    def _unseal(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:  # clients that always send `?cursor=` ask for the first page with an empty one
            return None
        return unseal_cursor((info.context or {})["settings"], value)


class Page(BaseModel, Generic[T]):
    """The answer of every paged list (../shared/API.md)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # only the OpenAPI document builds it
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `?cursor=` for the next page; null on the last.")


def _cursor_mac(settings: Settings, cursor: str) -> str:
    key = settings.secret("token_secret").encode()
    return hmac.new(key, b"page-cursor\n" + cursor.encode(), hashlib.sha256).hexdigest()[:32]


def seal_cursor(settings: Settings, cursor: str | None) -> str | None:
    """The services' cursor plus a MAC: callers may only hand back cursors we issued."""
    return None if cursor is None else f"{cursor}.{_cursor_mac(settings, cursor)}"


def unseal_cursor(settings: Settings, sealed: str) -> str:
    cursor, _, mac = sealed.rpartition(".")
    if not cursor or not hmac.compare_digest(mac.encode(), _cursor_mac(settings, cursor).encode()):
        raise ValueError("not a cursor this service issued")
    return cursor


# --- lazy model references ----------------------------------------------------------------

# A pydantic model, or where to find it: "package.module:Class" (imported on first use).
ModelRef = Union[type[BaseModel], str]


@functools.cache
def _import_model(ref: str) -> type[BaseModel]:
    module, colon, name = ref.partition(":")
    if not colon or not module or not name:
        raise ValueError(f"{ref!r}: a model reference is 'package.module:Class'")
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{ref!r} is not a pydantic model")
    return model


def resolve_model(ref: ModelRef) -> type[BaseModel]:
    """The model a `ModelRef` names (the string form imported once, then cached)."""
    return _import_model(ref) if isinstance(ref, str) else ref


def _resolve_optional(ref: ModelRef | None) -> type[BaseModel] | None:
    return None if ref is None else resolve_model(ref)


# --- the declaration -----------------------------------------------------------------------

@dataclass(frozen=True)
class Operation:
    """Everything a route declares about itself; `openapi.py` publishes exactly this."""

    method: str
    path: str
    name: str
    auth: Authenticator
    summary: str
    status: int
    # The models as declared (a class or a "module:Class" string); `response`, `body` and `query`
    # below are the classes, imported on first use.
    response_ref: ModelRef | None
    body_ref: ModelRef | None = None
    query_ref: ModelRef | None = None
    # A paged list's item (the answer is `Page[item]`; the query `PageQuery` or, if `query_ref`
    # names one, a subclass of it).
    page_of: ModelRef | None = None
    # Other success statuses answered with the same model (enrolment: 201 new, 200 existing).
    also: tuple[int, ...] = ()
    # Error statuses (always in the envelope) besides those implied: 400 for a route with input,
    # 413 for one with a body, 401 for one with credentials, 503 for one that reads the table.
    errors: tuple[int, ...] = ()
    media_type: str = JSON
    # False only for routes that never read the table (health, the documentation).
    uses_store: bool = True
    description: str = ""
    path_parameters: tuple[str, ...] = ()

    @property
    def paged(self) -> bool:
        return self.page_of is not None

    @functools.cached_property
    def response(self) -> type[BaseModel] | None:
        if self.page_of is not None:
            return Page[resolve_model(self.page_of)]  # type: ignore[misc,return-value]
        return _resolve_optional(self.response_ref)

    @functools.cached_property
    def body(self) -> type[BaseModel] | None:
        return _resolve_optional(self.body_ref)

    @functools.cached_property
    def query(self) -> type[BaseModel] | None:
        if self.page_of is not None and self.query_ref is None:
            return PageQuery
        return _resolve_optional(self.query_ref)

    @property
    def error_statuses(self) -> list[int]:
        implied = set(self.errors)
        if self.body_ref is not None or self.query_ref is not None or self.paged or self.path_parameters:
            implied.add(400)
        if self.body_ref is not None:
            implied.add(413)
        if self.auth.kind != PUBLIC.kind:
            implied.add(401)
        if self.auth.permission is not None:
            implied.add(403)
        if self.uses_store:
            implied.add(503)
        return sorted(implied)


@dataclass
class RequestContext:
    request: Any
    settings: Settings
    principal: MemberPrincipal | TillPrincipal | StaffPrincipal | None
    operation: Operation
    app: Chalice

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

    def body(self) -> Any:
        """The JSON body as the route's declared model; anything off (bad JSON, unknown or missing
        fields, wrong types: "100" is not 100, 1.0 is not 1) is a 400. Strict JSON mode still
        reads dates and times from ISO strings."""
        model = self.operation.body
        if model is None:
            raise TypeError(f"{self.operation.name} declares no body model")
        raw = self.request.raw_body or b"{}"
        if len(raw) > MAX_BODY_BYTES:
            raise BodyTooLarge(f"the body is larger than {MAX_BODY_BYTES // 1024} KB")
        try:
            return model.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise InvalidRequest(_describe(exc), fields=_fields(exc)) from exc

    def query(self) -> Any:
        """The query string as the route's declared model (a paged list: `PageQuery`)."""
        model = self.operation.query
        if model is None:
            raise TypeError(f"{self.operation.name} declares no query model")
        params = dict(self.request.query_params or {})
        try:
            return model.model_validate(params, context={"settings": self.settings})
        except ValidationError as exc:
            raise InvalidRequest(_describe(exc)) from exc


def _fields(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": [p if isinstance(p, (str, int)) else str(p) for p in err["loc"]], "message": err["msg"]}
            for err in exc.errors()[:20]]


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def route(bp: Blueprint | Chalice, path: str, methods: list[str], *, auth: Authenticator, summary: str,
          response: ModelRef | None = None, page_of: ModelRef | None = None,
          status: int = 200, body: ModelRef | None = None, query: ModelRef | None = None,
          also: tuple[int, ...] = (), errors: tuple[int, ...] = (), media_type: str = JSON,
          uses_store: bool = True, description: str = "", headers: dict[str, str] | None = None,
          **chalice_kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a route. `response` is the model of a success answer; `page_of=Item` declares a
    paged list instead (query `PageQuery` or a subclass of it given as `query`, answer
    `Page[Item]`, cursors sealed). Models are
    classes or, so that `import app` builds none of them, `"module:Class"` strings. `media_type`
    other than JSON means the view returns the body as text; `headers` are added to its success
    answers (e.g. the docs page's Content-Security-Policy)."""
    if page_of is not None and response is not None:
        raise TypeError("page_of declares the response")
    if response is None and page_of is None and media_type == JSON:
        raise TypeError(f"{path}: a JSON route declares its response model")
    names = path_parameter_names(path)
    undeclared = [name for name in names if name not in PATH_PARAMETERS]
    if undeclared:
        raise TypeError(f"{path}: path parameters {undeclared} are not in PATH_PARAMETERS")

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        operations = {
            method: Operation(method=method, path=path, name=view.__name__, auth=auth, summary=summary,
                              status=status, response_ref=response, body_ref=body, query_ref=query,
                              page_of=page_of, also=also,
                              errors=errors, media_type=media_type, uses_store=uses_store,
                              description=description or (view.__doc__ or "").strip(),
                              path_parameters=tuple(names))
            for method in methods
        }

        @functools.wraps(view)
        def handler(**path_params: str) -> Response:
            settings = get_settings()
            request = bp.current_request
            assert request is not None  # Chalice sets it before calling a view
            operation = operations[request.method]
            try:
                principal = auth.authenticate(request, settings)
                try:
                    ctx = RequestContext(request, settings, principal, operation, _app_of(bp))
                    for name, value in path_params.items():
                        PATH_PARAMETERS[name].check(name, value)
                    result = view(ctx, **path_params)
                except LoyaltyError as refusal:
                    # A refusal is an answer too (and may become a 401).
                    auth.finish(principal, settings, Outcome(refusal.status, current_request_id(),
                                                             error_code=refusal.code))
                    raise
                # An unexpected failure is not finished: whether its write landed is unknown, and
                # the caller's retry must see the 5xx, not a 401 for a nonce its own write spent.
                done = result if isinstance(result, tuple) else (result, status)
                auth.finish(principal, settings, Outcome(done[1], current_request_id(), body=done[0]))
            except LoyaltyError as exc:
                return error_response(exc.status, exc.code, exc.message, auth, fields=exc.fields)
            except Exception as exc:  # noqa: BLE001 - the one place unknown failures are mapped
                from chalicelib.store.tx import TransactionConflict  # lazy: only on a failure

                # A transaction DynamoDB cancelled for contention wrote nothing: the caller retries.
                if _is_throttle(exc) or isinstance(exc, TransactionConflict):
                    err = RetryLater()
                    return error_response(err.status, err.code, err.message, auth)
                logger().exception("unhandled error", extra={"path": path})
                return error_response(500, "internal_error", "internal error", auth)
            answer_status = status
            if isinstance(result, tuple):
                result, answer_status = result
            if operation.paged:
                result = {**result, "next_cursor": seal_cursor(settings, result["next_cursor"])}
            return Response(body=result, status_code=answer_status,
                            headers={"Content-Type": media_type, **(headers or {})})

        handler.auth = auth  # type: ignore[attr-defined]  # read by the auth matrix test
        handler.operations = operations  # type: ignore[attr-defined]  # read by openapi.py
        bp.route(path, methods=methods, content_types=["application/json", "text/plain"],
                 **chalice_kwargs)(handler)
        return handler

    return decorate


def _app_of(bp: Blueprint | Chalice) -> Chalice:
    return bp if isinstance(bp, Chalice) else bp.current_app


def operations_of(app: Chalice) -> list[Operation]:
    """Every operation the app serves, in path and method order; a route not declared with
    `route()` is a programming error here (and in the OpenAPI test)."""
    found = []
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            declared = getattr(entry.view_function, "operations", None)
            if declared is None or method not in declared:
                raise LookupError(f"{method} {path} was not declared with route()")
            found.append(declared[method])
    return found


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
