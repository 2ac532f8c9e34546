"""Ids: what a caller's id may look like, and the ids we make ourselves."""

from __future__ import annotations

import uuid

# Ids callers choose (order, refund, hold, request ids) and member ids: they end up in table keys.
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


def new_entry_id() -> str:
    """A ledger row's id (what the member's history shows)."""
    return uuid.uuid4().hex[:16]


def new_member_id() -> str:
    return "m" + uuid.uuid4().hex[:20]
