"""Paged lists over GSI1: one way to read a page and to turn its position into a cursor.

The cursor is the GSI1 position DynamoDB returned, base64 JSON. Decoding checks that it lies in
the partition being read, so a cursor never opens another member's (or program's) list; the API
also seals cursors with a MAC (api/http.py), so callers can only hand back ones we issued.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import InvalidRequest
from chalicelib.store.models import TableItem


@dataclass(frozen=True)
class Page:
    items: list[TableItem]
    next_cursor: str | None
    first: bool  # read from the start of the list (no cursor given)


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None, partition: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        raise InvalidRequest("invalid cursor") from None
    if not isinstance(key, dict) or not isinstance(key.get("gsi1pk"), dict) or key["gsi1pk"].get("S") != partition:
        raise InvalidRequest("invalid cursor")
    return key


def gsi1_page(partition: str, limit: int, cursor: str | None, *, newest_first: bool) -> Page:
    """One page of a GSI1 partition, in sort-key order (reversed when `newest_first`)."""
    start = decode_cursor(cursor, partition)
    query = TableItem.gsi1.query(partition, scan_index_forward=not newest_first, limit=limit,
                                 last_evaluated_key=start)
    items = list(query)
    following = encode_cursor(query.last_evaluated_key) if len(items) == limit else None
    return Page(items, following, start is None)
