"""Fuzzing the running local stack: the stack is the e2e one (`python -m devstack` on free ports,
stopped and checked at the end); see `support.py` for credentials, the world and the budget."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.e2e.conftest import RunningStack, stack  # noqa: F401 - the stack fixture, shared with e2e
from tests.fuzz import support


@pytest.fixture(scope="session")
def world(stack: RunningStack) -> support.World:  # noqa: F811 - the imported fixture, by name
    built = support.build_world(stack.api, stack.wechat)
    support.set_world(built)
    return built


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The run's figures: operations, requests by status, and the seed that replays it."""
    if not support.TALLY:
        return
    statuses: Counter[int] = Counter()
    for (_, status), count in support.TALLY.items():
        statuses[status] += count
    operations = {operation for operation, _ in support.TALLY}
    terminalreporter.write_line(
        f"fuzz: seed {support.SEED} (FUZZ_SEED), {support.EXAMPLES} examples per operation (FUZZ_EXAMPLES)"
        f"{', coverage phase' if support.COVERAGE else ''}: {len(operations)} operations, "
        f"{sum(support.TALLY.values())} requests, statuses {dict(sorted(statuses.items()))}")
    if terminalreporter.verbosity > 0:
        by_operation: dict[str, dict[int, int]] = {}
        for (operation, status), count in sorted(support.TALLY.items()):
            by_operation.setdefault(operation, {})[status] = count
        for operation, counts in by_operation.items():
            terminalreporter.write_line(f"  {operation}: {counts}")
