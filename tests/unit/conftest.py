"""Unit tests: the pure domain rules only. No network, no AWS, no WeChat.

Every unit test runs with outbound connections blocked, so a test that reaches for I/O fails loudly
instead of quietly depending on a service. Hypothesis runs derandomized and without an example
database, so CI sees the same examples on every run.
"""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import HealthCheck, settings

from chalicelib.domain.program import ProgramConfig, demo_program

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# A local, randomized profile for hunting: HYPOTHESIS_PROFILE=explore pytest tests/unit
settings.register_profile("explore", deadline=None, database=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class NetworkBlocked(RuntimeError):
    """Raised when a unit test tries to open a connection. Not an OSError on purpose: code that
    tolerates network errors must not swallow it."""


def _refuse(*args, **kwargs):
    raise NetworkBlocked(f"unit tests may not use the network (attempted with {args[1:] or args!r})")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)


@pytest.fixture
def demo() -> ProgramConfig:
    return demo_program()
