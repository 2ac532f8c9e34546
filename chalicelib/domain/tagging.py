"""Computed tags (insight, second pass): what the nightly `computed-tags` job says of a member. Pure.

Kept apart from staff's manual tags (TagsItem.computed vs .manual); segments read both.
- `rfm:<segment>`   the member's named RFM segment (the `rfm` job's latest scores)
- `repeat_buyer`    2+ orders (net of full refunds) in the RFM window
- `new_member`      enrolled within NEW_MEMBER_DAYS of the day
- `dormant`         no member-initiated activity for DORMANT_DAYS (or none since enrolling that long ago)
"""

from __future__ import annotations

import datetime as dt
import re

NEW_MEMBER_DAYS = 30
DORMANT_DAYS = 90
_NOT_TAG = re.compile(r"[^\w.:-]")


def tag_of_segment(segment: str) -> str:
    """A segment name as a tag (tags are `[\\w.:-]{1,32}`)."""
    return ("rfm:" + _NOT_TAG.sub("_", segment))[:32]


def computed_tags(today: dt.date, enrolled_on: dt.date | None, last_active_on: dt.date | None,
                  rfm_segment: str | None, frequency: int | None) -> frozenset[str]:
    tags = set()
    if rfm_segment:
        tags.add(tag_of_segment(rfm_segment))
    if frequency is not None and frequency >= 2:
        tags.add("repeat_buyer")
    if enrolled_on is not None and (today - enrolled_on).days < NEW_MEMBER_DAYS:
        tags.add("new_member")
    since = last_active_on or enrolled_on
    if since is not None and (today - since).days >= DORMANT_DAYS:
        tags.add("dormant")
    return frozenset(tags)
