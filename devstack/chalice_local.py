"""`chalice local`, made to behave like API Gateway where the app can tell the difference.

- Chalice's local server keeps socketserver's default backlog of 5 pending connections, so 50
  clients connecting at once (as the concurrency tests do, and as API Gateway would accept) get
  connection resets.
- Chalice's local router hands path parameters to the app still percent-encoded (`a%3Ab`), where
  API Gateway decodes them (`a:b`); the app's id checks and the till signature's canonical path
  must see what they see on AWS.

- For load runs (`make load`) only, with `DEVSTACK_DYNAMODB_RECORD` set: every DynamoDB call
  of a labelled request is recorded (`dynamodb_recorder.py`).

Same CLI, same arguments: `python -m devstack.chalice_local local ...`.
"""

import sys
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

if __name__ == "__main__":
    # Load runs only (bench/load): DEVSTACK_DYNAMODB_RECORD names the file of per-request DynamoDB calls.
    from devstack import dynamodb_recorder

    dynamodb_recorder.install_from_environment()
    sys.exit(main())
