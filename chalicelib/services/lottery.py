"""Points lottery (积分抽奖): publishing the seed commitment, the lottery page, the draw, the audit list.

A draw is one transaction: the points leave the member's lots (account guarded by its version),
the member's draw counter moves (guarded by the count read, and by the day's count being under
the daily limit), the prize's stock drops (guarded by `left >= 1`), a points prize is credited,
and the draw row (keyed by the caller's request_id, so it is also its idempotency record) holds
the outcome and the table it was drawn from. Fairness: domain/lottery.py.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pynamodb.expressions.condition import Condition

from chalicelib import clock, ids
from chalicelib.auth.principals import MemberPrincipal
from chalicelib.domain import balance, lots
from chalicelib.domain import lottery as rules
from chalicelib.domain.program import ProgramConfig
from chalicelib.errors import DrawLimitReached, InsufficientPoints, LotteryClosed, NotFound
from chalicelib.services.idempotency import KEY_LABEL, CallerKey, TryAgain, fingerprint, reread_if_taken, with_retries
from chalicelib.services.members import resolve_member_id
from chalicelib.services.lottery_seeds import ensure_seed, publish_seeds, seed_of
from chalicelib.services.programs import program_config
from chalicelib.settings import Settings
from chalicelib.store import keys, paging
from chalicelib.store import ledger as store
from chalicelib.store.models import LotteryDrawItem, LotteryMemberItem, LotteryPrizeItem, LotterySeedItem
from chalicelib.store.tx import Transaction

COUNTER_LABEL, STOCK_LABEL = "draw_counter", "stock"




class DrawIn(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", strict=True)
    lottery_id: str = Field(pattern=ids.ID_PATTERN)
    request_id: str = Field(pattern=ids.ID_PATTERN)


def _lottery(config: ProgramConfig, lottery_id: str) -> rules.Lottery:
    lottery = config.lottery(lottery_id)
    if lottery is None:
        raise NotFound("no such lottery", code="lottery_not_found")
    return lottery


def _left(found: dict[tuple[str, str], Any], program_id: str, lottery: rules.Lottery) -> dict[str, int | None]:
    left: dict[str, int | None] = {}
    for prize in lottery.prizes:
        if prize.stock is None:
            left[prize.prize_id] = None
        else:
            item = found.get(keys.lottery_prize(program_id, lottery.lottery_id, prize.prize_id))
            left[prize.prize_id] = int(item.left) if isinstance(item, LotteryPrizeItem) else prize.stock
    return left


def _prize_view(prize: rules.Prize) -> dict[str, Any]:
    return {"prize_id": prize.prize_id, "name": prize.name, "kind": prize.kind, "points": prize.points,
            "template_id": prize.template_id}


# --- the lottery page ---------------------------------------------------------------------------

def page(settings: Settings, principal: MemberPrincipal, lottery_id: str) -> dict[str, Any]:
    """The prizes with their current odds (out-of-stock prizes shown, not counted), the rules,
    `seed_sha256`, and `seed` once the lottery has ended."""
    program_id = principal.program_id
    config = program_config(settings, program_id)
    lottery = _lottery(config, lottery_id)
    seed_item = ensure_seed(settings, program_id, lottery_id)
    prize_keys = [keys.lottery_prize(program_id, lottery_id, p.prize_id) for p in lottery.prizes if p.stock is not None]
    found = store.read_items(prize_keys) if prize_keys else {}
    left = _left(found, program_id, lottery)
    table = dict(rules.table_of(lottery, left))
    total = sum(table.values())
    now = clock.now()
    gone = [p.name for p in lottery.prizes if p.prize_id not in table]
    return {
        "lottery_id": lottery.lottery_id, "name": lottery.name, "cost_points": lottery.cost_points,
        "daily_limit": lottery.daily_limit, "starts_at": lottery.starts_at.isoformat(),
        "ends_at": lottery.ends_at.isoformat(),
        "status": "ended" if lottery.has_ended(now) else "open" if lottery.is_open(now) else "upcoming",
        "total_weight": total,
        "prizes": [{**_prize_view(p), "weight": p.weight, "stock": p.stock, "left": left[p.prize_id],
                    "available": p.prize_id in table,
                    "odds": f"{p.weight}/{total}" if p.prize_id in table else None}
                   for p in lottery.prizes],
        "notice": (f"已抽完并移出奖池: {', '.join(gone)}; 其余奖品的概率按剩余权重重新计算" if gone else None),
        "seed_sha256": seed_item.seed_sha256,
        "seed": seed_of(settings, seed_item).hex() if lottery.has_ended(now) else None,
        "fairness": "outcome = HMAC-SHA256(seed, member_id:draw_number) reduced to total_weight by rejection "
                    "sampling; recompute with tools/verify_lottery.py",
    }


# --- the draw -----------------------------------------------------------------------------------

def _merge(first: balance.Change, second: balance.Change) -> balance.Change:
    lot_changes = dict(first.lot_changes)
    for day, delta in second.lot_changes.items():
        lot_changes[day] = lot_changes.get(day, 0) + delta
    return balance.Change(second.after, lot_changes, first.repaid_debt + second.repaid_debt,
                          first.new_debt + second.new_debt)


def draw(settings: Settings, principal: MemberPrincipal, body: DrawIn) -> tuple[dict[str, Any], int]:
    program_id = principal.program_id
    member_id = resolve_member_id(principal)
    config = program_config(settings, program_id)
    lottery = _lottery(config, body.lottery_id)
    caller_key = CallerKey("request_id", keys.lottery_draw(program_id, member_id, lottery.lottery_id, body.request_id),
                           fingerprint(body, member_id=member_id))
    counter_key = keys.lottery_member(program_id, member_id, lottery.lottery_id)
    seed_key = keys.lottery_seed(program_id, lottery.lottery_id)
    prize_keys = [keys.lottery_prize(program_id, lottery.lottery_id, p.prize_id)
                  for p in lottery.prizes if p.stock is not None]

    def attempt() -> tuple[dict[str, Any], int]:
        found = store.read_items([caller_key.item_key, counter_key, seed_key, *prize_keys])
        replayed = caller_key.replay_of(found.get(caller_key.item_key))
        if replayed:
            return replayed
        now = clock.now()
        if not lottery.is_open(now):
            raise LotteryClosed("this lottery is not open now")
        seed_item = found.get(seed_key)
        if not isinstance(seed_item, LotterySeedItem):
            publish_seeds(settings, config)
            raise TryAgain
        today = config.today(now)
        counter = found.get(counter_key)
        draws = int(counter.draws) if isinstance(counter, LotteryMemberItem) else 0
        today_count = int(counter.day_count) if isinstance(counter, LotteryMemberItem) and counter.day == today.isoformat() \
            else 0
        if today_count >= lottery.daily_limit:
            raise DrawLimitReached(f"at most {lottery.daily_limit} draws a day")
        record = store.member(program_id, member_id)
        if record is None:
            raise NotFound("no such member", code="member_not_found")
        try:
            spent = balance.spend(store.balances_of(record.account), record.lot_values, today, lottery.cost_points)
        except (balance.InDebt, lots.NotEnoughPoints):
            raise InsufficientPoints(f"a draw costs {lottery.cost_points} points") from None
        table = rules.table_of(lottery, _left(found, program_id, lottery))
        number = draws + 1
        prize_id, r = rules.draw(seed_of(settings, seed_item), member_id, number, table)
        prize = lottery.prize(prize_id)
        assert prize is not None
        change = spent
        if prize.kind == "points":
            change = _merge(spent, balance.earn(spent.after, prize.points, lots.expiry_day(config.expiry, today)))
        stamp, draw_id = clock.stamp(now), ids.new_entry_id()
        answer = {"draw_id": draw_id, "lottery_id": lottery.lottery_id, "draw_number": number,
                  "prize": None if prize.kind == "nothing" else _prize_view(prize),
                  "points_spent": lottery.cost_points, "points_balance": change.after.points}
        cost_row = store.LedgerRow(
            key=keys.member_operation(program_id, member_id, "draw", f"{lottery.lottery_id}:{body.request_id}"),
            type="redeem", points=-lottery.cost_points, reason=f"抽奖 {lottery.name}",
            ref=f"lottery:{lottery.lottery_id}", request_hash=None, response=None,
            detail={"lottery_id": lottery.lottery_id, "draw_id": draw_id})
        prize_row = None if prize.kind != "points" else store.LedgerRow(
            key=keys.member_operation(program_id, member_id, "draw-prize", f"{lottery.lottery_id}:{body.request_id}"),
            type="earn", points=prize.points, reason=f"抽奖中奖 {prize.name}", ref=f"lottery:{lottery.lottery_id}",
            request_hash=None, response=None, detail={"lottery_id": lottery.lottery_id, "draw_id": draw_id})

        def the_draw(tx: Transaction) -> None:
            moved: Condition = (LotteryMemberItem.draws == draws) & (
                (LotteryMemberItem.day != today.isoformat()) | (LotteryMemberItem.day_count < lottery.daily_limit)) \
                if isinstance(counter, LotteryMemberItem) else LotteryMemberItem.pk.does_not_exist()
            tx.update(LotteryMemberItem(*counter_key),
                      actions=[LotteryMemberItem.kind.set(LotteryMemberItem), LotteryMemberItem.draws.set(number),
                               LotteryMemberItem.day.set(today.isoformat()),
                               LotteryMemberItem.day_count.set(today_count + 1)],
                      condition=moved, label=COUNTER_LABEL)
            if prize.stock is not None:
                tx.update(LotteryPrizeItem(*keys.lottery_prize(program_id, lottery.lottery_id, prize.prize_id)),
                          actions=[LotteryPrizeItem.left.add(-1)], condition=LotteryPrizeItem.left >= 1,
                          label=STOCK_LABEL)
            tx.put(LotteryDrawItem(
                *caller_key.item_key, program_id=program_id, member_id=member_id, lottery_id=lottery.lottery_id,
                draw_id=draw_id, draw_number=number, r=r, table=[list(row) for row in table], prize_id=prize.prize_id,
                prize_kind=prize.kind, template_id=prize.template_id, points_spent=lottery.cost_points,
                points_won=prize.points, created_at=stamp, request_hash=caller_key.request_hash,
                response=caller_key.answer(answer, 201),
                gsi1pk=keys.lottery_draws(program_id, lottery.lottery_id), gsi1sk=f"{stamp}#{draw_id}"),
                LotteryDrawItem.pk.does_not_exist(), label=KEY_LABEL)
            if prize_row is not None:  # the cost's own row, its balance after the cost alone
                tx.put(store.ledger_item(program_id, member_id, cost_row, spent.after.points, stamp,
                                         ids.new_entry_id()), label="cost_row")

        with reread_if_taken(COUNTER_LABEL, STOCK_LABEL, "ledger"):
            store.apply_change(program_id, record.account, change,
                               {lot.expires_on: lot.remaining for lot in record.lot_values},
                               prize_row or cost_row, stamp, draw_id if prize_row is None else ids.new_entry_id(),
                               extra=the_draw, activity_day=today.isoformat())
        return answer, 201

    return with_retries(settings, attempt)


# --- audit: every draw of a lottery -------------------------------------------------------------

def draw_view(item: LotteryDrawItem) -> dict[str, Any]:
    return {"draw_id": item.draw_id, "member_id": item.member_id, "draw_number": int(item.draw_number),
            "r": int(item.r), "table": [[str(p), int(w)] for p, w in item.table], "prize_id": item.prize_id,
            "created_at": item.created_at}


def draws(settings: Settings, program_id: str, lottery_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """Oldest first: what `tools/verify_lottery.py` recomputes once the seed is revealed."""
    _lottery(program_config(settings, program_id), lottery_id)
    found = paging.gsi1_page(keys.lottery_draws(program_id, lottery_id), limit, cursor, newest_first=False)
    return {"items": [draw_view(item) for item in found.items if isinstance(item, LotteryDrawItem)],
            "next_cursor": found.next_cursor}

