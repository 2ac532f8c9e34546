"""Who is calling. Each auth scheme yields one of these; services take them, never raw headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chalicelib.auth.permissions import Permission

if TYPE_CHECKING:  # the table is imported where a nonce is written, not where routes declare auth
    from chalicelib.store.tx import Transaction


@dataclass(frozen=True)
class MemberPrincipal:
    program_id: str
    openid: str
    # Set in tokens issued after enrolment; otherwise resolved through the WeChat user item.
    member_id: str | None


@dataclass
class NonceClaim:
    """A till request's nonce, not yet spent. A write the request makes carries it in its own
    transaction (`add_to`), so a first accrual is one read and one write; if no write did, the
    authenticator spends it on its own after the view (a replay, a refusal)."""

    key_id: str
    nonce: str
    seen_at: float
    window: int
    spent: bool = False

    def add_to(self, tx: Transaction) -> None:
        from chalicelib.store import programs

        if self.spent:
            return
        programs.put_nonce(tx, self.key_id, self.nonce, self.seen_at, self.window)
        tx.after_commit(self._mark_spent)

    def spend_alone(self) -> bool:
        """Spend it with a write of its own: False if it was seen within the window."""
        from chalicelib.store import programs

        if self.spent:
            return True
        self.spent = programs.record_nonce(self.key_id, self.nonce, self.seen_at, self.window)
        return self.spent

    def _mark_spent(self) -> None:
        self.spent = True


@dataclass(frozen=True)
class TillPrincipal:
    program_id: str
    key_id: str
    store_id: str | None
    nonce: NonceClaim | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StaffPrincipal:
    program_id: str
    key_name: str
    # First characters of the key's fingerprint: names the key in audit rows, reveals nothing.
    key_ref: str
    permissions: frozenset[Permission] = field(default=frozenset())
    # issue 16: a staff account (None: an admin key), its role ("key" for an admin key), the most
    # it may adjust in one request (None: no limit) and what the audit log will record of it.
    username: str | None = None
    role: str = "key"
    points_limit: int | None = None
    action: StaffAction | None = field(default=None, compare=False)

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def actor(self) -> str:
        """Who, as the audit log names them: the username, or `key:<admin key name>`."""
        return self.username if self.username is not None else f"key:{self.key_name}"


@dataclass
class StaffAction:
    """The staff request the audit log records after the view (auth/schemes.py `Staff.finish`);
    a view that knows the state before its change may set `before`."""

    method: str
    route: str
    path: str
    body: object = None
    before: object = None
