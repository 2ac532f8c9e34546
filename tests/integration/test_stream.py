"""The stream handler with real stream records from moto's DynamoDB Streams."""

from __future__ import annotations

from tests.support.stream import StreamFeeder, lambda_event


def stream_records():
    """Every record on the table's stream so far, in order (what Lambda would be handed)."""
    return StreamFeeder().read()


def test_invitee_enrolment_credits_the_inviter_once_even_when_redelivered(api):
    from app import on_table_change

    inviter = api.enrolled("inviter")
    code = api.member("GET", "/v1/members/me", inviter).json["invite_code"]
    api.enrolled("invitee", invite_code=code)
    event = lambda_event(stream_records())
    assert on_table_change(event, None) == {"batchItemFailures": []}
    assert api.member("GET", "/v1/members/me", inviter).json["invited_count"] == 1
    on_table_change(event, None)  # the same batch again
    assert api.member("GET", "/v1/members/me", inviter).json["invited_count"] == 1


def test_a_poison_record_fails_alone(api):
    from app import on_table_change

    inviter = api.enrolled("inviter")
    code = api.member("GET", "/v1/members/me", inviter).json["invite_code"]
    api.enrolled("invitee", invite_code=code)
    records = stream_records()
    poison = dict(records[0], dynamodb={**records[0]["dynamodb"],
                                        "NewImage": {"kind": {"S": "profile"}, "invited_by": {"S": "x"}},
                                        "SequenceNumber": "999"}, eventName="INSERT")
    answer = on_table_change(lambda_event([poison] + records), None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "999"}]}
    assert api.member("GET", "/v1/members/me", inviter).json["invited_count"] == 1
