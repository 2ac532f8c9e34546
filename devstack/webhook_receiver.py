"""A merchant's webhook receiver, standing in for their CRM/ERP in the local stack and the tests.

Any ``POST`` to a path not starting with ``/_`` is a delivery: it is recorded (path, the
``X-Loyalty-*`` headers, the raw body, the status answered) and answered 200, unless told to fail
or to be slow. Register an endpoint with ``http://127.0.0.1:<port>/<any path>``.

  GET    /_received        every delivery recorded, oldest first (failed ones too, with `answered`)
  DELETE /_received        forget them, and any failure or delay still pending
  POST   /_fail            {"times": N, "status": 500}: the next N deliveries are answered so
  POST   /_slow            {"times": N, "seconds": s}: the next N deliveries wait s seconds first

Bodies and signatures are recorded as received; verifying them is the test's business (as it is
the merchant's): see README, "Webhooks".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from devstack.background_server import BackgroundServer

logger = logging.getLogger("devstack.webhooks")
MAX_BODY_BYTES = 1 << 20


class ReceiverState:
    """What the receiver got and how it should answer next; safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self._fail: list[int] = []  # statuses for the next deliveries
        self._slow: list[float] = []  # delays for the next deliveries

    def fail(self, times: int, status: int = 500) -> None:
        with self._lock:
            self._fail = [status] * times

    def slow(self, times: int, seconds: float) -> None:
        with self._lock:
            self._slow = [seconds] * times

    def take(self) -> tuple[int, float]:
        """How to answer the delivery arriving now: (status, delay)."""
        with self._lock:
            status = self._fail.pop(0) if self._fail else 200
            delay = self._slow.pop(0) if self._slow else 0.0
        return status, delay

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._received.append(entry)

    def received(self) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._received))

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._fail.clear()
            self._slow.clear()


class _Handler(BaseHTTPRequestHandler):
    server: _ReceiverServer
    server_version = "devstack-webhooks"

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(max(length, 0), MAX_BODY_BYTES)) if length else b""

    def _answer(self, payload: Any, status: int = 200) -> None:
        raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if urlsplit(self.path).path == "/_received":
            self._answer(self.server.state.received())
        else:
            self._answer({"error": "not found"}, 404)

    def do_DELETE(self) -> None:  # noqa: N802
        if urlsplit(self.path).path == "/_received":
            self.server.state.clear()
            self._answer({"ok": True})
        else:
            self._answer({"error": "not found"}, 404)

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        raw = self._body()
        if path in ("/_fail", "/_slow"):
            try:
                order = json.loads(raw or b"{}")
                times = int(order.get("times", 1))
                if path == "/_fail":
                    self.server.state.fail(times, int(order.get("status", 500)))
                else:
                    self.server.state.slow(times, float(order.get("seconds", 1.0)))
            except (ValueError, TypeError, AttributeError):
                self._answer({"error": "bad order"}, 400)
                return
            self._answer({"ok": True})
            return
        status, delay = self.server.state.take()
        if delay:
            time.sleep(delay)
        self.server.state.record({
            "path": path, "body": raw.decode("utf-8", errors="replace"), "answered": status,
            "received_at": time.time(),
            "headers": {k: v for k, v in self.headers.items() if k.lower().startswith("x-loyalty-")
                        or k.lower() in ("content-type", "host", "user-agent")},
        })
        self._answer({"ok": status < 300}, status)


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: ReceiverState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class WebhookReceiver(BackgroundServer):
    """The receiver on a daemon thread: ``start()``, ``url``, ``stop()``, ``state``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8003) -> None:
        self.state = ReceiverState()
        super().__init__(host, _ReceiverServer((host, port), self.state), "webhook-receiver")
