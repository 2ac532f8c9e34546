"""`loyalty-admin` (the installed console script) provisions a second program on the running local
stack; a till signing with the key it printed accrues points in that program only."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from tests.e2e.calls import Http
from tests.e2e.conftest import REPO_ROOT
from tests.support import calls

APPID = "wxe2esecond00000"
PROGRAM = f"""\
program_id: e2e-second
name: E2E Second
appid: {APPID}
wechat_secret: e2e-second-wechat-secret
earning: {{points_per_yuan: 3, growth_per_yuan: 1}}
tiers:
  - {{code: member, name: 会员, level: 0, threshold: 0}}
  - {{code: vip, name: VIP, level: 1, threshold: 800}}
"""


def admin(stack: Any, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "loyalty-admin"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "loyalty_admin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(LOYALTY_DYNAMODB_ENDPOINT=stack.dynamodb_endpoint, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing")
    return subprocess.run([*command, "--stage", "local", "--table", stack.table_name, "--region", stack.region, *argv],
                          cwd=REPO_ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=60)


def test_cli_creates_a_second_program_whose_till_key_accrues_there_only(stack: Any, tmp_path: Path) -> None:
    assert (Path(sys.executable).parent / "loyalty-admin").exists(), "make venv installs the console script"
    requests.post(f"{stack.wechat}/_apps", json={"appid": APPID, "secret": "e2e-second-wechat-secret"},
                  timeout=5).raise_for_status()
    program_file = tmp_path / "second.yaml"
    program_file.write_text(PROGRAM, encoding="utf-8")

    assert admin(stack, "program", "create", str(program_file), "--dry-run").returncode == 0
    created = admin(stack, "program", "create", str(program_file))
    assert created.returncode == 0, created.stderr
    assert admin(stack, "program", "create", str(program_file)).returncode == 1  # exists: needs --update
    till = admin(stack, "till-key", "create", "e2e-second", "e2e-pos")
    assert till.returncode == 0, till.stderr
    secret = till.stdout.strip()
    owner = admin(stack, "staff", "create-owner", "e2e-second", "owner", "--password-stdin", stdin="e2e-owner-pass\n")
    assert owner.returncode == 0, owner.stderr
    assert [u["role"] for u in json.loads(admin(stack, "staff", "list", "e2e-second").stdout)] == ["owner"]
    listed = {p["program_id"] for p in json.loads(admin(stack, "program", "list").stdout)}
    assert {"demo", "e2e-second"} <= listed

    http = Http(stack.api)
    login = http.call("POST", "/v1/auth/login", {"appid": APPID, "code": "dev-e2e-dora"})
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    member_id = http.member("POST", "/v1/members", token, {"nickname": "Dora"}).json()["member_id"]

    order = {"order_id": "e2e-second-o1", "member_id": member_id, "amount_fen": 2000,
             "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    body = json.dumps(order).encode()
    signed = requests.post(f"{stack.api}/v1/orders", data=body, timeout=30,
                           headers=calls.till_headers("POST", "/v1/orders", body, key_id="e2e-pos", secret=secret))
    assert signed.status_code == 201, signed.text
    assert signed.json()["points_awarded"] == 60
    assert http.member("GET", "/v1/members/me", token).json()["points"]["available"] == 60

    # The demo program's till does not find that member; the demo member of the same person has nothing.
    demo = http.till("POST", "/v1/orders", {**order, "order_id": "e2e-second-o2"})
    assert demo.status_code == 404
    demo_token, _ = http.enrolled("e2e-dora")
    assert http.member("GET", "/v1/members/me", demo_token).json()["points"]["available"] == 0

    # Revoked: the local stack caches keys for 30 s per process, so only the key's item is checked here;
    # the 401 after the cache lifetime is tests/integration/test_admin_cli.py.
    assert admin(stack, "till-key", "revoke", "e2e-second", "e2e-pos").returncode == 1  # no terminal, no --yes
    assert admin(stack, "till-key", "revoke", "e2e-second", "e2e-pos", "--yes").returncode == 0
    assert json.loads(admin(stack, "till-key", "list", "e2e-second").stdout) == []
