"""A 30-second load run of a fresh local stack (`python -m bench.load --profile smoke`): mixed
traffic from 8 clients over 300 seeded members, hot members, replays, the stream functions and
the frequent job running throughout. Asserts the invariants only, never timings (those are
`make load`'s, in bench/LOAD.md): every member reconciles, every idempotency key has one
effect, no 5xx but 503 retry_later and no 429, every notification job final, the failure queue
empty, coupons and stored value add up (bench/load/checks.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_short_load_run_keeps_every_invariant(tmp_path):
    report_path = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "bench.load", "--profile", "smoke", "--report-json", str(report_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert report_path.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    checks = report["checks"]
    assert checks["failures"] == [], checks
    assert checks["ok"] and done.returncode == 0, done.stdout[-3000:]
    # The run did run: every kind of operation was served, replays included, and checked.
    assert {"card", "order", "refund", "checkin", "redemption", "hold", "hold_settle", "login", "enrol",
            "coupon_claim", "coupon_redeem", "top_up", "top_up_confirm", "sv_payment"} <= set(report["api"])
    assert checks["members_checked"] >= 300 and checks["effects_checked"] > 0 and checks["replays"] > 0
    assert checks["coupons_checked"] > 0 and checks["paid_top_ups"] > 0 and checks["wallets_checked"] > 0
    assert checks["notification_jobs"] and report["stack_exit"] == 0
