"""The pure webhook rules: events from stream images, stable ids, signatures, the retry
schedule, pausing, and which addresses an endpoint may point at."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal

import pytest

from chalicelib.domain import webhooks as rules

LEDGER = {"kind": "ledger", "pk": "P#demo#M#m1", "sk": "OP#adjust#r1", "program_id": "demo", "member_id": "m1",
          "entry_id": "e1", "type": "adjust", "points": Decimal(50), "balance_after": Decimal(150),
          "growth": Decimal(0), "reason": "goodwill", "ref": "r1", "created_at": "2026-11-30T01:02:03.000+00:00",
          "detail": '{"by": "staff"}', "request_hash": "secret-ish", "response": "{}"}


def test_a_ledger_row_is_points_changed_with_the_row_and_nothing_internal():
    [fact] = rules.facts_of("INSERT", LEDGER, {})
    assert fact.type == "points.changed" and fact.member_id == "m1"
    assert fact.data == {"member_id": "m1", "ledger": {
        "entry_id": "e1", "type": "adjust", "points": 50, "balance_after": 150, "growth": 0, "reason": "goodwill",
        "ref": "r1", "created_at": "2026-11-30T01:02:03.000+00:00", "detail": {"by": "staff"}}}
    assert rules.facts_of("INSERT", {**LEDGER, "points": Decimal(0)}, {}) == []
    assert rules.facts_of("MODIFY", LEDGER, LEDGER) == []


def test_event_ids_are_stable_per_change_and_differ_between_changes():
    [fact] = rules.facts_of("INSERT", LEDGER, {})
    [same] = rules.facts_of("INSERT", dict(LEDGER), {})
    [other] = rules.facts_of("INSERT", {**LEDGER, "sk": "OP#adjust#r2"}, {})
    assert rules.event_id("demo", fact) == rules.event_id("demo", same)
    assert rules.event_id("demo", fact) != rules.event_id("demo", other)
    assert rules.event_id("demo", fact) != rules.event_id("other", fact)
    assert len(rules.event_id("demo", fact)) == 36


def test_profile_changes_and_redemption_statuses():
    profile = {"kind": "profile", "program_id": "demo", "member_id": "m1", "enrolled_at": "2026-11-30T00:00:00+00:00",
               "nickname": None, "phone_enc": "xx", "phone_hash": "yy", "revision": Decimal(0)}
    assert [f.type for f in rules.facts_of("INSERT", profile, {})] == ["member.enrolled"]
    renamed = {**profile, "nickname": "A", "revision": Decimal(1)}
    [updated] = rules.facts_of("MODIFY", renamed, profile)
    assert updated.data["changed"] == ["nickname"] and "phone_enc" not in updated.data
    back = rules.facts_of("MODIFY", {**profile, "revision": Decimal(2)}, renamed)
    again = rules.facts_of("MODIFY", {**renamed, "revision": Decimal(3)}, {**profile, "revision": Decimal(2)})
    assert len({rules.event_id("demo", f) for f in (updated, *back, *again)}) == 3
    assert rules.facts_of("MODIFY", {**profile, "invited_count": Decimal(1)}, profile) == []

    redemption = {"kind": "redemption", "program_id": "demo", "member_id": "m1", "redemption_id": "rd-1",
                  "reward_id": "cup", "reward_name": "Cup", "quantity": Decimal(1), "points_spent": Decimal(100),
                  "status": "redeemed", "created_at": "2026-11-30T00:00:00+00:00"}
    assert [f.type for f in rules.facts_of("INSERT", redemption, {})] == ["redemption.created"]
    cancelled = {**redemption, "status": "cancelled", "cancelled_at": "2026-11-30T01:00:00+00:00"}
    assert [f.type for f in rules.facts_of("MODIFY", cancelled, redemption)] == ["redemption.cancelled"]
    assert rules.facts_of("MODIFY", cancelled, cancelled) == []


def test_every_rule_names_a_known_kind_and_types_are_dotted():
    assert set(rules.KINDS) <= {"profile", "ledger", "order", "tier_change", "redemption"}
    assert all("." in t for t in rules.EVENT_TYPES)


def test_the_signature_is_hmac_sha256_over_timestamp_newline_body():
    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"whsec_k", b"1700000000\n" + body, hashlib.sha256).hexdigest()
    assert rules.signature("whsec_k", 1700000000, body) == expected


def test_the_body_is_canonical_json_with_the_contract_fields():
    raw = rules.body("evt_1", "points.changed", "2026-11-30T00:00:00+00:00", "m1", 3, {"b": 1, "a": "积分"})
    assert json.loads(raw) == {"id": "evt_1", "type": "points.changed", "created_at": "2026-11-30T00:00:00+00:00",
                               "member_id": "m1", "sequence": 3, "data": {"a": "积分", "b": 1}}
    assert raw == rules.body("evt_1", "points.changed", "2026-11-30T00:00:00+00:00", "m1", 3, {"a": "积分", "b": 1})


def test_retries_back_off_exponentially_over_more_than_a_day_then_park():
    delays = [rules.retry_after(n) for n in range(1, rules.MAX_ATTEMPTS)]
    assert [d.total_seconds() / 60 for d in delays[:5]] == [1, 2, 4, 8, 16]  # type: ignore[union-attr]
    assert all(b >= a for a, b in zip(delays, delays[1:]))  # type: ignore[operator]
    assert sum(delays, dt.timedelta()) >= dt.timedelta(hours=24)  # type: ignore[arg-type]
    assert max(delays) <= dt.timedelta(hours=6)  # type: ignore[type-var]
    assert rules.retry_after(rules.MAX_ATTEMPTS) is None


def test_pause_needs_many_failures_over_at_least_an_hour():
    now = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
    assert not rules.should_pause(100, now - dt.timedelta(minutes=59), now)
    assert not rules.should_pause(9, now - dt.timedelta(hours=5), now)
    assert rules.should_pause(10, now - dt.timedelta(hours=1), now)
    assert not rules.should_pause(10, None, now)


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.0.1", "127.0.0.1",
                                     "0.0.0.0", "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255",
                                     "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "ff02::1", "::"])
def test_non_public_addresses_are_refused_outside_local(address):
    assert rules.refused_address(address, local=False)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed_outside_local_and_refused_locally(address):
    assert rules.refused_address(address, local=False) is None
    assert rules.refused_address(address, local=True)
    assert rules.refused_address("127.0.0.1", local=True) is None


def test_url_shapes():
    assert rules.parse_url("https://h.example/in?x=1", local=False) == rules.Target("https", "h.example", 443, "/in?x=1")
    assert rules.parse_url("http://127.0.0.1:8003/crm", local=True).port == 8003
    for url, local in (("http://h.example/", False), ("ftp://h.example/", True), ("https:///x", False),
                       ("https://u:p@h.example/", False), ("https://h.example:99999/", False),
                       ("https://h.example/#frag", False)):
        with pytest.raises(rules.RefusedUrl):
            rules.parse_url(url, local=local)


def test_the_readme_verification_example_accepts_our_signature_and_nothing_else():
    import re
    import time
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"Verifying a delivery.*?```python\n(.*?)```", readme, flags=re.S)
    assert block, "the README's verification example is gone"
    assert len(block.group(1).strip().splitlines()) <= 10
    scope: dict = {}
    exec(block.group(1), scope)  # noqa: S102 - our own README
    body, now = b'{"id":"evt_1","type":"points.changed"}', int(time.time())
    headers = {"X-Loyalty-Timestamp": str(now), "X-Loyalty-Signature": rules.signature("whsec_k", now, body)}
    assert scope["verify"]("whsec_k", headers, body)
    assert not scope["verify"]("whsec_other", headers, body)
    assert not scope["verify"]("whsec_k", headers, body + b" ")
    old = {"X-Loyalty-Timestamp": str(now - 3600), "X-Loyalty-Signature": rules.signature("whsec_k", now - 3600, body)}
    assert not scope["verify"]("whsec_k", old, body)
