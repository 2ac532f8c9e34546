"""Points lottery (积分抽奖): rules and the fair, auditable draw. Pure.

Fairness, as anyone can check it:
- before the lottery opens the service publishes `seed_sha256` = SHA-256 of a 32-byte secret
  server seed; the seed itself is revealed once the lottery has ended;
- a member's n-th draw (n = 1, 2, ...) reads the number
  HMAC-SHA256(seed, "<member_id>:<n>") as a 256-bit big-endian integer and reduces it to the
  total weight of the prizes still in stock WITHOUT modulo bias: numbers at or above the largest
  multiple of the total below 2**256 are rejected, and the next candidate is
  HMAC-SHA256(seed, "<member_id>:<n>:<k>") for k = 1, 2, ... (a rejection has probability below
  total / 2**256: it never happens in practice, but the reduction is exact);
- the number r in [0, total) picks the prize whose cumulative weight range holds it, prizes in
  the order the lottery lists them, out-of-stock prizes left out (their weight leaves the table;
  the odds change and the lottery page says so; never turned silently into "nothing").
Every draw records the table it used, so `tools/verify_lottery.py` recomputes each outcome.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# 反不正当竞争法 第十条: a prize draw's top prize may not be worth more than 50,000 yuan.
MAX_PRIZE_FEN = 5_000_000
_SPACE = 1 << 256
_ID = r"^[A-Za-z0-9._-]{1,64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class Prize(_Strict):
    prize_id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["points", "coupon", "gift", "nothing"]
    weight: int = Field(ge=1, le=1_000_000_000)
    # None: unlimited (a "nothing" is always unlimited).
    stock: int | None = Field(default=None, ge=0, le=100_000_000)
    points: int = Field(default=0, ge=0, le=10_000_000)
    template_id: str | None = Field(default=None, pattern=_ID)
    # What the prize is worth to a winner (retail), for the legal cap; points count at their value.
    value_fen: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _shape(self) -> Prize:
        if (self.kind == "points") != (self.points > 0):
            raise ValueError("a points prize, and only one, names its points")
        if (self.kind == "coupon") != (self.template_id is not None):
            raise ValueError("a coupon prize, and only one, names its template_id")
        if self.kind == "nothing" and (self.stock is not None or self.value_fen):
            raise ValueError("a 'nothing' prize has no stock and no value")
        return self


class Lottery(_Strict):
    lottery_id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=64)
    cost_points: int = Field(ge=1, le=1_000_000)
    starts_at: dt.datetime
    ends_at: dt.datetime
    daily_limit: int = Field(ge=1, le=1000)
    prizes: list[Prize] = Field(min_length=2, max_length=50)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("times need an offset (e.g. +08:00)")
        return value

    @model_validator(mode="after")
    def _check(self) -> Lottery:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at is not after starts_at")
        if len({p.prize_id for p in self.prizes}) != len(self.prizes):
            raise ValueError("prize ids must be unique")
        if not any(p.kind == "nothing" for p in self.prizes):
            raise ValueError("a lottery needs at least one 'nothing' prize")
        top = max(p.value_fen for p in self.prizes)
        if top > MAX_PRIZE_FEN:
            raise ValueError(f"the top prize is worth {top} fen, more than 50,000 yuan (反不正当竞争法 第十条)")
        return self

    def is_open(self, now: dt.datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def has_ended(self, now: dt.datetime) -> bool:
        return now >= self.ends_at

    def prize(self, prize_id: str) -> Prize | None:
        return next((p for p in self.prizes if p.prize_id == prize_id), None)


def commitment(seed: bytes) -> str:
    """What is published before the lottery opens: SHA-256 of the seed, lowercase hex."""
    return hashlib.sha256(seed).hexdigest()


def _candidate(seed: bytes, member_id: str, draw_number: int, attempt: int) -> int:
    message = f"{member_id}:{draw_number}" if attempt == 0 else f"{member_id}:{draw_number}:{attempt}"
    return int.from_bytes(hmac.new(seed, message.encode(), hashlib.sha256).digest(), "big")


def reduce_unbiased(candidates: Sequence[int] | None, total: int, seed: bytes = b"", member_id: str = "",
                    draw_number: int = 0) -> int:
    """A number in [0, total) from 256-bit candidates by rejection sampling: only candidates
    below the largest multiple of `total` that fits are used, so every residue is equally likely.
    `candidates` (tests) or the seed's HMAC stream supplies them."""
    if total < 1:
        raise ValueError("the total weight must be positive")
    limit = _SPACE - _SPACE % total
    attempt = 0
    while True:
        if candidates is not None:
            if attempt >= len(candidates):
                raise ValueError("every candidate was rejected")
            x = candidates[attempt]
        else:
            x = _candidate(seed, member_id, draw_number, attempt)
        if x < limit:
            return x % total
        attempt += 1


def roll(seed: bytes, member_id: str, draw_number: int, total: int) -> int:
    """The draw's number in [0, total)."""
    return reduce_unbiased(None, total, seed, member_id, draw_number)


def pick(table: Sequence[tuple[str, int]], r: int) -> str:
    """The prize whose cumulative weight range holds r; `table` = (prize_id, weight) in order."""
    for prize_id, weight in table:
        if r < weight:
            return prize_id
        r -= weight
    raise ValueError("r is beyond the table's total weight")


def table_of(lottery: Lottery, left: dict[str, int | None]) -> list[tuple[str, int]]:
    """The prizes still in stock with their weights, in the lottery's order (`left`: prize id ->
    stock left, None or absent: unlimited)."""
    return [(p.prize_id, p.weight) for p in lottery.prizes
            if p.stock is None or (left.get(p.prize_id, p.stock) or 0) > 0]


def draw(seed: bytes, member_id: str, draw_number: int, table: Sequence[tuple[str, int]]) -> tuple[str, int]:
    """(prize id, r) of a member's n-th draw against the table in stock at that moment."""
    total = sum(weight for _, weight in table)
    r = roll(seed, member_id, draw_number, total)
    return pick(table, r), r
