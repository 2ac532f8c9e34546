"""Scheduled jobs (placeholder until the job registry lands)."""

from __future__ import annotations

from typing import Any

DAILY = "daily"
FREQUENT = "frequent"


def run_scheduled(group: str, settings: Any) -> dict[str, Any]:
    return {"group": group, "runs": []}
