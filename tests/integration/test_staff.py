"""Staff accounts (issue 16): log-in, roles, lock-out, disabling, a clerk's limit, the audit log,
finding a member by phone through the keyed lookup."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.support import calls

OWNER = {"program_id": "demo", "username": "owner", "password": "dev-owner-password"}


def login(api: Any, username: str = "owner", password: str = "dev-owner-password", program_id: str = "demo") -> Any:
    return api.request("POST", "/v1/admin/auth/login",
                       {"program_id": program_id, "username": username, "password": password})


def token_of(api: Any, username: str = "owner", password: str = "dev-owner-password") -> str:
    answer = login(api, username, password)
    assert answer.status_code == 200, answer.body
    return answer.json["token"]


def add_staff(api: Any, owner: str, username: str, role: str, **extra: Any) -> Any:
    answer = api.staff("PUT", f"/v1/admin/staff/{username}", {"role": role, "password": f"{username}-password", **extra},
                       key=owner)
    assert answer.status_code in (200, 201), answer.body
    return answer.json


@pytest.fixture
def clock_at(monkeypatch):
    """Moves `clock.now()` (the lock-out's clock) to a given moment."""
    from chalicelib import clock

    state = {"now": dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)}
    monkeypatch.setattr(clock, "now", lambda: state["now"])
    return state


def test_the_seeded_owner_logs_in_with_a_short_lived_token(api):
    answer = login(api)
    assert answer.status_code == 200, answer.body
    assert answer.json["role"] == "owner" and answer.json["expires_in"] == 8 * 3600
    me = api.staff("GET", "/v1/admin/staff", key=answer.json["token"])
    assert me.status_code == 200 and [u["username"] for u in me.json["items"]] == ["owner"]
    # Not a member token, and a member token is not a staff token.
    assert api.member("GET", "/v1/members/me", answer.json["token"]).status_code == 401
    member = api.login("staff-test-member")["token"]
    assert api.staff("GET", "/v1/admin/program", key=member).status_code == 401


def test_unknown_user_and_wrong_password_get_the_same_answer(api):
    wrong = login(api, password="not-the-password")
    unknown = login(api, username="nobody")
    other_program = login(api, program_id="nowhere")
    for answer in (wrong, unknown, other_program):
        assert answer.status_code == 401
        assert answer.json["error"]["code"] == "invalid_credentials"
        assert answer.json["error"]["message"] == wrong.json["error"]["message"]


def test_ten_wrong_passwords_lock_the_account_until_the_lock_ends(api, clock_at):
    for attempt in range(9):
        assert login(api, password=f"wrong-{attempt}").json["error"]["code"] == "invalid_credentials"
    tenth = login(api, password="wrong-10")
    assert tenth.status_code == 401 and tenth.json["error"]["code"] == "login_locked"
    locked_row = api.staff("GET", "/v1/admin/audit").json["items"][0]
    assert (locked_row["actor"], locked_row["status"], locked_row["error_code"]) == ("owner", 401, "login_locked")
    assert "2026-11-30T12:15:00" in tenth.json["error"]["message"]  # the lock lasts 900 s
    # The right password still fails while the lock lasts ...
    clock_at["now"] += dt.timedelta(minutes=14, seconds=59)
    locked = login(api)
    assert locked.status_code == 401 and locked.json["error"]["code"] == "login_locked"
    # ... and works once it has ended.
    clock_at["now"] += dt.timedelta(seconds=1)
    assert login(api).status_code == 200


def test_an_unknown_name_locks_the_same_way(api, clock_at):
    for attempt in range(10):
        last = login(api, username="ghost", password=f"wrong-{attempt}")
    assert last.json["error"]["code"] == "login_locked"
    assert login(api).status_code == 200  # another account from the same address: not locked (30 for an address)


def test_an_address_is_locked_after_thirty_failures_whatever_the_names(api, clock_at):
    for attempt in range(30):
        login(api, username=f"guess-{attempt % 3}-{attempt}", password="x")
    assert login(api).json["error"]["code"] == "login_locked"


def test_roles_get_what_they_may_do(api):
    owner = token_of(api)
    add_staff(api, owner, "mia", "manager")
    add_staff(api, owner, "carl", "clerk", points_limit=50)
    manager, clerk = token_of(api, "mia", "mia-password"), token_of(api, "carl", "carl-password")
    member_id = _member(api)
    adjust = lambda key, points, rid: api.staff("POST", f"/v1/admin/members/{member_id}/adjustments",  # noqa: E731
                                                {"points": points, "reason": "t", "request_id": rid}, key=key)
    assert adjust(clerk, 50, "c-1").status_code == 201
    over = adjust(clerk, 51, "c-2")
    assert over.status_code == 403 and over.json["error"]["code"] == "over_staff_limit"
    assert adjust(clerk, -51, "c-3").status_code == 403
    assert adjust(manager, 500, "m-1").status_code == 201
    assert api.staff("GET", "/v1/admin/program", key=manager).status_code == 200
    assert api.staff("GET", "/v1/admin/staff", key=manager).status_code == 403
    assert api.staff("GET", "/v1/admin/audit", key=manager).status_code == 403
    assert api.staff("GET", "/v1/admin/staff", key=clerk).status_code == 403
    assert api.staff("PUT", "/v1/admin/rewards/x", {"name": "x", "points_price": 1, "stock": 1}, key=clerk).status_code == 403
    assert api.staff("GET", f"/v1/admin/members/{member_id}", key=clerk).status_code == 200


def test_a_permission_added_later_reaches_owner_and_manager_but_not_clerk():
    from chalicelib.auth import roles
    from chalicelib.auth.permissions import ALL

    assert roles.PERMISSIONS["owner"] == ALL
    assert roles.PERMISSIONS["manager"] == ALL - roles.OWNER_ONLY
    assert roles.PERMISSIONS["clerk"] <= {"members:read", "points:adjust", "coupons:read", "coupons:redeem",
                                          "rewards:read", "program:read"}


def test_a_disabled_account_stops_at_once_and_cannot_log_in(api):
    owner = token_of(api)
    add_staff(api, owner, "carl", "clerk", points_limit=10)
    clerk = token_of(api, "carl", "carl-password")
    assert api.staff("GET", "/v1/admin/rewards", key=clerk).status_code == 200
    assert api.staff("PUT", "/v1/admin/staff/carl", {"role": "clerk", "disabled": True}, key=owner).status_code == 200
    refused = api.staff("GET", "/v1/admin/rewards", key=clerk)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "staff_disabled"
    assert login(api, "carl", "carl-password").json["error"]["code"] == "invalid_credentials"


def test_an_owner_cannot_lock_themselves_out(api):
    owner = token_of(api)
    answer = api.staff("PUT", "/v1/admin/staff/owner", {"role": "manager"}, key=owner)
    assert answer.status_code == 409 and answer.json["error"]["code"] == "own_account"


def test_a_new_account_needs_a_password_shown_on_the_field(api):
    answer = api.staff("PUT", "/v1/admin/staff/newbie", {"role": "clerk"}, key=token_of(api))
    assert answer.status_code == 400 and answer.json["error"]["fields"][0]["loc"] == ["password"]
    short = api.staff("PUT", "/v1/admin/staff/newbie", {"role": "clerk", "password": "short"}, key=token_of(api))
    assert short.status_code == 400 and short.json["error"]["fields"][0]["loc"] == ["password"]


def test_every_staff_write_is_in_the_audit_log_with_who_and_before_after(api):
    owner = token_of(api)
    add_staff(api, owner, "mia", "manager")
    manager = token_of(api, "mia", "mia-password")
    program = api.staff("GET", "/v1/admin/program", key=manager).json
    rules = {k: v for k, v in program.items() if k not in ("program_id", "appid")}
    changed = api.request("PUT", "/v1/admin/program", {**rules, "name": "Renamed"},
                          {**calls.bearer(manager), "X-Request-Id": "audit-test-0001"})
    assert changed.status_code == 200, changed.body
    refused = api.staff("PUT", "/v1/admin/program", {**rules, "name": ""}, key=manager)
    assert refused.status_code == 400
    assert api.staff("PUT", "/v1/admin/rewards/r1", {"name": "Cup", "points_price": 5, "stock": 3}).status_code == 200

    # The same client request id again: a second action, a second row.
    again = api.request("PUT", "/v1/admin/rewards/r1", {"name": "Cup", "points_price": 6, "stock": 3},
                        {**calls.bearer(manager), "X-Request-Id": "audit-test-0001"})
    assert again.status_code == 200

    log = api.staff("GET", "/v1/admin/audit", key=owner).json["items"]
    assert [(e["actor"], e["role"], e["method"], e["route"], e["status"]) for e in log[:7]] == [
        ("mia", "manager", "PUT", "/v1/admin/rewards/{reward_id}", 200),
        ("key:demo staff", "key", "PUT", "/v1/admin/rewards/{reward_id}", 200),
        ("mia", "manager", "PUT", "/v1/admin/program", 400),
        ("mia", "manager", "PUT", "/v1/admin/program", 200),
        ("mia", "manager", "POST", "/v1/admin/auth/login", 200),
        ("owner", "owner", "PUT", "/v1/admin/staff/{username}", 201),
        ("owner", "owner", "POST", "/v1/admin/auth/login", 200),
    ]
    rename = log[3]
    assert rename["request_id"] == "audit-test-0001" and rename["path"] == "/v1/admin/program"
    assert rename["body"]["name"] == "Renamed" and rename["after"]["name"] == "Renamed"
    assert log[2]["error_code"] == "invalid_request"
    created = log[5]
    assert created["body"]["password"] == "***" and created["before"] is None and created["after"]["role"] == "manager"
    assert "mia-password" not in str(log)
    # Reads are not actions: none in the log.
    assert all(e["method"] != "GET" for e in log)


def test_a_member_is_found_by_phone_through_the_keyed_lookup(api):
    member_id = _member(api)
    token = api.enrolled("staff-lookup")
    assert api.member("POST", "/v1/members/me/phone", token, {"phone_code": "phone-13912345678"}).status_code == 200
    clerk_owner = token_of(api)
    found = api.staff("GET", "/v1/admin/member-lookup?phone=13912345678", key=clerk_owner)
    assert found.status_code == 200 and found.json["member_id"] == api.member("GET", "/v1/members/me", token).json["member_id"]
    assert api.staff("GET", "/v1/admin/member-lookup?phone=13900000000", key=clerk_owner).status_code == 404
    by_id = api.staff("GET", f"/v1/admin/member-lookup?member_id={member_id}", key=clerk_owner)
    assert by_id.status_code == 200 and by_id.json["member_id"] == member_id
    invite = by_id.json.get("invite_code")
    if invite:
        assert api.staff("GET", f"/v1/admin/member-lookup?invite_code={invite}", key=clerk_owner).json["member_id"] == member_id
    assert api.staff("GET", "/v1/admin/member-lookup", key=clerk_owner).status_code == 400


def _member(api: Any) -> str:
    token = api.enrolled("staff-member")
    return api.member("GET", "/v1/members/me", token).json["member_id"]


def test_a_program_change_keeps_before_and_after_and_rule_errors_name_their_field(api):
    program = api.staff("GET", "/v1/admin/program").json
    rules = {k: v for k, v in program.items() if k not in ("program_id", "appid")}
    bad_tiers = [dict(rules["tiers"][0], threshold=5), *rules["tiers"][1:]]
    refused = api.staff("PUT", "/v1/admin/program", {**rules, "tiers": bad_tiers})
    assert refused.status_code == 400 and refused.json["error"]["fields"][0]["loc"] == ["tiers"]
    owner = token_of(api)
    assert api.staff("PUT", "/v1/admin/program", {**rules, "name": "New name"}).status_code == 200
    entry = api.staff("GET", "/v1/admin/audit", key=owner).json["items"][0]
    assert entry["before"]["name"] == program["name"] and entry["after"]["name"] == "New name"
