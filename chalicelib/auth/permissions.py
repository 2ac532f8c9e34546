"""What staff may do. Routes require one permission each (`STAFF.require(...)`); a staff
credential carries the set it was granted (an admin key: all of them)."""

from __future__ import annotations

from typing import Literal, get_args

Permission = Literal[
    "members:read",
    "points:adjust",
    "tiers:grant",
    "redemptions:cancel",
    "rewards:read",
    "rewards:write",
    "program:read",
    "program:write",
    "jobs:run",
    "coupons:read",
    "coupons:write",
    "coupons:grant",
    "stored_value:refund",
    "risk:read",
    "risk:review",
    "webhooks:read",
    "webhooks:write",
    "members:erase",
    "lotteries:read",
    # staff accounts and the audit log (issue 16): owner only, see auth/roles.py
    "staff:read",
    "staff:write",
    "audit:read",
    "coupons:redeem",  # a walk-in customer's coupon used at the counter by staff
    # insight (issue 15)
    "reports:read",
    "tags:write",
    "segments:read",
    "segments:write",
    "campaigns:run",
    "membership:refund",
]

ALL: frozenset[Permission] = frozenset(get_args(Permission))
