"""Table changes in, reactions out.

The stream handler hands each record to the reactions listed for the changed item's kind (the
table comes from `wiring.py`; this module imports none of them). Powertools' BatchProcessor
isolates failures: a record whose reaction raises is reported in `batchItemFailures`, so Lambda
retries from it (bisecting) and finally sends it to the on-failure queue, while the records
before it are not redone. Reactions must be idempotent: records can be delivered more than once.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

# reaction(event_name, new_image, old_image); event_name is INSERT | MODIFY | REMOVE
Reaction = Callable[[str, dict[str, Any], dict[str, Any]], None]
Reactions = Mapping[str, Sequence[Reaction]]


def handle_record(record: Any, reactions: Reactions) -> None:
    new, old = record.dynamodb.new_image or {}, record.dynamodb.old_image or {}
    kind = str((new or old).get("kind") or "")
    for reaction in reactions.get(kind, ()):
        reaction(record.event_name.name, new, old)


def handle_batch(event: dict[str, Any], reactions: Reactions) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    if not event.get("Records"):
        return {"batchItemFailures": []}

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    return dict(process_partial_response(event=event, record_handler=lambda record: handle_record(record, reactions),
                                         processor=processor))
