"""The figures beyond per-operation costs: expiry reads, import time, API overhead.

- expiry: items read / lots expired, for a run where 100 of 2,000 members have a lot expiring;
- import: `python -X importtime -c "import app"` / the same for the third-party libraries the app
  loads, imported alone (our own modules' share of a cold start); and whether a member read
  (the card) loads wechatpy;
- API / bare: wall time of an accrual through the whole API in-process (signature, parsing, the
  service, three DynamoDB calls) / a bare boto3 TransactWriteItems of the same three items, and /
  the same three DynamoDB calls made bare (what our code adds beyond DynamoDB's own work).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_STDLIB = set(sys.stdlib_module_names)
_OURS = {"app", "chalicelib", "bench", "tests", "devstack", "infra"}


def _top_level_import_us(statement: str) -> int:
    """Sum of the cumulative times of top-level imports (`-X importtime`), one run."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], cwd=ROOT,
                          capture_output=True, text=True, check=True, env=_env())
    total = 0
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if name.startswith(" ") and not name.startswith("  "):  # nested imports are indented further
            total += int(parts[1])
    return total


def _import_microseconds(statement: str, runs: int = 7) -> int:
    """What `statement` adds to the interpreter's own start-up imports, median of `runs`."""
    samples = [_top_level_import_us(statement) - _top_level_import_us("pass") for _ in range(runs)]
    return int(statistics.median(samples))


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "LOYALTY_STAGE": "local", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def libraries_of_app() -> list[str]:
    """Every module `import app` loads that is not ours (third-party and standard library)."""
    probe = "import sys; before = set(sys.modules); import app; print(' '.join(sorted(set(sys.modules) - before)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                          env=_env())
    return [n for n in done.stdout.split() if n.split(".")[0] not in _OURS]


def import_figures() -> dict[str, Any]:
    # Libraries come with bytecode (pip compiles it); give our modules theirs too, so both sides
    # are measured the same way (PYTHONDONTWRITEBYTECODE may be set, and Lambda's disk is read-only).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "app.py", "chalicelib"], cwd=ROOT, check=True)
    libraries = libraries_of_app()
    app_us = _import_microseconds("import app")
    # Some entries (private C modules, aliases like typing.io) cannot be imported by name: skip them.
    statement = ("import importlib\nfor name in %r:\n    try:\n        importlib.import_module(name)\n"
                 "    except Exception:\n        pass" % (libraries,))
    libs_us = _import_microseconds(statement)
    libraries = sorted({name.split(".")[0] for name in libraries} - _STDLIB)
    card_probe = (
        "import sys, tests.conftest\n"
        "from chalicelib.services import members\n"
        "from chalicelib.api import members as routes\n"
        "print('wechatpy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", card_probe], cwd=ROOT, capture_output=True, text=True, check=True,
                          env=_env())
    return {"app_import_ms": round(app_us / 1000, 1), "libraries_import_ms": round(libs_us / 1000, 1),
            "import_ratio": round(app_us / libs_us, 3), "libraries": libraries,
            "wechatpy_on_member_read_path": done.stdout.strip() == "True"}


def _lambda_tree(package_dir: Path, root: Path) -> tuple[Path, Path]:
    """The package as Lambda lays it out: the code zip in /var/task, the layer zip in /opt."""
    import zipfile

    task, opt = root / "task", root / "opt"
    with zipfile.ZipFile(package_dir / "deployment.zip") as code:
        code.extractall(task)
    with zipfile.ZipFile(package_dir / "layer-deployment.zip") as layer:
        layer.extractall(opt)
    return task, opt / "python" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def package_import_figures(package_dir: Path = ROOT / "build" / "dev" / "package") -> dict[str, Any] | None:
    """Import time of the packaged app, bytecode included, as a cold start sees it: `python -S`
    (no site-packages of the venv), only the extracted code and layer on the path, bytecode never
    written (Lambda's disk is read-only); against the same libraries imported alone the same way.
    None if `make package` has not been run."""
    import os
    import tempfile

    if not (package_dir / "deployment.zip").exists():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        task, layer = _lambda_tree(package_dir, Path(scratch))
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{task}:{layer}", "PYTHONDONTWRITEBYTECODE": "1",
               "LOYALTY_STAGE": "dev", "LOYALTY_TABLE_NAME": "loyalty-dev", "AWS_DEFAULT_REGION": "us-east-1",
               "LOYALTY_SECRET_IDS": "{}"}

        def top_level_us(statement: str) -> int:
            done = subprocess.run([sys.executable, "-S", "-X", "importtime", "-c", statement], cwd=task,
                                  capture_output=True, text=True, check=True, env=env)
            return sum(int(line.split("|")[1]) for line in done.stderr.splitlines()
                       if line.startswith("import time:") and line.split("|")[1].strip().isdigit()
                       and line.split("|")[2].startswith(" ") and not line.split("|")[2].startswith("  "))

        def median_us(statement: str, runs: int = 9) -> int:
            return int(statistics.median(top_level_us(statement) - top_level_us("pass") for _ in range(runs)))

        probe = "import sys; before = set(sys.modules); import app; print(' '.join(sorted(set(sys.modules) - before)))"
        loaded = subprocess.run([sys.executable, "-S", "-c", probe], cwd=task, capture_output=True, text=True,
                                check=True, env=env).stdout.split()
        libraries = [n for n in loaded if n.split(".")[0] not in _OURS]
        compiled = sum(1 for _ in task.rglob("*.pyc")) + sum(1 for _ in layer.rglob("*.pyc"))
        app_us = median_us("import app")
        libs_us = median_us("import importlib\nfor name in %r:\n    try:\n        importlib.import_module(name)\n"
                            "    except Exception:\n        pass" % (libraries,))
    return {"package_app_import_ms": round(app_us / 1000, 1), "package_libraries_import_ms": round(libs_us / 1000, 1),
            "package_import_ratio": round(app_us / libs_us, 3), "package_pyc_files": compiled}


def expiry_figures(meter: Any, settings: Any) -> dict[str, Any]:
    from chalicelib import jobs, wiring
    from chalicelib.store import keys, programs
    from chalicelib.store.models import AccountItem, LotItem

    day = dt.date(2027, 6, 30)
    with AccountItem.batch_write() as batch:
        for n in range(2_000):
            member_id = f"exp{n:05d}"
            expires_on = day if n % 20 == 0 else day + dt.timedelta(days=1 + n % 200)
            if n % 20 == 0:
                batch.save(AccountItem(*keys.account("demo", member_id), program_id="demo", member_id=member_id,
                                       tier="normal", points=10, updated_at="2026-01-01T00:00:00+00:00"))
            queue_pk, queue_sk = keys.expiry_queue("demo", expires_on.isoformat(), member_id)
            batch.save(LotItem(*keys.lot("demo", member_id, expires_on.isoformat()), program_id="demo",
                               member_id=member_id, expires_on=expires_on.isoformat(), remaining=10, earned=10,
                               gsi2pk=queue_pk, gsi2sk=queue_sk))
    programs.mark_expired_through("demo", (day - dt.timedelta(days=1)).isoformat())
    programs.clear_cache()
    programs.get_program(settings, "demo")
    with meter.measure() as tally:
        report = jobs.run_job(settings, wiring.daily_jobs(), "demo", "expire-points", day + dt.timedelta(days=1))
    lots = report["lots_expired"]
    return {"lots_expired": lots, "items_read": tally.items_read, "requests": tally.requests,
            "expiry_ratio": round(tally.items_read / lots, 3) if lots else None}


def coupon_expiry_figures(meter: Any, settings: Any) -> dict[str, Any]:
    """Items read / coupons expired, for a run where 100 of 2,000 unused coupons end that day."""
    from chalicelib import jobs, wiring
    from chalicelib.domain.coupons import CouponRules
    from chalicelib.store import keys
    from chalicelib.store.models import CouponItem

    day = dt.date(2027, 7, 31)
    rules = CouponRules(name="bench", kind="amount_off", off_fen=100, valid_days=30).model_dump(mode="json")
    with CouponItem.batch_write() as batch:
        for n in range(2_000):
            member_id, code = f"cpx{n % 500:04d}", f"BENCH{n:07d}"
            valid_until = (day if n % 20 == 0 else day + dt.timedelta(days=1 + n % 200)).isoformat()
            coupon = CouponItem(*keys.coupon("demo", code), program_id="demo", member_id=member_id,
                                coupon_id=f"cpb{n}", code=code, template_id="bench", template_version=1, rules=rules,
                                valid_from="2027-07-01", valid_until=valid_until, status="unused", channel="grant",
                                cause="bench", issued_at="2027-07-01T00:00:00.000+00:00",
                                changed_at="2027-07-01T00:00:00.000+00:00",
                                gsi1pk=keys.member_coupons("demo", member_id, "unused"),
                                gsi1sk=keys.member_coupons_sort(valid_until, f"cpb{n}"))
            coupon.gsi2pk, coupon.gsi2sk = keys.coupon_expiry_queue("demo", valid_until, member_id, code)
            batch.save(coupon)
    with meter.measure() as tally:
        report = jobs.run_job(settings, wiring.daily_jobs(), "demo", "expire-coupons", day + dt.timedelta(days=1))
    expired = report["coupons_expired"]
    return {"coupons_expired": expired, "items_read": tally.items_read, "requests": tally.requests,
            "coupon_expiry_ratio": round(tally.items_read / expired, 3) if expired else None}


def overhead_figures(client: Any, member_id: str, calls: Any) -> dict[str, Any]:
    """Median wall time per accrual through the API, against the very same DynamoDB requests made
    with bare boto3 on the same moto: captured from one API accrual, replayed onto fresh keys."""
    import boto3

    from chalicelib.settings import get_settings
    from chalicelib.store import keys, tx

    table = get_settings().table_name
    raw = boto3.client("dynamodb", region_name="us-east-1")
    paid_at = dt.datetime.now(dt.timezone.utc).isoformat()
    account_key = dict(zip(("pk", "sk"), keys.account("demo", member_id)))

    def api_accrual(n: int, order_id: str | None = None) -> dict[str, str]:
        body = json.dumps({"order_id": order_id or f"ovh-{n}", "member_id": member_id, "amount_fen": 100,
                           "paid_at": paid_at}).encode()
        headers = calls.till_headers("POST", "/v1/orders", body)
        answer = client.http.request("POST", "/v1/orders", headers=headers, body=body)
        assert answer.status_code == 201, answer.body
        return headers

    captured: list[tuple[str, dict[str, Any]]] = []

    def capture(model: Any, params: dict[str, Any], **_: Any) -> None:
        captured.append((model.name, json.loads(json.dumps(params, default=str))))

    api_accrual(0, "warm-order")  # caches (till key, program) filled: capture a warm accrual's calls
    account_before = raw.get_item(TableName=table, Key={k: {"S": v} for k, v in account_key.items()},
                                  ConsistentRead=True)["Item"]
    events = tx.connection().client.meta.events
    events.register("before-parameter-build.dynamodb", capture)
    try:
        nonce = api_accrual(0, "capture-order")["X-Loyalty-Nonce"]
    finally:
        events.unregister("before-parameter-build.dynamodb", capture)
    template = json.dumps(captured)

    def replay(n: int, only_transaction: bool) -> None:
        fresh = f"b{n}x{member_id}"[:40]
        text = template.replace(member_id, fresh).replace("capture-order", f"bare-{n}").replace(nonce, f"{nonce[:8]}{n:016d}")
        # The till's rate counters (risk rules) per replay: 600 bare accruals a minute on the demo till
        # would meet its cap, which the API accruals never reach at this pace.
        text = text.replace("#dev-pos#", f"#bench-pos-{n}#")
        for operation, params in json.loads(text):
            if only_transaction and operation != "TransactWriteItems":
                continue
            getattr(raw, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())(**params)  # GetItem -> get_item

    def prepare(count: int, offset: int) -> None:
        """Each bare accrual needs its own member account, as the API accrual had one."""
        for n in range(offset, offset + count):
            fresh = f"b{n}x{member_id}"[:40]
            item = json.loads(json.dumps(account_before).replace(member_id, fresh))
            raw.put_item(TableName=table, Item=item)

    def timed(call: Any, count: int = 200) -> float:
        samples = []
        for n in range(count):
            started = time.perf_counter()
            call(n)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples[20:]) * 1000  # the first 20 warm up

    prepare(200, 0)
    prepare(200, 1000)
    api_ms = timed(api_accrual)
    bare_ms = timed(lambda n: replay(n, only_transaction=True))
    same_ms = timed(lambda n: replay(1000 + n, only_transaction=False))
    return {"api_accrual_ms": round(api_ms, 3), "bare_transaction_ms": round(bare_ms, 3),
            "bare_same_calls_ms": round(same_ms, 3), "api_vs_bare_transaction": round(api_ms / bare_ms, 2),
            "api_vs_bare_same_calls": round(api_ms / same_ms, 2)}
