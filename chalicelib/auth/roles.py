"""What each staff role may do (API.md: owner, manager, clerk).

owner   every permission there is (`ALL`), staff accounts and the audit log included;
manager every permission but those that manage staff, keys and the audit log, and erasure (`OWNER_ONLY`);
clerk   an explicit allow-list: look members up, adjust points up to the limit the owner set on
        the clerk's account, see coupons.

Owner and manager are defined by subtraction, so a permission another feature adds to
`permissions.Permission` reaches both with no edit here; a clerk gets it only by being listed.
"""

from __future__ import annotations

from typing import Literal, get_args

from chalicelib.auth.permissions import ALL, Permission

Role = Literal["owner", "manager", "clerk"]
ROLES: tuple[Role, ...] = get_args(Role)

# ... and erasing a member (irreversible; the owner answers for the merchant's PIPL duties).
OWNER_ONLY: frozenset[Permission] = frozenset({"staff:read", "staff:write", "audit:read", "members:erase"})

CLERK: frozenset[Permission] = frozenset({
    "members:read",     # look a member up (by phone through the keyed lookup, id, invite code)
    "points:adjust",    # within the account's points_limit (services/ledger.py checks it)
    "coupons:read",     # a walk-in customer's coupons
    "coupons:redeem",   # ... used at the counter
    "rewards:read",
    "program:read",     # the console shows tier and rule names
})

PERMISSIONS: dict[str, frozenset[Permission]] = {
    "owner": ALL,
    "manager": ALL - OWNER_ONLY,
    "clerk": CLERK & ALL,
}


def permissions_of(role: str) -> frozenset[Permission]:
    """An unknown role (a stored item from a newer version) may do nothing."""
    return PERMISSIONS.get(role, frozenset())
