"""Reconciliation: check every member of a program against the ledger invariant (pending points
are their own bucket: account = ledger = open pending entries); change nothing.

Run it with `make reconcile` (or `python -m chalicelib.services.reconcile --program demo`), from
the admin jobs endpoint (`reconcile`), or let the daily schedule run it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Iterator

from chalicelib.domain.reconcile import MemberTotals, differences
from chalicelib.services import holds
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store import risk as risk_store
from chalicelib.store.models import AccountItem, ProfileItem, TableItem


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


def reconcile_program(program_id: str) -> dict[str, Any]:
    checked = 0
    problems: list[dict[str, Any]] = []
    for member_id in member_ids(program_id):
        found = totals(program_id, member_id)
        checked += 1
        issues = differences(found) if found else ["account or profile missing"]
        if issues:
            problems.append({"member_id": member_id, "differences": issues})
    return {"program_id": program_id, "members_checked": checked, "members_with_differences": len(problems),
            "differences": problems[:100], "clean": not problems}


def reconcile_step(ctx: Any) -> Any:
    from chalicelib.jobs import Step

    return Step(done=True, summary=reconcile_program(ctx.program_id))


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

