"""Reconciliation: check every member of a program against the ledger invariant (pending points
are their own bucket: account = ledger = open pending entries); change nothing.

Run it with `make reconcile` (or `python -m chalicelib.services.reconcile --program demo`), from
the admin jobs endpoint (`reconcile`), or let the daily schedule run it.

The daily job (`reconcile_step`) costs the day's work, not the member count: it checks the members
whose balances changed the day before `as_of` (their first ledger row of that day sits in the
day's activity queue), plus a sweep of every member spread over the week: each day the member
shards `s` with `s % 7 == as_of.toordinal() % 7` (with 8 shards: one shard six days a week, two
on the seventh). A page of members per step, so a run checkpoints as it goes. Members the
activity queue lists in a shard swept that day are checked once, by the sweep."""

from __future__ import annotations

import argparse
import json
import sys
import datetime as dt
from typing import Any, Iterator

from chalicelib.domain.reconcile import MemberTotals, differences
from chalicelib.services import holds
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store import risk as risk_store
from chalicelib.store.models import AccountItem, LedgerItem, ProfileItem, TableItem

# Members checked per step (each costs a handful of requests).
PAGE = 50


def member_ids(program_id: str) -> Iterator[str]:
    for shard in range(keys.MEMBER_SHARDS):
        for item in TableItem.gsi1.query(keys.members_list_partition(program_id, shard)):
            if isinstance(item, ProfileItem):
                yield item.member_id


# A member changed this many times while we read it is reported as read the last time.
_READ_ATTEMPTS = 5


def totals(program_id: str, member_id: str) -> MemberTotals | None:
    """One moment's figures. The account, ledger rows, holds and pending entries are separate
    reads, and the service keeps changing them (a till, the frequent job releasing a hold): every
    change bumps the account's version in the same transaction, so when the version read after
    the others is the one read first, nothing moved in between; otherwise read again."""
    found = None
    for _ in range(_READ_ATTEMPTS):
        found, version = _read_totals(program_id, member_id)
        if found is None or _account_version(program_id, member_id) == version:
            return found
    return found


def _account_version(program_id: str, member_id: str) -> int | None:
    account = store.get_item(AccountItem, keys.account(program_id, member_id))
    return int(account.version) if isinstance(account, AccountItem) else None


def _read_totals(program_id: str, member_id: str) -> tuple[MemberTotals | None, int | None]:
    record = store.member(program_id, member_id)
    if record is None:
        return None, None
    rows = store.all_ledger_rows(program_id, member_id)
    open_holds = sum(int(hold.points) for hold in holds.open_holds(program_id, member_id))
    account = record.account
    totals_now = MemberTotals(
        member_id=member_id, points=int(account.points), held=int(account.held), debt=int(account.debt),
        growth=int(account.growth),
        ledger_points=sum(int(row.points) for row in rows),
        ledger_growth=sum(int(row.growth or 0) for row in rows),
        lots_remaining=sum(int(lot.remaining) for lot in record.lots),
        open_holds=open_holds,
        pending=int(account.pending or 0),
        ledger_pending=sum(int(row.pending or 0) for row in rows),
        open_pending=sum(int(item.remaining) for item in risk_store.member_pending(program_id, member_id)
                         if item.status == "pending"),
    )
    return totals_now, int(account.version)


def check(program_id: str, member_id: str) -> list[str]:
    found = totals(program_id, member_id)
    return differences(found) if found else ["account or profile missing"]


def reconcile_program(program_id: str) -> dict[str, Any]:
    """Every member at once (the CLI and `make reconcile`; the daily job pages, see reconcile_step)."""
    checked = 0
    problems: list[dict[str, Any]] = []
    for member_id in member_ids(program_id):
        issues = check(program_id, member_id)
        checked += 1
        if issues:
            problems.append({"member_id": member_id, "differences": issues})
    return {"program_id": program_id, "members_checked": checked, "members_with_differences": len(problems),
            "differences": problems[:100], "clean": not problems}


def swept_shards(as_of: dt.date) -> list[int]:
    """The member shards the weekly sweep checks on `as_of`: every shard once in any 7 days."""
    return [shard for shard in range(keys.MEMBER_SHARDS) if shard % 7 == as_of.toordinal() % 7]


def reconcile_step(ctx: Any) -> Any:
    """One page: of the changed members (phase "changed", shard by shard, skipping shards swept
    today), then of the sweep's shards (phase "sweep")."""
    from chalicelib.jobs import Step

    swept = swept_shards(ctx.as_of)
    phase = ctx.state.get("phase", "changed")
    shard = int(ctx.state.get("shard", 0))
    if phase == "changed":
        while shard in swept:
            shard += 1
        if shard >= keys.MEMBER_SHARDS:
            return Step(False, {"phase": "sweep", "shard": 0}, _page_summary(ctx, [], 0, 0))
        changed_on = (ctx.as_of - dt.timedelta(days=1)).isoformat()
        query = TableItem.gsi2.query(keys.activity_queue_partition(ctx.program_id, changed_on, shard), limit=PAGE,
                                     last_evaluated_key=ctx.state.get("last_key"))
        members = [row.member_id for row in query if isinstance(row, LedgerItem)]
    else:
        if shard >= len(swept):
            return Step(True, {}, _page_summary(ctx, [], 0, 0))
        query = TableItem.gsi1.query(keys.members_list_partition(ctx.program_id, swept[shard]), limit=PAGE,
                                     last_evaluated_key=ctx.state.get("last_key"))
        members = [item.member_id for item in query if isinstance(item, ProfileItem)]
    problems = [{"member_id": m, "differences": issues} for m in dict.fromkeys(members)
                if (issues := check(ctx.program_id, m))]
    changed, sweep = (len(members), 0) if phase == "changed" else (0, len(members))
    summary = _page_summary(ctx, problems, changed, sweep)
    if query.last_evaluated_key:
        return Step(False, {"phase": phase, "shard": shard, "last_key": query.last_evaluated_key}, summary)
    return Step(False, {"phase": phase, "shard": shard + 1}, summary)


def _page_summary(ctx: Any, problems: list[dict[str, Any]], changed: int, swept: int) -> dict[str, Any]:
    """Counters add up across pages (jobs._merge); the list and `clean` carry the run's total."""
    found = [*ctx.summary.get("differences", []), *problems]
    return {"program_id": ctx.program_id, "members_checked": changed + swept, "changed_members_checked": changed,
            "swept_members_checked": swept, "swept_shards": swept_shards(ctx.as_of),
            "members_with_differences": len(problems), "differences": found[:100],
            "clean": bool(ctx.summary.get("clean", True)) and not problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check every member's balance against the ledger and lots.")
    parser.add_argument("--program", action="append", help="program id (default: every program)")
    args = parser.parse_args(argv)
    from chalicelib.store import programs

    reports = [reconcile_program(p) for p in (args.program or programs.program_ids())]
    print(json.dumps(reports, ensure_ascii=False, indent=2))
    return 0 if all(r["clean"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())

