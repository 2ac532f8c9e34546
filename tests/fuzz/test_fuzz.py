"""Every operation of the OpenAPI document, fuzzed against the running local stack: no answer may
be a 5xx, and every answer must be one the document declares for its operation (status, content
type, `X-Request-Id`, body schema). Requests carry valid credentials (`support.py`); schemathesis'
`ignored_auth` check sends successful ones again without them and expects a 401."""

from __future__ import annotations

from typing import Any

import requests
import schemathesis

from app import app
from chalicelib.api import openapi
from tests.fuzz import support

# The document is generated in-process: the stack does not exist yet when tests are collected, and
# schemathesis' lazy `from_fixture` loader breaks on pytest 9.2 (it sets `Node._nodeid`, gone in
# 9.2). test_the_stack_serves_this_document checks that the stack serves this same document.
DOCUMENT = openapi.build_document(app)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=support.config())
support.register_hooks(schema, DOCUMENT)


def test_the_stack_serves_this_document(world: support.World) -> None:
    assert requests.get(f"{world.api}/openapi.json", timeout=10).json() == DOCUMENT


@schema.parametrize()
def test_the_api_answers_as_documented(case: Any, world: support.World) -> None:
    security = case.operation.definition.raw.get("security", [])
    response = case.call_and_validate(base_url=world.api, auth=world.auth_for(security),
                                      timeout=support.REQUEST_TIMEOUT_SECONDS)
    support.TALLY[(case.operation.label, response.status_code)] += 1
    if case.operation.label == "PUT /v1/admin/program" and response.status_code == 200:
        world.restore_rules()
