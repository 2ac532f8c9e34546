"""Issue 6 in the local stack: one tier message to the member who consented, none to the other,
and a redelivered stream sends nothing more."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

import pytest

from tests.e2e.calls import Http
from tests.e2e.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _tier_messages(stack, openid):
    return [m for m in stack.wechat_sent() if m["template_id"] == "tmpl-tier" and m["touser"] == openid]


def test_one_tier_message_to_the_consenting_member_and_none_after_a_replay(http, stack):
    yes_token, yes = http.enrolled("tier-yes-e2e")
    _, no = http.enrolled("tier-no-e2e")
    assert http.member("POST", "/v1/members/me/subscriptions", yes_token,
                       {"template_ids": ["tmpl-tier"]}).json() == {"credits": {"tmpl-tier": 1}}
    paid_at = dt.datetime.now(dt.timezone.utc).isoformat()
    for member_id in (yes, no):
        answer = http.till("POST", "/v1/orders", {"order_id": f"tier-{member_id}", "member_id": member_id,
                                                  "amount_fen": 100_000, "paid_at": paid_at})
        assert answer.status_code == 201
    deadline = time.monotonic() + 10
    while not _tier_messages(stack, "tier-yes-e2e"):
        assert time.monotonic() < deadline, "no tier message reached the WeChat stand-in"
        time.sleep(0.2)
    # The other member's message would come three stream hops after the order (account -> tier
    # change -> notification job -> sender): let all three happen before saying there is none.
    stack.settle(rounds=3)
    assert len(_tier_messages(stack, "tier-yes-e2e")) == 1
    assert _tier_messages(stack, "tier-no-e2e") == []
    assert _tier_messages(stack, "tier-yes-e2e")[0]["data"]["thing1"]["value"] == "银卡"

    env = {**os.environ, "PORT": stack.api.rsplit(":", 1)[1], "WECHAT_PORT": stack.wechat.rsplit(":", 1)[1],
           "DYNAMODB_PORT": stack.dynamodb_endpoint.rsplit(":", 1)[1], "LOYALTY_TABLE_NAME": stack.table_name}
    env = {k: v for k, v in env.items() if not k.startswith("LOYALTY_") or k == "LOYALTY_TABLE_NAME"}
    replay = subprocess.run([sys.executable, "-m", "devstack.replay"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stderr[-2000:]
    lines = [json.loads(line) for line in replay.stdout.splitlines() if line.startswith("{")]
    assert {line["handler"] for line in lines} == {"on_table_change", "send_notifications", "deliver_webhooks"}
    assert all(line["records"] > 0 and line["failures"] == 0 for line in lines)
    stack.settle(rounds=3)
    assert len(_tier_messages(stack, "tier-yes-e2e")) == 1
    assert _tier_messages(stack, "tier-no-e2e") == []
