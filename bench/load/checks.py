"""After a load run: the invariants that must hold however busy the stack was.

1. Every member reconciles: balance = Σ ledger = Σ lots − debt, held = Σ open holds, growth =
   Σ ledger growth (`chalicelib/services/reconcile.py`'s `totals` and the domain's `differences`).
2. Every idempotency key has one effect: every key the API answered 2xx left its ledger row
   (keyed by it) with the points the answer gave; every ledger row is the effect of one answered
   key (or of the seed, a check-in, or the job releasing an expired hold); a hold is settled at
   most once; and every replay answered exactly as the first time (seen by the load client).
3. No 5xx but 503 `retry_later`.
4. Every notification job is in a final state (`sent` or `dropped`).
5. The stream pump's failure queue is empty.

Needs the stack's environment set before import (as bench/load/__main__.py does).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

FINAL_JOB_STATES = {"sent", "dropped"}


def _member_facts(program_id: str, member_id: str) -> dict[str, Any]:
    from chalicelib.domain.reconcile import differences
    from chalicelib.services import reconcile
    from chalicelib.store import keys
    from chalicelib.store import ledger as store
    from chalicelib.store.models import NotificationItem

    found = reconcile.totals(program_id, member_id)
    issues = differences(found) if found else ["account or profile missing"]
    rows = {(row.pk, row.sk): (row.type, row.ref, int(row.points))
            for row in store.all_ledger_rows(program_id, member_id)}
    jobs = Counter(job.status for job in NotificationItem.query(
        keys.member_pk(program_id, member_id), NotificationItem.sk.startswith("NOTIFY#")))
    return {"issues": issues, "rows": rows, "jobs": dict(jobs)}


_SETTLED = {"capture": "captured", "release": "released"}


def _effect_row(program_id: str, effect: dict[str, Any]) -> tuple[tuple[str, str], int | None]:
    """The ledger row an answered request made, and the points it must carry (None: any)."""
    from chalicelib.store import keys

    op, answer, ids = effect["op"], effect["answer"], effect["ids"]
    if op == "order":
        return keys.order(program_id, effect["key"]), answer["points_awarded"]
    if op == "refund":
        return keys.refund(program_id, ids[0], effect["key"]), -answer["points_reversed"]
    if op == "hold":
        return keys.member_operation(program_id, effect["member"], "hold", effect["key"]), -answer["points"]
    if op == "hold_settle":
        hold_id, outcome = effect["key"].rsplit(":", 1)
        return keys.member_operation(program_id, effect["member"], _SETTLED[outcome], hold_id), None
    if op == "redemption":
        return keys.member_operation(program_id, effect["member"], "redeem", effect["key"]), -answer["points_spent"]
    raise ValueError(f"no ledger row known for {op}")


def _idempotency(program_id: str, facts: dict[str, Any], effects: list[dict[str, Any]]) -> dict[str, list[str]]:
    from chalicelib.store import keys

    missing: list[str] = []
    wrong: list[str] = []
    orphans: list[str] = []
    explained: set[tuple[str, str]] = set()
    holds: dict[str, str] = {}  # hold id -> member
    for effect in effects:
        key, points = _effect_row(program_id, effect)
        explained.add(key)
        if effect["op"] == "hold":
            holds[effect["key"]] = effect["member"]
        row = facts.get(effect["member"], {}).get("rows", {}).get(key)
        if row is None:
            missing.append(f"{effect['op']} {effect['key']}")
        elif points is not None and row[2] != points:
            wrong.append(f"{effect['op']} {effect['key']}: ledger {row[2]} != answered {points}")
    settlement_of = {keys.member_operation(program_id, member, outcome, hold): hold
                     for hold, member in holds.items() for outcome in _SETTLED.values()}
    settlements: Counter[str] = Counter()
    for member_id, f in facts.items():
        for key, (kind, ref, _points) in f["rows"].items():
            if key in settlement_of:
                settlements[settlement_of[key]] += 1
                continue  # captured or released by the till, or released by the job once expired
            if key in explained:
                continue
            if key == keys.member_operation(program_id, member_id, "adjust", f"seed-{member_id}"):
                continue
            if kind == "earn" and (ref or "").startswith("checkin:"):
                continue
            orphans.append(f"{member_id}: {kind} {ref} at {key}")
    settled_twice = [f"hold {h} settled {n} times" for h, n in settlements.items() if n > 1]
    return {"missing": missing, "wrong_points": wrong, "orphans": orphans, "settled_twice": settled_twice}


def check(program_id: str, results: dict[str, Any], failure_queue_url: str, sqs: Any,
          workers: int = 6) -> dict[str, Any]:
    from chalicelib.services.reconcile import member_ids

    members = list(member_ids(program_id))
    with ThreadPoolExecutor(workers) as pool:
        facts = dict(zip(members, pool.map(lambda m: _member_facts(program_id, m), members)))

    unreconciled = {m: f["issues"] for m, f in facts.items() if f["issues"]}
    effects = _idempotency(program_id, facts, results.get("effects", []))

    jobs: Counter[str] = Counter()
    for f in facts.values():
        jobs.update(f["jobs"])
    unfinished = {state: n for state, n in jobs.items() if state not in FINAL_JOB_STATES}

    server_errors = {code: n for code, n in results.get("errors", {}).items()
                     if code.startswith("5") and code != "503 retry_later"}
    attributes = sqs.get_queue_attributes(QueueUrl=failure_queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                                                       "ApproximateNumberOfMessagesNotVisible"])
    parked = sum(int(v) for v in attributes["Attributes"].values())

    failures = []
    if unreconciled:
        failures.append(f"{len(unreconciled)} members do not reconcile")
    if any(effects.values()) or results.get("replay_mismatch_count"):
        failures.append(f"idempotency: {len(effects['missing'])} answered keys without their row, "
                        f"{len(effects['wrong_points'])} rows with other points than answered, "
                        f"{len(effects['orphans'])} rows no answered key explains, "
                        f"{len(effects['settled_twice'])} holds settled twice, "
                        f"{results.get('replay_mismatch_count', 0)} replays answered differently")
    if server_errors:
        failures.append(f"5xx other than 503 retry_later: {server_errors}")
    if unfinished:
        failures.append(f"notification jobs not in a final state: {unfinished}")
    if parked:
        failures.append(f"{parked} messages on the stream pump's failure queue")
    return {
        "members_checked": len(members), "members_unreconciled": len(unreconciled),
        "unreconciled_sample": dict(list(unreconciled.items())[:5]),
        "effects_checked": len(results.get("effects", [])),
        **{f"{name}_count": len(found) for name, found in effects.items()},
        **{f"{name}_sample": found[:5] for name, found in effects.items()},
        "replays": results.get("replays", 0), "replay_mismatches": results.get("replay_mismatch_count", 0),
        "server_errors": server_errors, "notification_jobs": dict(jobs), "failure_queue_messages": parked,
        "failures": failures, "ok": not failures,
    }

