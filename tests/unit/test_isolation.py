"""The unit suite's own guarantees: the domain is importable without the cloud/WeChat stack, and
unit tests cannot reach the network."""

from __future__ import annotations

import json
import pkgutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.conftest import NetworkBlocked

ROOT = Path(__file__).resolve().parents[2]
# Every module of the package, found on disk: a new domain module is checked without a list to update.
DOMAIN_MODULES = sorted(f"chalicelib.domain.{info.name}"
                        for info in pkgutil.iter_modules([str(ROOT / "chalicelib" / "domain")]))
FORBIDDEN = {"boto3", "botocore", "pynamodb", "wechatpy"}


def test_domain_modules_import_without_aws_or_wechat_libraries():
    """In a fresh interpreter (this process may already hold boto3 from other tests), importing
    every domain module pulls in none of boto3, botocore, pynamodb, wechatpy."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {DOMAIN_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    top_level = set(json.loads(done.stdout))
    assert len(DOMAIN_MODULES) >= 10 and "chalicelib.domain.checkin" in DOMAIN_MODULES
    assert "chalicelib" in top_level
    assert top_level & FORBIDDEN == set()


def test_domain_import_time_profile_shows_no_aws_or_wechat_libraries():
    """The same check through `-X importtime`, which lists every module actually imported."""
    imports = "; ".join(f"import {name}" for name in DOMAIN_MODULES)
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", imports], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "chalicelib.domain.balance" in imported
    assert {name for name in imported if name.split(".")[0] in FORBIDDEN} == set()


@pytest.mark.parametrize("attempt", [
    pytest.param(lambda: socket.create_connection(("127.0.0.1", 9)), id="create_connection"),
    pytest.param(lambda: socket.socket().connect(("127.0.0.1", 9)), id="socket.connect"),
    pytest.param(lambda: socket.socket().connect_ex(("127.0.0.1", 9)), id="socket.connect_ex"),
    pytest.param(lambda: socket.getaddrinfo("example.com", 443), id="getaddrinfo"),
])
def test_network_is_blocked_in_unit_tests(attempt):
    with pytest.raises(NetworkBlocked):
        attempt()
