"""Domain errors. Each carries the contract's HTTP status and snake_case code; `api/http.py` is the
one place that turns them into the error envelope."""

from __future__ import annotations

from typing import Any


class LoyaltyError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None,
                 fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # A body that failed validation: where (`loc`, the field's path) and why, field by field.
        self.fields = fields
        if code:
            self.code = code


class InvalidRequest(LoyaltyError):
    status, code = 400, "invalid_request"


class Unauthorized(LoyaltyError):
    status, code = 401, "unauthorized"


class Forbidden(LoyaltyError):
    status, code = 403, "forbidden"


class NotFound(LoyaltyError):
    status, code = 404, "not_found"


class Conflict(LoyaltyError):
    status, code = 409, "conflict"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"

    def __init__(self, key_name: str) -> None:
        super().__init__(f"this {key_name} was already used with a different body")


class InsufficientPoints(Conflict):
    code = "insufficient_points"

    def __init__(self, message: str = "not enough points") -> None:
        super().__init__(message)


class RateLimited(LoyaltyError):
    """A till beyond one of its rate caps: nothing was written (../shared/API.md)."""

    status, code = 429, "rate_limited"


class RetryLater(LoyaltyError):
    """Throttling or sustained contention: the only 5xx the contract allows."""

    status, code = 503, "retry_later"

    def __init__(self, message: str = "busy, retry shortly") -> None:
        super().__init__(message)


class WechatUnavailable(RetryLater):
    """WeChat timed out or answered garbage: the caller may retry, nothing was changed."""


class BalanceCap(Conflict):
    """A top-up that would take the stored value past its legal cap (refused before paying)."""

    code = "balance_cap"


class InsufficientBalance(Conflict):
    code = "insufficient_balance"


class RefundExceedsPayment(Conflict):
    code = "refund_exceeds_payment"


# --- paid membership and lotteries (issue 14) -------------------------------------------------

class TrialUsed(Conflict):
    """This person (by unionid/openid, phone or member) already had the free trial."""

    code = "trial_used"


class DrawLimitReached(Conflict):
    code = "draw_limit_reached"


class LotteryClosed(Conflict):
    """A draw outside the lottery's window."""

    code = "lottery_closed"
