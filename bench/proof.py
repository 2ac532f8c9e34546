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
from typing import Any, Callable

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


def _self_times(stderr: str) -> tuple[int, int]:
    """(our modules', everything else's) self times in one `-X importtime` output."""
    ours = theirs = 0
    for line in stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[0].split(":")[1].strip().isdigit():
            if parts[2].strip().split(".")[0] in _OURS:
                ours += int(parts[0].split(":")[1])
            else:
                theirs += int(parts[0].split(":")[1])
    return ours, theirs


def same_run_split(command: list[str], runs: int = 7, **kwargs: Any) -> dict[str, Any]:
    """`import app` once per run, its modules' self times split into ours and the libraries'
    (standard library included, as in `libraries_of_app`), minus the interpreter's own start-up
    imports; medians. The second import figure, next to the first: the libraries are timed where
    the app loads them, and every one of them is timed (see `import_figures` for why the first
    figure's denominator is not)."""
    def split(statement: str) -> tuple[int, int]:
        done = subprocess.run([*command, "-X", "importtime", "-c", statement], capture_output=True, text=True,
                              check=True, **kwargs)
        return _self_times(done.stderr)

    samples = []
    for _ in range(runs):
        ours, theirs = split("import app")
        theirs -= split("pass")[1]
        samples.append((ours, theirs))
    ours_us = statistics.median(o for o, _ in samples)
    theirs_us = statistics.median(t for _, t in samples)
    return {"own_ms": round(ours_us / 1000, 1), "libraries_ms": round(theirs_us / 1000, 1),
            "ratio": round((ours_us + theirs_us) / theirs_us, 3)}


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
    # `__import__`, not `importlib.import_module`: `-X importtime` times only imports that go through
    # the import statement's machinery, so a module loaded by `importlib.import_module` would go
    # untimed (its own self time; what it imports is timed) and the denominator would fall short
    # (it did, until issue 11's lazy loading showed it: 61 library modules, about 21 ms).
    # `same_run_split` is a second figure: both sides timed in the same `import app` run.
    statement = ("for name in %r:\n    try:\n        __import__(name)\n"
                 "    except Exception:\n        pass" % (libraries,))
    libs_us = _import_microseconds(statement)
    libraries = sorted({name.split(".")[0] for name in libraries} - _STDLIB)
    same_run = same_run_split([sys.executable], cwd=ROOT, env=_env())
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
            "same_run": same_run,
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
        same_run = same_run_split([sys.executable, "-S"], cwd=task, env=env)
        app_us = median_us("import app")
        libs_us = median_us("for name in %r:\n    try:\n        __import__(name)\n"
                            "    except Exception:\n        pass" % (libraries,))
    return {"package_app_import_ms": round(app_us / 1000, 1), "package_libraries_import_ms": round(libs_us / 1000, 1),
            "package_import_ratio": round(app_us / libs_us, 3), "package_pyc_files": compiled,
            "package_same_run": same_run}


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


# --- cold start: import + the first request ---------------------------------------------------

# Before the lazy loading of issue 11 (the routes imported every feature at `import app`).
COLD_START_BASELINE = "082f63b"

# Run in a fresh interpreter per sample, as Lambda runs a cold start: import the app, then hand
# it one API Gateway event (no test client, whose own imports would warm the libraries).
_COLD_PROBE = """
import json, sys, time
t0 = time.perf_counter()
from app import app
t1 = time.perf_counter()
class Context:
    aws_request_id, function_name, memory_limit_in_mb = "cold", "loyalty-api", 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:loyalty-api"
    def get_remaining_time_in_millis(self):
        return 30000
answer = app(json.loads(sys.argv[1]), Context())
t2 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1000, "request_ms": (t2 - t1) * 1000, "status": answer["statusCode"],
                  "ours": sum(1 for m in sys.modules if m.split(".")[0] in ("app", "chalicelib"))}))
"""


def _api_event(method: str, path: str, headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
    return {"resource": path, "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
            "requestContext": {"resourcePath": path, "httpMethod": method, "path": f"/api{path}", "stage": "api",
                               "requestId": "cold", "identity": {"sourceIp": "127.0.0.1"}},
            "body": body.decode() if body is not None else None, "isBase64Encoded": False}


def _cold_setup() -> None:
    """In its own interpreter (the table is the moto server's): the demo program and one member."""
    import boto3
    from chalice.test import Client

    from chalicelib.seed import seed_demo_program
    from chalicelib.settings import get_settings
    from chalicelib.store import schema
    from devstack.wechat_standin import WechatStandin

    settings = get_settings()
    port = int(settings.wechat_api_base.rsplit(":", 1)[1])
    schema.create_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=settings.dynamodb_endpoint),
                        settings.table_name)
    seed_demo_program()
    from app import app

    with WechatStandin(port=port), Client(app, stage_name="local") as client:
        login = json.loads(client.http.post("/v1/auth/login", headers={"Content-Type": "application/json"},
                                            body=json.dumps({"appid": "wxdemo0000000000", "code": "dev-cold"})).body)
        headers = {"Authorization": f"Bearer {login['token']}", "Content-Type": "application/json"}
        card = json.loads(client.http.post("/v1/members", headers=headers, body=b'{"nickname": "Cold"}').body)
    print(json.dumps({"token": login["token"], "member_id": card["member_id"]}))


def cold_start_figures(runs: int = 7, baseline: str = COLD_START_BASELINE) -> dict[str, Any]:
    """A cold start of the API function as a member's card read and a till's order see it:
    `import app` and then the first request, in a fresh interpreter each (bytecode compiled, never
    written), against a moto server; medians of `runs`. The same for the code at `baseline` (the
    commit before lazy loading, from `git archive`), so the first request's share is visible:
    what `import app` no longer loads, the first request loads if it needs it."""
    import secrets as token_bytes
    import tempfile

    import logging

    from moto.server import ThreadedMotoServer

    from chalicelib.auth import till

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {**_env(), "LOYALTY_DYNAMODB_ENDPOINT": f"http://{host}:{port}", "LOYALTY_TABLE_NAME": "loyalty-cold",
               "LOYALTY_WECHAT_API_BASE": f"http://127.0.0.1:{_free_port()}", "LOYALTY_LOG_LEVEL": "WARNING",
               "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "PYTHONDONTWRITEBYTECODE": "1"}
        env.pop("PYTHONPATH", None)
        done = subprocess.run([sys.executable, "-c", "from bench.proof import _cold_setup; _cold_setup()"], cwd=ROOT,
                              capture_output=True, text=True, check=True, env=env)
        member = json.loads(done.stdout.strip().splitlines()[-1])

        def card_event() -> dict[str, Any]:
            return _api_event("GET", "/v1/members/me", {"authorization": f"Bearer {member['token']}"}, None)

        def order_event() -> dict[str, Any]:
            body = json.dumps({"order_id": f"cold-{token_bytes.token_hex(6)}", "member_id": member["member_id"],
                               "amount_fen": 1000, "paid_at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode()
            ts, nonce = str(int(time.time())), token_bytes.token_hex(12)
            headers = {"content-type": "application/json", "x-loyalty-key": "dev-pos", "x-loyalty-timestamp": ts,
                       "x-loyalty-nonce": nonce,
                       "x-loyalty-signature": till.sign("dev-pos-secret", "POST", "/v1/orders", ts, nonce, body)}
            return _api_event("POST", "/v1/orders", headers, body)

        def probe(tree: Path, event: dict[str, Any]) -> dict[str, Any]:
            answer = subprocess.run([sys.executable, "-c", _COLD_PROBE, json.dumps(event)], cwd=tree,
                                    capture_output=True, text=True, check=True, env=env)
            found = json.loads(answer.stdout.strip().splitlines()[-1])
            if found["status"] not in (200, 201):
                raise RuntimeError(f"cold start probe answered {found['status']} in {tree}")
            return found

        def summary(found: list[dict[str, Any]]) -> dict[str, Any]:
            return {"import_ms": round(statistics.median(f["import_ms"] for f in found), 1),
                    "first_request_ms": round(statistics.median(f["request_ms"] for f in found), 1),
                    "total_ms": round(statistics.median(f["import_ms"] + f["request_ms"] for f in found), 1),
                    "our_modules_loaded": found[0]["ours"]}

        with tempfile.TemporaryDirectory() as scratch:
            trees = {"now": ROOT}
            archive = subprocess.run(["git", "archive", "--format=tar", baseline, "app.py", "chalicelib"], cwd=ROOT,
                                     capture_output=True)
            if archive.returncode == 0:
                subprocess.run(["tar", "-x", "-C", scratch], input=archive.stdout, check=True)
                trees["baseline"] = Path(scratch)
            for tree in trees.values():
                subprocess.run([sys.executable, "-m", "compileall", "-q", "app.py", "chalicelib"], cwd=tree, check=True)
            # Interleaved, so that the machine's load falls on both sides alike.
            samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for _ in range(runs):
                for name, tree in trees.items():
                    for request, event in (("card_read", card_event), ("order", order_event)):
                        samples.setdefault((name, request), []).append(probe(tree, event()))
        figures: dict[str, Any] = {"runs": runs}
        for (name, request), found in samples.items():
            figures.setdefault(name, {"commit": baseline} if name == "baseline" else {})[request] = summary(found)
    finally:
        server.stop()
    return figures


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
