"""Which member events become which WeChat subscribe messages, and what they say. Pure.

A program maps event types to templates: the template id, how each template field is filled
(a format string over the event's variables), and the mini-program page the message opens.
A plain template id uses the event's default fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import string

from pydantic import BaseModel, ConfigDict, Field, field_validator

POINTS_CHANGED = "points_changed"
TIER_CHANGED = "tier_changed"
POINTS_EXPIRING = "points_expiring"
REDEMPTION_STATUS = "redemption_status"
CHECKIN_REMINDER = "checkin_reminder"
WINBACK = "winback"
COUPON_EXPIRING = "coupon_expiring"
MEMBERSHIP_EXPIRING = "membership_expiring"
CAMPAIGN = "campaign"  # insight (issue 15): a subscribe-message campaign to a segment
EVENTS = (POINTS_CHANGED, TIER_CHANGED, POINTS_EXPIRING, REDEMPTION_STATUS, CHECKIN_REMINDER, WINBACK,
          COUPON_EXPIRING, MEMBERSHIP_EXPIRING, CAMPAIGN)

# Ledger row types a member hears about (holds and releases are part of a checkout they see).
NOTIFIED_LEDGER_TYPES = {"earn", "redeem", "expire", "reverse", "adjust"}

DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    POINTS_CHANGED: {"thing1": "{reason}", "number2": "{points}", "number3": "{balance}", "date4": "{date}"},
    TIER_CHANGED: {"thing1": "{tier_name}", "thing2": "{from_tier_name}", "date3": "{date}"},
    POINTS_EXPIRING: {"number1": "{points}", "date2": "{expires_on}", "thing3": "{days_left}天后到期"},
    REDEMPTION_STATUS: {"thing1": "{reward}", "phrase2": "{status}", "number3": "{points}"},
    CHECKIN_REMINDER: {"thing1": "今日签到可得{points}积分", "number2": "{streak}"},
    WINBACK: {"thing1": "好久不见,{points}积分等你使用", "number2": "{days_idle}"},
    COUPON_EXPIRING: {"thing1": "{name}", "number2": "{count}", "date3": "{valid_until}",
                      "thing4": "{days_left}天后到期"},
    MEMBERSHIP_EXPIRING: {"thing1": "{plan_name}", "date2": "{until}", "thing3": "{days_left}天后到期,续费可顺延"},
    CAMPAIGN: {"thing1": "{title}", "thing2": "{text}"},
}
DEFAULT_PAGES = {event: "pages/member/index" for event in EVENTS}

# WeChat's limits on field values: `thing` 20 characters, `phrase` 5.
_MAX_LENGTH = {"thing": 20, "phrase": 5}


class NotificationTemplate(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)
    template_id: str = Field(min_length=1, max_length=128)
    fields: dict[str, str] | None = Field(default=None, max_length=20)  # None: the event's defaults
    page: str | None = Field(default=None, max_length=256)

    @field_validator("fields")
    @classmethod
    def _plain_placeholders(cls, fields: dict[str, str] | None) -> dict[str, str] | None:
        """Staff write these: only named `{variable}` placeholders, no format specs or
        conversions (a width like {x:>999999999} would exhaust memory when rendered)."""
        for pattern in (fields or {}).values():
            if len(pattern) > 200:
                raise ValueError("a field pattern is at most 200 characters")
            try:
                parts = list(string.Formatter().parse(pattern))
            except ValueError as exc:
                raise ValueError(f"bad field pattern {pattern!r}: {exc}") from None
            for _, name, spec, conversion in parts:
                if name is not None and (not name.isidentifier() or spec or conversion):
                    raise ValueError(f"field patterns take plain {{name}} placeholders only: {pattern!r}")
        return fields


@dataclass(frozen=True)
class Message:
    template_id: str
    data: dict[str, dict[str, str]]
    page: str | None


class _Variables(dict[str, str]):
    """Unknown variables render empty rather than failing the whole message."""

    def __missing__(self, key: str) -> str:
        return ""


def render(event: str, template: NotificationTemplate, variables: dict[str, Any]) -> Message:
    fields = template.fields if template.fields is not None else DEFAULT_FIELDS[event]
    values = _Variables({k: str(v) for k, v in variables.items()})
    data = {}
    for name, pattern in fields.items():
        text = pattern.format_map(values)
        for prefix, limit in _MAX_LENGTH.items():
            if name.startswith(prefix) and len(text) > limit:
                text = text[: limit - 1] + "…"
        data[name] = {"value": text}
    return Message(template.template_id, data, template.page or DEFAULT_PAGES.get(event))
