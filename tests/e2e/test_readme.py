"""The README's example commands, run as a new user would, against the real local stack."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _try_it_block() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"Try it:\s*```sh\n(.*?)```", text, flags=re.S)
    assert block, "the README's 'Try it' block is gone"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_commands_work_as_written(stack):
    lines = _try_it_block()
    port = stack.api.rsplit(":", 1)[1]
    # The same lines, pointed at this test's stack; each answer printed on a line of its own.
    script = "set -euo pipefail\n" + "\n".join(
        line.replace("localhost:8000", f"localhost:{port}") + ("; echo" if line.startswith("curl") else "")
        for line in lines)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(answers) == sum(line.startswith("curl") for line in lines)
    assert not [a for a in answers if "error" in a], answers
    card = answers[-2]
    assert (card["nickname"], card["phone"], card["tier"]["code"]) == ("Alice", "138****0000", "normal")
    assert answers[-1]["program_id"] == "demo"


def test_the_readme_top_up_commands_work_as_written(stack):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```sh\n(TOP_UP=.*?)```", text, flags=re.S)
    assert block, "the README's top-up block is gone"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    login = _try_it_block()[:3]  # J, TOKEN (a fresh member: alice's session is the first test's)
    api_port, wechat_port = stack.api.rsplit(":", 1)[1], stack.wechat.rsplit(":", 1)[1]
    script = "set -euo pipefail\n" + "\n".join(
        line.replace("dev-alice", "dev-readme-saver").replace("localhost:8000", f"localhost:{api_port}")
        .replace("localhost:8001", f"localhost:{wechat_port}") + ("; echo" if line.startswith("curl") else "")
        for line in login + lines)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert answers[-2]["deliveries"] == [200, 200, 200]
    history = answers[-1]["items"]
    assert [(h["type"], h["balance_after_fen"]) for h in history] == [("top_up", 11_000)]
