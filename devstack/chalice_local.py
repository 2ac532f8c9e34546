"""`chalice local`, made to behave like API Gateway where the app can tell the difference.

- Chalice's local server keeps socketserver's default backlog of 5 pending connections, so 50
  clients connecting at once (as the concurrency tests do, and as API Gateway would accept) get
  connection resets.
- Chalice's local router hands path parameters to the app still percent-encoded (`a%3Ab`), where
  API Gateway decodes them (`a:b`); the app's id checks and the till signature's canonical path
  must see what they see on AWS.
- An unknown path: Chalice's local gateway answers 403 "Missing Authentication Token" and echoes
  the request's Authorization header (a token) in the body. The AWS template's gateway responses
  answer 404 `not_found` in the contract's envelope; so does this.

- A full garbage collection freezes what survives it (`DEVSTACK_GC_FREEZE=0`: not), as in the
  embedded DynamoDB's server.

- For load runs (`make load`) only, with `DEVSTACK_DYNAMODB_RECORD` set: every DynamoDB call
  of a labelled request is recorded (`dynamodb_recorder.py`).

Same CLI, same arguments: `python -m devstack.chalice_local local ...`.
"""

import json
import sys
import uuid
from typing import Any
from urllib.parse import unquote

from chalice import local
from chalice.cli import main

local.ThreadedHTTPServer.request_queue_size = 256

_match_route = local.RouteMatcher.match_route


def _match_route_decoded(self: local.RouteMatcher, url: str) -> Any:
    matched = _match_route(self, url)
    return matched._replace(captured={name: unquote(value) for name, value in matched.captured.items()})


local.RouteMatcher.match_route = _match_route_decoded  # type: ignore[method-assign]


class _UnknownPath(local.LocalGatewayException):
    CODE = 404


_handle_request = local.LocalGateway.handle_request


def _handle_request_known_paths(self: local.LocalGateway, method: str, path: str, headers: Any, body: Any) -> Any:
    try:
        return _handle_request(self, method, path, headers, body)
    except local.ForbiddenError as refused:
        # The only ForbiddenError of this app's requests: no route for the path (no Chalice authorizers).
        if refused.headers.get("x-amzn-ErrorType") != "UnauthorizedException":
            raise
        request_id = refused.headers.get("x-amzn-RequestId") or str(uuid.uuid4())
        error = {"code": "not_found", "message": "Missing Authentication Token", "request_id": request_id}
        raise _UnknownPath({"Content-Type": "application/json", "X-Request-Id": request_id,
                            "x-amzn-RequestId": request_id, "x-amzn-ErrorType": "MissingAuthenticationTokenException"},
                           json.dumps({"error": error}).encode()) from None


local.LocalGateway.handle_request = _handle_request_known_paths  # type: ignore[method-assign]

if __name__ == "__main__":
    # Load runs only (bench/load): DEVSTACK_DYNAMODB_RECORD names the file of per-request DynamoDB calls.
    from devstack import dynamodb_recorder

    dynamodb_recorder.install_from_environment()
    # As the embedded DynamoDB's server does (serial_dynamodb.py, part 11): a full collection here
    # scans the app's and botocore's long-lived objects (about 100,000, some 50 ms with every
    # request thread stopped); what survives one is frozen, so the next scans only what is new.
    import os

    if os.environ.get("DEVSTACK_GC_FREEZE", "1") != "0":
        from devstack import serial_dynamodb

        serial_dynamodb.freeze_after_full_collections()
    sys.exit(main())
