"""The lottery's draw, pure: the reduction has no modulo bias, the odds match the weights
(chi-square over 100,000 draws), out-of-stock prizes leave the table, configurations are checked."""

from __future__ import annotations

import datetime as dt
import hashlib
import math

import pytest
from pydantic import ValidationError

from chalicelib.domain import lottery as rules
from chalicelib.domain.program import demo_wheel

SPACE = 1 << 256
TZ = dt.timezone(dt.timedelta(hours=8))


def test_rejection_sampling_uses_no_candidate_at_or_above_the_last_full_multiple():
    total = 3
    limit = SPACE - SPACE % total  # 2**256 = 1 (mod 3): one value is rejected
    assert SPACE % total == 1
    # The one value that would bias residue 0 is skipped; the next candidate is used.
    assert rules.reduce_unbiased([limit, 5], total) == 5 % 3
    assert rules.reduce_unbiased([limit - 1], total) == (limit - 1) % 3
    with pytest.raises(ValueError):
        rules.reduce_unbiased([limit], total)


def test_every_residue_has_exactly_the_same_number_of_accepted_candidates():
    """Exhaustively on a small space (the same arithmetic as 2**256): no residue is favoured."""
    space = 1 << 8
    for total in range(1, 40):
        limit = space - space % total
        counts = [0] * total
        for x in range(limit):
            counts[x % total] += 1
        assert len(set(counts)) == 1
        assert limit % total == 0


def test_a_draw_is_the_hmac_of_member_and_number_reduced():
    seed = bytes(range(32))
    import hmac

    x = int.from_bytes(hmac.new(seed, b"m1:7", hashlib.sha256).digest(), "big")
    assert rules.roll(seed, "m1", 7, 100) == x % 100  # no rejection for this one (probability ~ 2**-249)
    assert rules.roll(seed, "m1", 7, 100) == rules.roll(seed, "m1", 7, 100)
    assert rules.commitment(seed) == hashlib.sha256(seed).hexdigest()


def test_pick_walks_cumulative_weights_in_order():
    table = [("a", 2), ("b", 3), ("c", 5)]
    assert [rules.pick(table, r) for r in range(10)] == ["a"] * 2 + ["b"] * 3 + ["c"] * 5
    with pytest.raises(ValueError):
        rules.pick(table, 10)


def _chi_square_p(observed: list[int], expected: list[float]) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty approximation, good for k >= 3)."""
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected))
    k = len(observed) - 1
    z = ((statistic / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def test_chi_square_over_100000_simulated_draws_agrees_with_the_weights():
    lottery = demo_wheel()
    table = rules.table_of(lottery, {})
    total = sum(w for _, w in table)
    seed = hashlib.sha256(b"chi-square").digest()
    counts = dict.fromkeys((p for p, _ in table), 0)
    for n in range(100_000):
        prize, _ = rules.draw(seed, f"m{n % 50}", n // 50 + 1, table)
        counts[prize] += 1
    observed = [counts[p] for p, _ in table]
    expected = [100_000 * w / total for _, w in table]
    assert _chi_square_p(observed, expected) > 0.001


def test_an_out_of_stock_prize_leaves_the_table_never_turned_into_nothing():
    lottery = demo_wheel()
    full = rules.table_of(lottery, {})
    assert [p for p, _ in full] == ["p100", "p20", "cup", "coupon", "none"]
    without_cup = rules.table_of(lottery, {"cup": 0})
    assert [p for p, _ in without_cup] == ["p100", "p20", "coupon", "none"]
    assert sum(w for _, w in without_cup) == sum(w for _, w in full) - 1


def _prizes(**top):
    return [{"prize_id": "top", "name": "top", "kind": "gift", "weight": 1, "stock": 1, "value_fen": 1000, **top},
            {"prize_id": "none", "name": "谢谢参与", "kind": "nothing", "weight": 9}]


def _lottery(**changes):
    body = {"lottery_id": "l", "name": "l", "cost_points": 10, "daily_limit": 5,
            "starts_at": dt.datetime(2026, 1, 1, tzinfo=TZ), "ends_at": dt.datetime(2026, 2, 1, tzinfo=TZ),
            "prizes": _prizes(), **changes}
    return rules.Lottery.model_validate(body)


def test_configurations_are_checked():
    assert _lottery().is_open(dt.datetime(2026, 1, 15, tzinfo=TZ))
    assert _lottery().has_ended(dt.datetime(2026, 2, 1, tzinfo=TZ))
    assert _lottery(prizes=_prizes(value_fen=5_000_000)).prize("top") is not None  # 50,000 yuan exactly
    for bad in (
        {"prizes": _prizes(value_fen=5_000_001)},  # 反不正当竞争法 Art. 10
        {"prizes": _prizes()[:1] + [_prizes()[0] | {"prize_id": "x"}]},  # no "nothing"
        {"ends_at": dt.datetime(2025, 1, 1, tzinfo=TZ)},
        {"starts_at": dt.datetime(2026, 1, 1)},  # no offset
        {"prizes": [_prizes()[0] | {"kind": "points"}, _prizes()[1]]},  # a points prize without points
    ):
        with pytest.raises(ValidationError):
            _lottery(**bad)
