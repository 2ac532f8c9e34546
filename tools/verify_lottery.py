#!/usr/bin/env python3
"""Recompute every draw of a lottery from its revealed seed (积分抽奖 audit). Standard library only,
written apart from the service's code on purpose: it checks the service, not itself.

Once a lottery has ended, GET /v1/lotteries/{lottery_id} shows `seed` (hex) next to the
`seed_sha256` published before it opened; staff list its draws (GET
/v1/admin/lotteries/{lottery_id}/draws: member_id, draw_number, the table of prizes in stock and
their weights, r, prize_id). For each draw this script checks:

1. SHA-256(seed) is the published commitment;
2. r = the first of HMAC-SHA256(seed, "<member_id>:<n>"), then "<member_id>:<n>:1", ":2"...
   (256-bit big-endian integers) that is below the largest multiple of the table's total weight
   under 2**256, taken modulo that total (rejection sampling: no modulo bias);
3. the prize is the one whose cumulative weight range in the table holds r;
4. no member's draw number repeats.

Usage:
  python tools/verify_lottery.py --seed HEX --sha256 HEX draws.json
      (draws.json: the `items` of the draws list, or a list of such pages)
  python tools/verify_lottery.py --seed HEX --sha256 HEX --api http://127.0.0.1:8000 \\
      --admin-key dev-admin-key --lottery demo-wheel
Exit status 0: every draw recomputed; 1: the problems are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import urllib.parse
import urllib.request
from typing import Any, Iterable

SPACE = 1 << 256


def number(seed: bytes, member_id: str, draw_number: int, total: int) -> int:
    limit = SPACE - SPACE % total
    attempt = 0
    while True:
        suffix = "" if attempt == 0 else f":{attempt}"
        message = f"{member_id}:{draw_number}{suffix}".encode()
        x = int.from_bytes(hmac.new(seed, message, hashlib.sha256).digest(), "big")
        if x < limit:
            return x % total
        attempt += 1


def prize_for(table: list[list[Any]], r: int) -> str:
    for prize_id, weight in table:
        if r < int(weight):
            return str(prize_id)
        r -= int(weight)
    raise ValueError("r beyond the table")


def verify(seed_hex: str, sha256_hex: str, draws: Iterable[dict[str, Any]]) -> list[str]:
    """The problems found (empty: every draw recomputes)."""
    seed = bytes.fromhex(seed_hex)
    problems = []
    if hashlib.sha256(seed).hexdigest() != sha256_hex.lower():
        problems.append("SHA-256 of the seed is not the published seed_sha256")
    seen: set[tuple[str, int]] = set()
    for d in draws:
        member_id, n, table = d["member_id"], int(d["draw_number"]), d["table"]
        total = sum(int(w) for _, w in table)
        r = number(seed, member_id, n, total)
        prize = prize_for(table, r)
        if (member_id, n) in seen:
            problems.append(f"{d['draw_id']}: {member_id} drew number {n} twice")
        seen.add((member_id, n))
        if r != int(d["r"]) or prize != d["prize_id"]:
            problems.append(f"{d['draw_id']}: recomputed r={r} prize={prize}, recorded r={d['r']} prize={d['prize_id']}")
    return problems


def fetch_draws(api: str, admin_key: str, lottery_id: str) -> list[dict[str, Any]]:
    draws: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        url = f"{api.rstrip('/')}/v1/admin/lotteries/{urllib.parse.quote(lottery_id)}/draws?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {admin_key}"})
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - the operator's own API
            page = json.load(answer)
        draws += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return draws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", required=True, help="the revealed seed (hex)")
    parser.add_argument("--sha256", required=True, help="the seed_sha256 published before the lottery opened")
    parser.add_argument("draws_file", nargs="?", help="JSON: the draws (a list, or pages with `items`)")
    parser.add_argument("--api"), parser.add_argument("--admin-key"), parser.add_argument("--lottery")
    args = parser.parse_args(argv)
    if args.api:
        draws = fetch_draws(args.api, args.admin_key, args.lottery)
    else:
        with open(args.draws_file, encoding="utf-8") as handle:
            loaded = json.load(handle)
        pages = loaded if isinstance(loaded, list) else [loaded]
        draws = [d for page in pages for d in (page["items"] if isinstance(page, dict) and "items" in page else [page])]
    problems = verify(args.seed, args.sha256, draws)
    for problem in problems:
        print(problem)
    print(f"{len(draws)} draws checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
