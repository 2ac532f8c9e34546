"""Who is calling. Each auth scheme yields one of these; services take them, never raw headers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemberPrincipal:
    program_id: str
    openid: str
    # Set in tokens issued after enrolment; otherwise resolved through the WeChat user item.
    member_id: str | None


@dataclass(frozen=True)
class TillPrincipal:
    program_id: str
    key_id: str
    store_id: str | None


@dataclass(frozen=True)
class StaffPrincipal:
    program_id: str
    key_name: str
    # First characters of the key's fingerprint: names the key in audit rows, reveals nothing.
    key_ref: str


Principal = MemberPrincipal | TillPrincipal | StaffPrincipal
