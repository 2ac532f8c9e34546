"""Small builders shared by the unit tests (not tests themselves)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from chalicelib.domain.card import CardFacts
from chalicelib.domain.lots import Lot
from chalicelib.domain.program import Campaign, ProgramConfig, demo_program


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def lots_of(spec: dict[str, int]) -> list[Lot]:
    return [Lot(d(day), remaining) for day, remaining in spec.items()]


def program(**overrides: Any) -> ProgramConfig:
    """The demo program with some top-level fields replaced, validated like any staff edit."""
    data = demo_program().model_dump()
    data.update(overrides)
    return ProgramConfig.model_validate(data)


def with_campaigns(*campaigns: Campaign, points_per_yuan: int = 1, growth_per_yuan: int = 1) -> ProgramConfig:
    return program(earning={"points_per_yuan": points_per_yuan, "growth_per_yuan": growth_per_yuan,
                            "campaigns": list(campaigns)})


def campaign(code: str, starts_on: str = "2025-06-01", ends_on: str = "2025-06-30", *, multiplier_pct: int = 100,
             bonus_threshold_fen: int | None = None, bonus_points: int = 0) -> Campaign:
    return Campaign(code=code, name=code, starts_on=d(starts_on), ends_on=d(ends_on), multiplier_pct=multiplier_pct,
                    bonus_threshold_fen=bonus_threshold_fen, bonus_points=bonus_points)


def tier_spec(code: str, level: int, threshold: int, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name": code, "level": level, "threshold": threshold, **extra}


_CARD_DEFAULTS: dict[str, Any] = {
    "member_id": "m-1", "nickname": "小明", "birthday": "1990-05-01", "tier_code": "normal", "growth": 0,
    "growth_lifetime": 0, "held": 0, "debt": 0, "stored_value_fen": 0, "invite_code": "INV123", "invited_count": 0,
    "phone_masked": None, "enrolled_at": "2025-01-01T10:00:00+08:00",
}


def card_facts(**overrides: Any) -> CardFacts:
    """CardFacts with plain defaults for whichever fields the dataclass declares (it grows as the
    card does), overridden as given."""
    declared = {f.name for f in dataclasses.fields(CardFacts)}
    values = {name: value for name, value in _CARD_DEFAULTS.items() if name in declared}
    if "growth_lifetime" in declared and "growth" in overrides and "growth_lifetime" not in overrides:
        values["growth_lifetime"] = overrides["growth"]
    return CardFacts(**{**values, **overrides})
