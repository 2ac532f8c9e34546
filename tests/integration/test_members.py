"""Login, enrolment, the card and phone binding through the API."""

from __future__ import annotations

import concurrent.futures

from tests.support import calls


def test_health_needs_no_credentials(api):
    answer = api.request("GET", "/health")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok"}
    assert answer.headers["X-Request-Id"]


def test_login_before_enrolment_then_enrol_and_read_the_card(api):
    login = api.login("alice")
    assert login["enrolled"] is False and login["member_id"] is None
    assert login["expires_in"] > 0

    enrolled = api.member("POST", "/v1/members", login["token"], {"nickname": "Alice", "birthday": "1990-05-17"})
    assert enrolled.status_code == 201
    card = enrolled.json
    assert card["nickname"] == "Alice" and card["birthday"] == "1990-05-17"
    assert card["tier"] == {"code": "normal", "name": "普通", "level": 0, "since": None}
    assert card["retention"] is None and card["checkin"] == {"last_date": None, "streak": 0, "checked_in_today": False}
    assert card["next_tier"] == {"code": "silver", "growth_needed": 1000}
    assert card["points"] == {"available": 0, "held": 0, "debt": 0, "pending": 0, "expiring": []}
    assert card["stored_value_fen"] == 0 and card["phone"] is None
    assert len(card["invite_code"]) == 8
    assert card["benefits"] and {"code", "description"} <= set(card["benefits"][0])

    again = api.member("POST", "/v1/members", login["token"], {})
    assert again.status_code == 200 and again.json["member_id"] == card["member_id"]

    me = api.member("GET", "/v1/members/me", login["token"])
    assert me.status_code == 200 and me.json == card

    relogin = api.login("alice")
    assert relogin["enrolled"] is True and relogin["member_id"] == card["member_id"]


def test_concurrent_enrolments_of_one_person_make_one_member(api):
    token = api.login("bob")["token"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api.member("POST", "/v1/members", token, {}), range(8)))
    assert sorted(a.status_code for a in answers).count(201) == 1
    assert {a.json["member_id"] for a in answers} == {answers[0].json["member_id"]}


def test_card_before_enrolment_is_404_not_enrolled(api):
    token = api.login("carol")["token"]
    answer = api.member("GET", "/v1/members/me", token)
    assert answer.status_code == 404
    assert answer.json["error"]["code"] == "not_enrolled"


def test_phone_is_masked_encrypted_and_unique(api, wechat):
    token = api.enrolled("dave")
    answer = api.member("POST", "/v1/members/me/phone", token, {"phone_code": "phone-13800000000"})
    assert answer.status_code == 200
    assert answer.json["phone"] == "138****0000"
    assert "13800000000" not in answer.body.decode()

    from chalicelib.store.models import ProfileItem

    stored = [item for item in ProfileItem.scan()]
    assert stored and all("13800000000" not in (item.phone_enc or "") for item in stored)

    other = api.enrolled("erin")
    taken = api.member("POST", "/v1/members/me/phone", other, {"phone_code": "phone-13800000000"})
    assert taken.status_code == 409 and taken.json["error"]["code"] == "phone_in_use"

    bad = api.member("POST", "/v1/members/me/phone", other, {"phone_code": "nonsense"})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_phone_code"


def test_invite_code_links_the_invitee(api):
    inviter = api.enrolled("frank")
    code = api.member("GET", "/v1/members/me", inviter).json["invite_code"]
    token = api.login("grace")["token"]
    answer = api.member("POST", "/v1/members", token, {"invite_code": code})
    assert answer.status_code == 201
    unknown = api.member("POST", "/v1/members", api.login("heidi")["token"], {"invite_code": "ZZZZZZZZ"})
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "unknown_invite_code"


def test_bad_bodies_are_400_invalid_request(api):
    token = api.login("ivan")["token"]
    for body in ({"nickname": 5}, {"unknown": 1}, {"birthday": "1990-13-45"}):
        answer = api.member("POST", "/v1/members", token, body)
        assert answer.status_code == 400, body
        assert answer.json["error"]["code"] == "invalid_request"
        assert answer.json["error"]["request_id"] == answer.headers["X-Request-Id"]
    not_json = api.request("POST", "/v1/members", headers=calls.bearer(token), raw=b"{nope")
    assert not_json.status_code == 400
