"""The staff audit log: who (account or admin key, role) did what (method, route, path, the body
without secrets), how it ended (status, error code), before/after where known, and the request id.

Written by the staff authenticator's `finish` after every staff write (schemes.py), so every
admin route is covered without code of its own. Rows are only ever added (store/staff.py).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import clock
from chalicelib.auth.principals import StaffAction, StaffPrincipal
from chalicelib.logs import logger
from chalicelib.store import staff as staff_store

# Fields never kept in the log, wherever they are in a body.
SECRET_FIELDS = frozenset({"password", "secret", "token", "phone", "phone_code", "code", "session_key"})
# An answer bigger than this is kept as a note, not in full (an item stays far below 400 KB).
_MAX_KEPT = 16 * 1024


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_FIELDS else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _bounded(value: Any) -> Any:
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= _MAX_KEPT else {"truncated": True, "bytes": len(text)}


def action_of(request: Any) -> StaffAction:
    route = str(request.path)
    path = route
    for name, value in (request.uri_params or {}).items():
        path = path.replace("{" + name + "}", value)
    try:
        body = json.loads(request.raw_body) if request.raw_body else None
    except ValueError:
        body = {"unreadable": True}
    return StaffAction(request.method, route, path, _bounded(redact(body)))


def record(principal: StaffPrincipal, status: int, request_id: str, answer: Any, error_code: str | None) -> None:
    action = principal.action
    assert action is not None
    fields = {"actor": principal.actor, "role": principal.role, "method": action.method, "route": action.route,
              "path": action.path, "status": status, "error_code": error_code, "body": action.body,
              "before": _bounded(redact(action.before)), "after": _bounded(redact(answer))}
    try:
        staff_store.append_audit(principal.program_id, request_id, clock.stamp(clock.now()), fields)
    except Exception:  # noqa: BLE001 - the action itself is done: its answer must not become a 5xx
        logger().exception("audit row not written", extra={"request_id": request_id, "route": action.route})
