"""Entry point for DynamoDB stream batches (placeholder until the router lands)."""

from __future__ import annotations

from typing import Any


def handle_batch(event: dict[str, Any]) -> dict[str, Any]:
    return {"batchItemFailures": []}
