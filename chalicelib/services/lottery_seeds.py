"""A lottery's server seed: generated once (32 random bytes, never from the repo), kept encrypted
under the data key, its SHA-256 published before the lottery opens, revealed after its end.
Apart from services/lottery.py so that saving a program's rules can publish seeds without
importing the draw (and its imports)."""

from __future__ import annotations

import secrets
from typing import Any

from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition

from chalicelib import clock, crypto
from chalicelib.domain import lottery as rules
from chalicelib.domain.program import ProgramConfig
from chalicelib.settings import Settings
from chalicelib.store import keys
from chalicelib.store import ledger as store
from chalicelib.store.models import LotteryPrizeItem, LotterySeedItem


def publish_seeds(settings: Settings, config: ProgramConfig) -> None:
    """Every lottery of the program gets its secret seed and its prizes' stock items, once
    (conditional puts: a seed is never replaced, so its published hash stays true)."""
    for lottery in config.lotteries:
        ensure_seed(settings, config.program_id, lottery.lottery_id)
        for prize in lottery.prizes:
            if prize.stock is None:
                continue
            item = LotteryPrizeItem(*keys.lottery_prize(config.program_id, lottery.lottery_id, prize.prize_id),
                                    program_id=config.program_id, lottery_id=lottery.lottery_id,
                                    prize_id=prize.prize_id, stock=prize.stock, left=prize.stock)
            _put_once(item, LotteryPrizeItem.pk.does_not_exist())


def _put_once(item: Any, condition: Condition) -> bool:
    try:
        item.save(condition=condition)
        return True
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise


def ensure_seed(settings: Settings, program_id: str, lottery_id: str) -> LotterySeedItem:
    key = keys.lottery_seed(program_id, lottery_id)
    found = store.get_item(LotterySeedItem, key)
    if isinstance(found, LotterySeedItem):
        return found
    seed = secrets.token_bytes(32)  # never from the repo: random, kept encrypted under the data key
    item = LotterySeedItem(*key, program_id=program_id, lottery_id=lottery_id,
                           seed_enc=crypto.encrypt(settings, seed.hex(), context=key[0]),
                           seed_sha256=rules.commitment(seed), created_at=clock.stamp(clock.now()))
    if _put_once(item, LotterySeedItem.pk.does_not_exist()):
        return item
    return store.get_item(LotterySeedItem, key)


def seed_of(settings: Settings, item: LotterySeedItem) -> bytes:
    return bytes.fromhex(crypto.decrypt(settings, item.seed_enc, context=item.pk))
