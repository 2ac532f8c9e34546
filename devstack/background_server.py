"""An HTTP server on a daemon thread: what every stand-in of the local stack is run as."""

from __future__ import annotations

import threading
from http.server import HTTPServer
from typing import TypeVar

S = TypeVar("S", bound="BackgroundServer")


class BackgroundServer:
    """``start()``, ``url``, ``stop()``, and a context manager. The server binds when built, so a busy
    port fails at once; given port 0, ``url`` names the port it got."""

    def __init__(self, host: str, server: HTTPServer, name: str) -> None:
        self._host = host
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_address[1]}"

    def start(self: S) -> S:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
