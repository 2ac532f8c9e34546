"""Issue 20 in the local stack: accruals reach the webhook receiver stand-in signed, once per
event, from the stream; a full redelivery (`python -m devstack.replay`) sends no new event."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from tests.e2e.calls import Http
from tests.e2e.conftest import REPO_ROOT

ACCRUALS = 30


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.api)


def _received(stack, path, member_id):
    """What reached `path` about this member (records of earlier tests may still be in the stream
    when the endpoint is registered: their events reach it too)."""
    answer = requests.get(f"{stack.webhooks}/_received", timeout=5)
    answer.raise_for_status()
    return [r for r in answer.json() if r["path"] == path and json.loads(r["body"])["member_id"] == member_id]


def _verifies(secret, received):
    signed = received["headers"]["X-Loyalty-Timestamp"].encode() + b"\n" + received["body"].encode()
    return hmac.compare_digest(hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest(),
                               received["headers"]["X-Loyalty-Signature"])


def test_accruals_arrive_signed_once_each_and_a_replay_sends_no_new_event(http, stack):
    created = http.staff("PUT", "/v1/admin/webhooks/e2e-crm", {"url": f"{stack.webhooks}/e2e-crm",
                                                                "events": ["points.changed"]})
    assert created.status_code == 200, created.text
    secret = created.json()["secret"]
    _, member_id = http.enrolled("hook-e2e")
    paid_at = dt.datetime.now(dt.timezone.utc).isoformat()
    for n in range(ACCRUALS):
        answer = http.till("POST", "/v1/orders", {"order_id": f"hook-e2e-{n}", "member_id": member_id,
                                                  "amount_fen": 1_000, "paid_at": paid_at})
        assert answer.status_code == 201, answer.text
    deadline = time.monotonic() + 60
    while len(_received(stack, "/e2e-crm", member_id)) < ACCRUALS:
        assert time.monotonic() < deadline, f"only {len(_received(stack, '/e2e-crm', member_id))} deliveries arrived"
        time.sleep(0.3)
    stack.settle()
    got = _received(stack, "/e2e-crm", member_id)
    ids = {json.loads(r["body"])["id"] for r in got}
    assert len(ids) == ACCRUALS and all(_verifies(secret, r) for r in got)
    assert sorted(json.loads(r["body"])["sequence"] for r in got) == list(range(1, ACCRUALS + 1))

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(PORT=stack.api.rsplit(":", 1)[1], WECHAT_PORT=stack.wechat.rsplit(":", 1)[1],
               DYNAMODB_PORT=stack.dynamodb_endpoint.rsplit(":", 1)[1],
               WEBHOOK_PORT=stack.webhooks.rsplit(":", 1)[1], LOYALTY_TABLE_NAME=stack.table_name)
    replay = subprocess.run([sys.executable, "-m", "devstack.replay"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stderr[-2000:]
    lines = [json.loads(line) for line in replay.stdout.splitlines() if line.startswith("{")]
    assert "deliver_webhooks" in {line.get("handler") for line in lines}  # (the app's own JSON log lines too)
    stack.settle()
    time.sleep(1)
    after = _received(stack, "/e2e-crm", member_id)
    assert {json.loads(r["body"])["id"] for r in after} == ids  # duplicates, if any, only as the same ids

    [listed] = [w for w in http.staff("GET", "/v1/admin/webhooks").json()["items"] if w["webhook_id"] == "e2e-crm"]
    assert listed["counters"]["delivered"] >= ACCRUALS and listed["status"] == "active"
