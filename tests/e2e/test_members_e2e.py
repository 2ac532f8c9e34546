"""Issue 2 over real HTTP: login, enrolment, the card, the phone, and a stream-driven reaction."""

from __future__ import annotations

import time

import pytest

from tests.e2e.calls import Http


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def test_login_enrol_card_and_phone_over_http(http):
    login = http.login("alice")
    assert login["enrolled"] is False
    enrolled = http.member("POST", "/v1/members", login["token"], {"nickname": "Alice"})
    assert enrolled.status_code == 201 and enrolled.headers["X-Request-Id"]
    card = http.member("GET", "/v1/members/me", login["token"])
    assert card.status_code == 200 and card.json()["tier"]["name"] == "普通"
    phone = http.member("POST", "/v1/members/me/phone", login["token"], {"phone_code": "phone-13800000000"})
    assert phone.status_code == 200 and phone.json()["phone"] == "138****0000"
    assert "13800000000" not in phone.text
    assert http.login("alice")["enrolled"] is True


def test_an_invitee_enrolment_reaches_the_stream_handler(http, stack):
    inviter, _ = http.enrolled("inviter-e2e")
    code = http.member("GET", "/v1/members/me", inviter).json()["invite_code"]
    http.enrolled("invitee-e2e", invite_code=code)
    deadline = time.monotonic() + 10
    while http.member("GET", "/v1/members/me", inviter).json()["invited_count"] != 1:
        assert time.monotonic() < deadline, "the stream handler did not credit the inviter"
        time.sleep(0.2)
    stack.settle()
    assert http.member("GET", "/v1/members/me", inviter).json()["invited_count"] == 1
