"""Webhooks, the pure part: which table changes are which events and what they carry, the
stable id of an event, the signature, the retry schedule, when an endpoint is paused, and which
addresses an endpoint may point at.

Adding an event type is one entry in `RULES`: its name, the item kind it comes from and a
function from the stream images to the event's facts (or None: this change is not that event).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable
from urllib.parse import urlsplit

Image = dict[str, Any]

# A program registers at most this many endpoints (each event becomes one delivery per endpoint).
MAX_ENDPOINTS_PER_PROGRAM = 10
# One attempt's limits: connecting, and waiting for the answer.
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0

# After the n-th failed attempt of a delivery, the next one comes RETRY_DELAYS[n-1] later:
# exponential from one minute, capped at six hours; 13 attempts over 26.5 hours, then parked.
RETRY_DELAYS: tuple[dt.timedelta, ...] = tuple(
    dt.timedelta(minutes=min(2 ** n, 360)) for n in range(9)) + (dt.timedelta(hours=6),) * 3
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1

# An endpoint is paused when this many attempts in a row failed over at least PAUSE_AFTER_TIME
# (so a short outage does not pause it), or when a delivery to it ran out of retries.
PAUSE_AFTER_FAILURES = 10
PAUSE_AFTER_TIME = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Fact:
    """One event a table change makes: `source` names the change (stable under redelivery)."""

    type: str
    member_id: str
    source: str
    created_at: str | None  # None: the change carries no time of its own (the event's is "now")
    data: dict[str, Any]


@dataclass(frozen=True)
class EventRule:
    type: str
    kind: str  # the item kind (models' discriminator) whose changes make it
    build: Callable[[str, Image, Image], Fact | None]


def _plain(value: Any) -> Any:
    """Stream images carry Decimals and JSON attributes as text; events carry plain JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return _plain(value)


def _member_enrolled(event_name: str, new: Image, old: Image) -> Fact | None:
    if event_name != "INSERT":
        return None
    return Fact("member.enrolled", new["member_id"], f"enrolled#{new['member_id']}", new["enrolled_at"], {
        "member_id": new["member_id"], "nickname": new.get("nickname"), "birthday": new.get("birthday"),
        "invited_by": new.get("invited_by"), "enrolled_at": new["enrolled_at"]})


# What of a profile a receiver sees: never the phone itself, only its masked form.
_PROFILE_FIELDS = ("nickname", "birthday", "phone_masked")


def _member_updated(event_name: str, new: Image, old: Image) -> Fact | None:
    if event_name != "MODIFY":
        return None
    changed = [name for name in _PROFILE_FIELDS if new.get(name) != old.get(name)]
    if not changed:
        return None
    # `revision` counts the profile's changes, so A->B->A->B are three events, not two.
    revision = _plain(new.get("revision"))
    marker = str(revision) if revision is not None else hashlib.sha256(
        json.dumps([[old.get(n) for n in _PROFILE_FIELDS], [new.get(n) for n in _PROFILE_FIELDS]]).encode()
    ).hexdigest()[:16]
    return Fact("member.updated", new["member_id"], f"updated#{new['member_id']}#{marker}", None,
                {"member_id": new["member_id"], "changed": changed, **{n: new.get(n) for n in _PROFILE_FIELDS}})


_LEDGER_FIELDS = ("entry_id", "type", "points", "balance_after", "growth", "reason", "ref", "created_at", "amount_fen")


def _points_changed(event_name: str, new: Image, old: Image) -> Fact | None:
    if event_name != "INSERT" or not int(new.get("points", 0)):
        return None
    row = {name: _plain(new[name]) for name in _LEDGER_FIELDS if new.get(name) is not None}
    if new.get("detail"):
        row["detail"] = _json(new["detail"])
    return Fact("points.changed", new["member_id"], f"ledger#{new['pk']}#{new['sk']}", new["created_at"],
                {"member_id": new["member_id"], "ledger": row})


def _tier_changed(event_name: str, new: Image, old: Image) -> Fact | None:
    if event_name != "INSERT" or new.get("from_tier") == new.get("to_tier"):
        return None
    return Fact("tier.changed", new["member_id"], f"tier#{new['pk']}#{new['sk']}", new["created_at"], {
        "member_id": new["member_id"], "from_tier": new["from_tier"], "to_tier": new["to_tier"],
        "direction": new["direction"], "reason": new.get("reason"), "growth": _plain(new.get("growth"))})


def _redemption(status: str, stamp: str) -> Callable[[str, Image, Image], Fact | None]:
    status_name = {"redeemed": "created", "cancelled": "cancelled"}[status]

    def build(event_name: str, new: Image, old: Image) -> Fact | None:
        if event_name == "REMOVE" or new.get("status") != status or (old or {}).get("status") == status:
            return None
        return Fact(f"redemption.{status_name}", new["member_id"], f"redemption#{new['redemption_id']}#{status}",
                    new.get(stamp) or new["created_at"], {
                        "member_id": new["member_id"], "redemption_id": new["redemption_id"],
                        "reward_id": new["reward_id"], "reward_name": new["reward_name"],
                        "quantity": _plain(new["quantity"]), "points_spent": _plain(new["points_spent"]),
                        "cash_fen": _plain(new.get("cash_fen", 0)), "status": status,
                        "created_at": new["created_at"], "cancelled_at": new.get("cancelled_at")})

    return build


RULES: tuple[EventRule, ...] = (
    EventRule("member.enrolled", "profile", _member_enrolled),
    EventRule("member.updated", "profile", _member_updated),
    EventRule("points.changed", "ledger", _points_changed),
    EventRule("points.changed", "order", _points_changed),
    EventRule("tier.changed", "tier_change", _tier_changed),
    EventRule("redemption.created", "redemption", _redemption("redeemed", "created_at")),
    EventRule("redemption.cancelled", "redemption", _redemption("cancelled", "cancelled_at")),
)

EVENT_TYPES: tuple[str, ...] = tuple(sorted({rule.type for rule in RULES}))
KINDS: tuple[str, ...] = tuple(sorted({rule.kind for rule in RULES}))


def facts_of(event_name: str, new: Image, old: Image) -> list[Fact]:
    """Every event one stream record makes."""
    kind = str((new or old).get("kind") or "")
    facts = (rule.build(event_name, new or {}, old or {}) for rule in RULES if rule.kind == kind)
    return [fact for fact in facts if fact is not None]


def event_id(program_id: str, fact: Fact) -> str:
    """Stable: the same table change always makes the same id, so a redelivered stream record
    finds its event already written."""
    digest = hashlib.sha256(f"{program_id}\n{fact.type}\n{fact.source}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def body(event: str, type_: str, created_at: str, member_id: str, sequence: int, data: dict[str, Any]) -> str:
    """The exact bytes every attempt sends (the signature covers them)."""
    return json.dumps({"id": event, "type": type_, "created_at": created_at, "member_id": member_id,
                       "sequence": sequence, "data": data}, ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True)


def signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    """Lowercase hex HMAC-SHA256(secret, timestamp + "\\n" + raw body)."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"\n" + raw_body, hashlib.sha256).hexdigest()


def retry_after(failed_attempts: int) -> dt.timedelta | None:
    """How long after the n-th failed attempt of a delivery the next one comes; None: park it."""
    if 1 <= failed_attempts <= len(RETRY_DELAYS):
        return RETRY_DELAYS[failed_attempts - 1]
    return None


def should_pause(consecutive_failures: int, failing_since: dt.datetime | None, now: dt.datetime) -> bool:
    return (consecutive_failures >= PAUSE_AFTER_FAILURES and failing_since is not None
            and now - failing_since >= PAUSE_AFTER_TIME)


# --- where an endpoint may point -----------------------------------------------------------

class RefusedUrl(ValueError):
    """The URL may not be an endpoint; the message says why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string


def parse_url(url: str, *, local: bool) -> Target:
    """The URL's parts, if its shape is allowed: https (the local stage: http too), a host, no
    credentials in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl(f"not a URL: {exc}") from None
    allowed = ("https", "http") if local else ("https",)
    if parts.scheme not in allowed:
        raise RefusedUrl("the URL must be https" if not local else "the URL must be http or https")
    if not parts.hostname:
        raise RefusedUrl("the URL has no host")
    if parts.username or parts.password:
        raise RefusedUrl("the URL must not carry credentials")
    if parts.fragment:
        raise RefusedUrl("the URL must not have a fragment")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def refused_address(address: str, *, local: bool) -> str | None:
    """Why an endpoint may not be reached at this address (None: it may). Outside the local
    stage only public unicast addresses; the local stage only loopback (it never sends out)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if local:
        return None if ip.is_loopback else f"{ip} is not loopback (the local stage sends only to loopback)"
    for label, hit in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                       ("private", ip.is_private), ("multicast", ip.is_multicast),
                       ("reserved", ip.is_reserved), ("unspecified", ip.is_unspecified),
                       ("not public", not ip.is_global)):
        if hit:
            return f"{ip} is a {label} address"
    return None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
