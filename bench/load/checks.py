"""After a load run: the invariants that must hold however busy the stack was.

1. Every member reconciles: balance = Σ ledger = Σ lots − debt, held = Σ open holds, growth =
   Σ ledger growth (`chalicelib/services/reconcile.py`'s `totals` and the domain's `differences`).
2. Every idempotency key has one effect: every key the API answered 2xx left its ledger row
   (keyed by it) with the points the answer gave; every ledger row is the effect of one answered
   key (or of the seed, a check-in, or the job releasing an expired hold); a hold is settled at
   most once; and every replay answered exactly as the first time (seen by the load client).
3. No 5xx but 503 `retry_later`; no 429 `rate_limited` (the load sets the till's cap beyond what
   the profile can reach: bench/load/__main__.py).
4. Every notification job is in a final state (`sent` or `dropped`).
5. The stream pump's failure queue is empty.
6. Coupons: every template's `issued` counter = the coupons issued of it (their `issued` history
   rows, over all members); each coupon used at most once (used rows - voided rows is 0 or 1 and
   agrees with its status), the member's unused counter = its unused coupons; every answered claim
   left its coupon with that member, every answered 核销 left its coupon used on that order, and
   no code was answered 201 for two different 核销 requests.
7. Stored value: principal = Σ history principal, bonus = Σ history bonus, principal + frozen =
   Σ owed principal (likewise bonus), nothing negative; every top-up the payer paid credited once
   (its `top_up` row, 10,000 + 1,000 fen) and no top-up row unexplained; every answered till
   payment left its `payment` row with the answered amounts, and no payment row unexplained.

Each member's figures are read at one moment: the account's (or the wallet's) version is read
again after the other reads and they start again when it moved (the frequent job keeps running).

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
    coupons = _coupon_facts(program_id, member_id)
    money = _stored_value_facts(program_id, member_id)
    return {"issues": issues + coupons.pop("issues") + money.pop("issues"), "rows": rows, "jobs": dict(jobs),
            "coupons": coupons, "money": money}


def _coupon_facts(program_id: str, member_id: str) -> dict[str, Any]:
    """The member's coupons (by code), their history rows, and what does not add up."""
    from chalicelib.domain.coupons import STATUSES, UNUSED, USED
    from chalicelib.store import keys
    from chalicelib.store.members import read_member
    from chalicelib.store.models import CouponEventItem, CouponItem, TableItem

    coupons: dict[str, dict[str, Any]] = {}
    for status in STATUSES:
        for item in TableItem.gsi1.query(keys.member_coupons(program_id, member_id, status)):
            if isinstance(item, CouponItem):
                coupons[item.code] = {"status": item.status, "template": item.template_id, "order": item.order_id,
                                      "coupon_id": item.coupon_id}
    events: dict[str, Counter[str]] = {}
    issued: Counter[str] = Counter()
    for row in TableItem.query(keys.member_pk(program_id, member_id), TableItem.sk.startswith("CEVT#"),
                               consistent_read=True):
        if isinstance(row, CouponEventItem):
            events.setdefault(row.code, Counter())[row.event] += 1
            if row.event == "issued":
                issued[row.template_id] += 1
    record = read_member(program_id, member_id)
    issues = []
    for code, coupon in coupons.items():
        seen = events.get(code, Counter())
        in_use = seen["used"] - seen["voided"]
        if seen["issued"] != 1 or in_use not in (0, 1) or (in_use == 1) != (coupon["status"] == USED):
            issues.append(f"coupon {code}: {coupon['status']} with history {dict(seen)}")
    unused = sum(1 for c in coupons.values() if c["status"] == UNUSED)
    if record is not None and record.coupons_unused != unused:
        issues.append(f"unused coupons counted {record.coupons_unused} != {unused} unused")
    if set(events) - set(coupons):
        issues.append(f"coupon history without its coupon: {sorted(set(events) - set(coupons))[:3]}")
    return {"by_code": coupons, "issued": dict(issued), "issues": issues}


def _stored_value_facts(program_id: str, member_id: str, attempts: int = 5) -> dict[str, Any]:
    """The wallet against its history, read at one moment (the wallet's version read again after)."""
    from chalicelib.store import keys
    from chalicelib.store import ledger as store
    from chalicelib.store.models import StoredValueEntryItem, StoredValueItem, TableItem

    for _ in range(attempts):
        wallet = store.get_item(StoredValueItem, keys.stored_value(program_id, member_id))
        entries = [row for row in TableItem.query(keys.member_pk(program_id, member_id), TableItem.sk.startswith("SV#"),
                                                  consistent_read=True) if isinstance(row, StoredValueEntryItem)]
        again = store.get_item(StoredValueItem, keys.stored_value(program_id, member_id))
        if (wallet and int(wallet.version)) == (again and int(again.version)):
            break
    rows = {row.sk: (row.type, int(row.principal_fen), int(row.bonus_fen)) for row in entries}
    issues = []
    if wallet is None:
        if entries:
            issues.append(f"stored value: {len(entries)} history rows and no wallet")
        return {"rows": rows, "issues": issues}
    principal, bonus = int(wallet.principal), int(wallet.bonus)
    frozen_principal, frozen_bonus = int(wallet.frozen_principal), int(wallet.frozen_bonus)
    sums = {name: sum(int(getattr(row, name)) for row in entries)
            for name in ("principal_fen", "bonus_fen", "owed_principal_fen", "owed_bonus_fen")}
    if principal != sums["principal_fen"] or bonus != sums["bonus_fen"]:
        issues.append(f"stored value: principal {principal} / bonus {bonus} != history {sums['principal_fen']} / "
                      f"{sums['bonus_fen']}")
    if principal + frozen_principal != sums["owed_principal_fen"] or bonus + frozen_bonus != sums["owed_bonus_fen"]:
        issues.append(f"stored value: owed {principal + frozen_principal} / {bonus + frozen_bonus} != history "
                      f"{sums['owed_principal_fen']} / {sums['owed_bonus_fen']}")
    if min(principal, bonus, frozen_principal, frozen_bonus) < 0:
        issues.append("stored value: a negative bucket")
    return {"rows": rows, "issues": issues}


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


POINTS_OPS = {"order", "refund", "hold", "hold_settle", "redemption"}


def _coupons_and_money(program_id: str, facts: dict[str, Any], effects: list[dict[str, Any]],
                       paid_top_ups: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Points 6 and 7 across members: template counters, claims, 核销, top-ups, till payments."""
    from chalicelib.store import keys
    from chalicelib.store.models import CouponTemplateItem
    from chalicelib.store import ledger as store

    problems: dict[str, list[str]] = {"coupons": [], "stored_value": []}
    issued: Counter[str] = Counter()
    for f in facts.values():
        issued.update(f["coupons"]["issued"])
    for template_id, n in sorted(issued.items()):
        template = store.get_item(CouponTemplateItem, keys.coupon_template(program_id, template_id))
        counted = int(template.issued) if template is not None else None
        if counted != n:
            problems["coupons"].append(f"template {template_id}: issued counter {counted} != {n} coupons issued")
    redeemed_by: dict[str, set[str]] = {}
    explained_sv: set[tuple[str, str]] = set()
    for effect in effects:
        op, member, answer = effect["op"], effect["member"], effect["answer"]
        coupons = facts.get(member, {}).get("coupons", {}).get("by_code", {})
        sv_rows = facts.get(member, {}).get("money", {}).get("rows", {})
        if op == "coupon_claim":
            if answer["code"] not in coupons:
                problems["coupons"].append(f"claim {effect['key']}: coupon {answer['code']} not in {member}'s wallet")
        elif op == "coupon_redeem":
            redeemed_by.setdefault(answer["code"], set()).add(effect["key"])
            found = _coupon_anywhere(facts, answer["code"])
            if found is None or found["status"] != "used" or found["order"] != answer["order_id"]:
                problems["coupons"].append(f"核销 {effect['key']}: coupon {answer['code']} is {found}")
        elif op == "sv_payment":
            sk = keys.stored_value_entry(program_id, member, "pay", effect["key"])[1]
            explained_sv.add((member, sk))
            row = sv_rows.get(sk)
            if row is None or (row[1] + row[2]) != -answer["amount_fen"]:
                problems["stored_value"].append(f"payment {effect['key']}: history row {row}, answered "
                                                f"{answer['amount_fen']} fen")
    problems["coupons"] += [f"coupon {code} answered used by {len(keys_)} requests" for code, keys_ in
                            redeemed_by.items() if len(keys_) > 1]
    for paid in paid_top_ups:
        sk = keys.stored_value_entry(program_id, paid["member"], "topup", paid["top_up_id"])[1]
        explained_sv.add((paid["member"], sk))
        row = facts.get(paid["member"], {}).get("money", {}).get("rows", {}).get(sk)
        if row is None or row[0] != "top_up" or row[1] + row[2] != paid["fen"]:
            problems["stored_value"].append(f"top-up {paid['top_up_id']}: history row {row}, paid {paid['fen']} fen")
    for member_id, f in facts.items():
        for sk, (kind, _p, _b) in f.get("money", {}).get("rows", {}).items():
            if (member_id, sk) not in explained_sv:
                problems["stored_value"].append(f"{member_id}: {kind} row {sk} no paid top-up or answered payment "
                                                f"explains")
    return problems


def _coupon_anywhere(facts: dict[str, Any], code: str) -> dict[str, Any] | None:
    for f in facts.values():
        found = f.get("coupons", {}).get("by_code", {}).get(code)
        if found is not None:
            return found
    return None


def _idempotency(program_id: str, facts: dict[str, Any], effects: list[dict[str, Any]]) -> dict[str, list[str]]:
    from chalicelib.store import keys

    missing: list[str] = []
    wrong: list[str] = []
    orphans: list[str] = []
    explained: set[tuple[str, str]] = set()
    holds: dict[str, str] = {}  # hold id -> member
    for effect in effects:
        if effect["op"] not in POINTS_OPS:
            continue
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
    second_wave = _coupons_and_money(program_id, facts, results.get("effects", []), results.get("paid_top_ups", []))

    jobs: Counter[str] = Counter()
    for f in facts.values():
        jobs.update(f["jobs"])
    unfinished = {state: n for state, n in jobs.items() if state not in FINAL_JOB_STATES}

    server_errors = {code: n for code, n in results.get("errors", {}).items()
                     if code.startswith("5") and code != "503 retry_later"}
    rate_limited = results.get("errors", {}).get("429 rate_limited", 0)
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
    if rate_limited:
        failures.append(f"{rate_limited} orders refused 429 rate_limited: the load's till cap was reached")
    for area, found in second_wave.items():
        if found:
            failures.append(f"{area}: {len(found)} problems")
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
        "rate_limited": rate_limited,
        "coupon_problems_count": len(second_wave["coupons"]), "coupon_problems_sample": second_wave["coupons"][:5],
        "stored_value_problems_count": len(second_wave["stored_value"]),
        "stored_value_problems_sample": second_wave["stored_value"][:5],
        "coupons_checked": sum(len(f["coupons"]["by_code"]) for f in facts.values()),
        "wallets_checked": sum(1 for f in facts.values() if f["money"]["rows"]),
        "paid_top_ups": len(results.get("paid_top_ups", [])),
        "failures": failures, "ok": not failures,
    }

