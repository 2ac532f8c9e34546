"""Table changes in, reactions out.

The stream handler hands each record to the reactors registered for the changed item's kind.
Powertools' BatchProcessor isolates failures: a record whose reactor raises is reported in
`batchItemFailures`, so Lambda retries from it (bisecting) and finally sends it to the on-failure
queue, while the records before it are not redone. Reactors must be idempotent: records can be
delivered more than once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

Reactor = Callable[[str, dict[str, Any], dict[str, Any]], None]
_REACTORS: dict[str, list[Reactor]] = defaultdict(list)


def reacts_to(kind: str) -> Callable[[Reactor], Reactor]:
    """Register `reactor(event_name, new_image, old_image)` for items of `kind`."""

    def register(reactor: Reactor) -> Reactor:
        _REACTORS[kind].append(reactor)
        return reactor

    return register


def handle_record(record: Any) -> None:
    new, old = record.dynamodb.new_image or {}, record.dynamodb.old_image or {}
    kind = (new or old).get("kind")
    for reactor in _REACTORS.get(kind, ()):
        reactor(record.event_name.name, new, old)  # INSERT | MODIFY | REMOVE


def handle_batch(event: dict[str, Any]) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from chalicelib.events import reactions  # noqa: F401  (registers the reactors)

    if not event.get("Records"):
        return {"batchItemFailures": []}

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return process_partial_response(event=event, record_handler=handle_record, processor=processor)
