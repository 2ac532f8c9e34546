"""The ways a caller proves itself, as objects a route declares (`auth=TILL`,
`auth=STAFF.require("points:adjust")`).

An authenticator turns a request into a principal (or refuses it with 401/403) and may finish
the request after the view ran: the till scheme spends the request's nonce there unless the
view's own transaction already carried it.

Each scheme imports its verifier when it first authenticates a request: declaring `auth=TILL`
(every route, at `import app`) loads no token, key or table code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from chalicelib.auth.permissions import Permission
from chalicelib.auth.principals import MemberPrincipal, StaffPrincipal, TillPrincipal
from chalicelib.errors import Forbidden, Unauthorized
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.auth.wechatpay import PaymentNotice


def bearer(request: Any) -> str:
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("missing bearer credentials")
    return value.strip()


@dataclass(frozen=True)
class Outcome:
    """What a request answered, as the authenticator's `finish` sees it (the staff audit log)."""

    status: int
    request_id: str
    body: Any = None
    error_code: str | None = None


@dataclass(frozen=True)
class Authenticator:
    """`kind` names the scheme (the OpenAPI security scheme, the auth matrix's caller kind)."""

    kind: str
    permission: Permission | None = None

    def authenticate(self, request: Any, settings: Settings) -> Any:
        return None

    def finish(self, principal: Any, settings: Settings, outcome: Outcome | None = None) -> None:
        """After the view (whatever it answered: `outcome`); may still refuse the request."""

    def error_body(self, code: str, message: str) -> dict[str, Any] | None:
        """The body of an error answer; None: the contract's error envelope."""
        return None


@dataclass(frozen=True)
class Public(Authenticator):
    kind: str = "public"


@dataclass(frozen=True)
class Member(Authenticator):
    kind: str = "member"

    def authenticate(self, request: Any, settings: Settings) -> MemberPrincipal:
        from chalicelib.auth import tokens

        principal = tokens.verify(settings, bearer(request))
        if principal.member_id is not None:
            # An erased member's tokens stop working (a token without a member id finds its
            # WeChat user gone instead: services/members.py resolve_member_id).
            from chalicelib.store import privacy  # lazy: the table only for member tokens

            if privacy.erasure(principal.program_id, principal.member_id, consistent=False) is not None:
                raise Unauthorized("this member's account was deleted: log in again", code="account_erased")
        return principal


@dataclass(frozen=True)
class Till(Authenticator):
    kind: str = "till"

    def authenticate(self, request: Any, settings: Settings) -> TillPrincipal:
        from chalicelib.auth import till

        return till.verify(settings, request.headers, request.method, till.path_with_query(request),
                           request.raw_body or b"")

    def finish(self, principal: TillPrincipal, settings: Settings, outcome: Outcome | None = None) -> None:
        if principal.nonce is not None and not principal.nonce.spend_alone():
            raise Unauthorized("nonce already used", code="replayed_nonce")


@dataclass(frozen=True)
class Staff(Authenticator):
    kind: str = "staff"

    def require(self, permission: Permission) -> Staff:
        return replace(self, permission=permission)

    def authenticate(self, request: Any, settings: Settings) -> StaffPrincipal:
        from chalicelib.auth import audit, staff

        principal = staff.verify(settings, bearer(request))
        if self.permission is not None and not principal.may(self.permission):
            raise Forbidden(f"this staff credential may not {self.permission}")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            principal = replace(principal, action=audit.action_of(request))
        return principal

    def finish(self, principal: StaffPrincipal, settings: Settings, outcome: Outcome | None = None) -> None:
        """Every staff write, done or refused, goes to the program's audit log (one place for
        every admin route, so a new route is audited without a line of its own)."""
        if principal.action is not None and outcome is not None:
            from chalicelib.auth import audit

            audit.record(principal, outcome.status, outcome.request_id, outcome.body, outcome.error_code)


@dataclass(frozen=True)
class WechatPayNotification(Authenticator):
    """WeChat Pay calling us: a signed, encrypted notification (auth/wechatpay.py). The principal
    is the verified notification itself; every answer, errors included, is in WeChat Pay's shape."""

    kind: str = "wechatpay"

    def authenticate(self, request: Any, settings: Settings) -> PaymentNotice:
        from chalicelib.auth import wechatpay

        return wechatpay.verify(settings, dict(request.headers.items()), request.raw_body or b"")

    def error_body(self, code: str, message: str) -> dict[str, Any] | None:
        from chalicelib.auth import wechatpay

        return wechatpay.reply("FAIL", f"{code}: {message}")


PUBLIC = Public()
MEMBER = Member()
TILL = Till()
STAFF = Staff()
WECHATPAY = WechatPayNotification()

__all__ = ["Authenticator", "Outcome", "MEMBER", "PUBLIC", "STAFF", "TILL", "WECHATPAY", "bearer"]
