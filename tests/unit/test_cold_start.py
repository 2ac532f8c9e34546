"""What a cold start loads: `import app` registers every route but builds no feature's services,
rules or models (they load on the request that needs them: `chalicelib/api/http.py`), and every
lazily named model exists. A top-level import added back to an api module fails here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]

# Loaded by a request that needs them, never by `import app`.
NOT_AT_IMPORT = [
    "chalicelib.services.ledger",
    "chalicelib.services.members",
    "chalicelib.services.coupons",
    "chalicelib.domain.lottery",
    "chalicelib.domain.program",
    "chalicelib.jobs",
    "chalicelib.wiring",
    "chalicelib.api.schemas",
    "chalicelib.api.openapi",
    "chalicelib.store.models",
    "chalicelib.auth.tokens",
    "chalicelib.auth.till",
    "chalicelib.auth.staff",
    "wechatpy",
    "jwt",
]


def _loaded_after(statement: str) -> dict[str, list[str]]:
    probe = (f"import json, sys\n{statement}\n"
             "print(json.dumps({'modules': sorted(sys.modules), "
             "'routes': sorted(f'{m} {p}' for p, ms in app.routes.items() for m in ms)}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def at_import() -> dict[str, list[str]]:
    return _loaded_after("from app import app")


def test_import_app_registers_every_route_and_loads_no_feature(at_import):
    assert len(at_import["routes"]) > 100
    assert [name for name in NOT_AT_IMPORT if name in at_import["modules"]] == []


def test_api_modules_import_only_http_at_the_top(at_import):
    """Of ours, `import app` loads the api modules and what `http.py` needs to declare and answer a
    route (settings, logs, errors, the authenticators' declarations): nothing of a feature."""
    ours = {m for m in at_import["modules"] if m.split(".")[0] == "chalicelib"}
    allowed_prefixes = ("chalicelib.api", "chalicelib.auth.schemes", "chalicelib.auth.principals",
                        "chalicelib.auth.permissions", "chalicelib.settings", "chalicelib.logs",
                        "chalicelib.errors", "chalicelib.wechatpay_dev_keys")
    extra = sorted(m for m in ours - {"chalicelib", "chalicelib.auth"} if not m.startswith(allowed_prefixes))
    assert extra == []
    assert "chalicelib.api.report_schemas" not in ours and "chalicelib.api.inputs" not in ours


def test_a_card_read_loads_its_feature_only():
    """A member's card: members' service and the program's rules, not orders, coupons' service,
    jobs or WeChat's SDK."""
    loaded = set(_loaded_after(
        "import tests.conftest\nfrom app import app\nfrom chalicelib.api import members\n"
        "from chalicelib.services import members as service\n")["modules"])
    assert {"chalicelib.services.ledger", "chalicelib.jobs", "wechatpy"} & loaded == set()


def test_every_lazily_named_model_exists():
    """Each route's `"module:Class"` strings name a pydantic model (resolved, as the first request or
    the OpenAPI document would)."""
    from app import app
    from chalicelib.api.http import operations_of

    for op in operations_of(app):
        for model in (op.body, op.query, op.response):
            assert model is None or issubclass(model, BaseModel), (op.method, op.path)
        for ref in (op.body_ref, op.query_ref, op.response_ref, op.page_of):
            # Strings escape import-linter: they may name only what the api layer may import.
            assert not isinstance(ref, str) or ref.startswith(("chalicelib.api.", "chalicelib.services.")), ref
        if op.paged:
            assert op.query is not None and op.response is not None
