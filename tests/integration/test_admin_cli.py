"""`loyalty-admin` against the table (moto), then the API using what it created."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from loyalty_admin import cli
from tests.support import calls

SECOND_APPID = "wxsecond00000000"
SECOND_FILE = f"""\
program_id: second
name: Second Tea
appid: {SECOND_APPID}
wechat_secret: second-wechat-secret
earning:
  points_per_yuan: 2
  growth_per_yuan: 1
tiers:
  - code: member
    name: 会员
    level: 0
    threshold: 0
  - code: vip
    name: VIP
    level: 1
    threshold: 500
templates:
  points_changed: tmpl-second-points
"""


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def program_file(tmp_path: Path) -> Path:
    path = tmp_path / "second.yaml"
    path.write_text(SECOND_FILE, encoding="utf-8")
    return path


@pytest.fixture
def second(api: Any, wechat: Any, program_file: Path) -> Any:
    wechat.state.add_app(SECOND_APPID, "second-wechat-secret")
    code, out, err = run("program", "create", str(program_file))
    assert code == 0, err
    assert "create program 'second'" in out
    return api


def _program(program_id: str) -> Any:
    from chalicelib.settings import get_settings
    from chalicelib.store import programs

    return programs.get_program(get_settings(), program_id, fresh=True)


def test_created_program_with_own_till_key_accrues_in_that_program_only(second: Any) -> None:
    code, secret, err = run("till-key", "create", "second", "second-pos-1", "--store", "s1")
    assert code == 0 and "shown once" in err
    secret = secret.strip()
    assert len(secret) >= 32

    login = second.request("POST", "/v1/auth/login", {"appid": SECOND_APPID, "code": "dev-carol"}).json
    token = login["token"]
    card = second.member("POST", "/v1/members", token, {"nickname": "Carol"}).json
    member_id = card["member_id"]
    assert card["tier"]["code"] == "member"

    order = {"order_id": "s-o-1", "member_id": member_id, "amount_fen": 1000,
             "paid_at": "2026-11-30T10:00:00+08:00"}
    signed = second.till("POST", "/v1/orders", order, key_id="second-pos-1", secret=secret)
    assert signed.status_code == 201, signed.body
    assert signed.json["points_awarded"] == 20  # the second program's 2 points per yuan
    assert second.member("GET", "/v1/members/me", token).json["points"]["available"] == 20

    # The demo program's till cannot reach the second program's member...
    demo_till = second.till("POST", "/v1/orders", {**order, "order_id": "d-o-1"})
    assert demo_till.status_code == 404
    # ...and the same WeChat user in the demo program is another, empty member.
    demo_token = second.enrolled("carol")
    assert second.member("GET", "/v1/members/me", demo_token).json["points"]["available"] == 0


def test_existing_program_needs_update_and_dry_run_changes_nothing(second: Any, program_file: Path) -> None:
    code, _, err = run("program", "create", str(program_file))
    assert code == 1 and "--update" in err
    changed = program_file.read_text().replace("points_per_yuan: 2", "points_per_yuan: 3")
    program_file.write_text(changed)
    code, out, _ = run("program", "create", str(program_file), "--update", "--dry-run")
    assert code == 0 and "version 1 -> 2: earning" in out
    assert _program("second").version == 1
    code, out, err = run("program", "create", str(program_file), "--update")
    assert code == 0, err
    assert _program("second").version == 2
    assert _program("second").config.earning.points_per_yuan == 3
    assert _program("second").wechat_secret == "second-wechat-secret"


@pytest.mark.parametrize(("broken", "line", "field"), [
    (SECOND_FILE.replace("threshold: 500", "threshold: -5"), 16, "tiers.1.threshold"),
    (SECOND_FILE.replace("  growth_per_yuan: 1\n", "  growth_per_yuan: 1\n  bonus: 4\n"), 8, "earning.bonus"),
    (SECOND_FILE.replace(f"appid: {SECOND_APPID}\n", ""), 1, "appid"),
    (SECOND_FILE.replace("tmpl-second-points", "{oops: [1}"), 18, None),
])
def test_a_bad_file_names_line_and_field_and_changes_nothing(aws: Any, tmp_path: Path, broken: str, line: int,
                                                             field: str | None) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(broken, encoding="utf-8")
    code, out, err = run("program", "create", str(path))
    assert code == 2 and out == ""
    assert f"{path}:{line}: " in err, err
    if field:
        assert f": {field}: " in err, err
    assert "nothing changed" in err
    assert _program("second") is None


def test_a_bad_json_file_names_line_and_field(aws: Any, tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load(SECOND_FILE)
    data["tiers"][1]["level"] = "high"
    path = tmp_path / "second.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    code, _, err = run("program", "create", str(path))
    assert code == 2
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if '"high"' in text)
    assert f"{path}:{line}: tiers.1.level: " in err, err


def test_an_appid_of_another_program_is_refused(aws: Any, tmp_path: Path) -> None:
    path = tmp_path / "thief.yaml"
    path.write_text(SECOND_FILE.replace(SECOND_APPID, calls.DEMO_APPID), encoding="utf-8")
    code, _, err = run("program", "create", str(path))
    assert code == 1 and "belongs to program 'demo'" in err
    assert _program("second") is None


def test_revoked_till_key_is_refused_once_the_config_cache_expires(second: Any, monkeypatch: Any) -> None:
    from chalicelib.auth import till
    from chalicelib.errors import Unauthorized
    from chalicelib.settings import get_settings
    from chalicelib.store import programs

    secret = run("till-key", "create", "second", "second-pos-2")[1].strip()
    clock = [1000.0]
    monkeypatch.setattr(programs.time, "monotonic", lambda: clock[0])
    cached = get_settings().model_copy(update={"config_cache_seconds": 30})

    def verify() -> Any:
        body = b"{}"
        headers = {k.lower(): v for k, v in calls.till_headers("POST", "/v1/orders", body, key_id="second-pos-2",
                                                               secret=secret).items()}
        return till.verify(cached, headers, "POST", "/v1/orders", body)

    assert verify().program_id == "second"  # now cached in this "container"
    # The CLI runs in another process: its revocation does not reach this container's cache.
    monkeypatch.setattr(programs, "clear_cache", lambda: None)
    code, _, err = run("till-key", "revoke", "second", "second-pos-2")
    assert code == 1 and "--yes" in err  # no terminal: a destructive change needs --yes
    code, _, err = run("till-key", "revoke", "second", "second-pos-2", "--yes")
    assert code == 0 and "30 s" in err
    # A container that had it cached accepts it for up to config_cache_seconds...
    clock[0] += 29
    assert verify().program_id == "second"
    # ...then refuses it.
    clock[0] += 2
    with pytest.raises(Unauthorized):
        verify()
    # Through the API (the tests' cache lifetime is 0): 401 at once.
    order = {"order_id": "s-o-9", "member_id": "nobody", "amount_fen": 100, "paid_at": "2026-11-30T10:00:00+08:00"}
    assert second.till("POST", "/v1/orders", order, key_id="second-pos-2", secret=secret).status_code == 401


def test_till_key_rotation_and_ids_owned_elsewhere(second: Any) -> None:
    old = run("till-key", "create", "second", "second-pos-3")[1].strip()
    assert run("till-key", "create", "second", "second-pos-3")[0] == 1
    assert run("till-key", "rotate", "demo", "second-pos-3", "--yes")[0] == 1  # not demo's key
    code, new, _ = run("till-key", "rotate", "second", "second-pos-3", "--yes")
    assert code == 0 and new.strip() != old
    order = {"order_id": "s-o-3", "member_id": "nobody", "amount_fen": 100, "paid_at": "2026-11-30T10:00:00+08:00"}
    assert second.till("POST", "/v1/orders", order, key_id="second-pos-3", secret=old).status_code == 401
    assert second.till("POST", "/v1/orders", order, key_id="second-pos-3", secret=new.strip()).status_code == 404
    listed = json.loads(run("till-key", "list", "second")[1])
    assert [k["name"] for k in listed] == ["second-pos-3"]
    assert new.strip() not in json.dumps(listed)


def test_admin_keys_create_rotate_revoke(second: Any) -> None:
    key = run("admin-key", "create", "second", "console")[1].strip()
    answer = second.staff("GET", "/v1/admin/program", key=key)
    assert answer.status_code == 200 and answer.json["program_id"] == "second"
    code, rotated, _ = run("admin-key", "rotate", "second", "console", "--yes")
    assert code == 0
    assert second.staff("GET", "/v1/admin/program", key=key).status_code == 401
    assert second.staff("GET", "/v1/admin/program", key=rotated.strip()).status_code == 200
    assert [k["name"] for k in json.loads(run("admin-key", "list", "second")[1])] == ["console"]
    assert run("admin-key", "revoke", "second", "console", "--yes")[0] == 0
    assert second.staff("GET", "/v1/admin/program", key=rotated.strip()).status_code == 401
    assert json.loads(run("admin-key", "list", "second")[1]) == []


def test_first_staff_owner_is_stored_with_an_argon2_hash(second: Any) -> None:
    from chalicelib.store import credentials, keys
    from chalicelib.store.models import StaffUserItem

    code, out, err = run("staff", "create-owner", "second", "boss", "--password-stdin", stdin="correct horse battery\n")
    assert code == 0, err
    item = StaffUserItem.get(*keys.staff_user("second", "boss"))
    assert item.role == "owner" and item.password_hash.startswith("$argon2id$")
    assert "correct horse" not in json.dumps(item.attribute_values, default=str)
    assert credentials.verify_password(item.password_hash, "correct horse battery")
    assert not credentials.verify_password(item.password_hash, "wrong")
    assert run("staff", "create-owner", "second", "boss", "--password-stdin", stdin="another password\n")[0] == 1
    assert run("staff", "create-owner", "nope", "boss", "--password-stdin", stdin="another password\n")[0] == 1
    assert [u["username"] for u in json.loads(run("staff", "list", "second")[1])] == ["boss"]


def test_program_list(second: Any) -> None:
    listed = json.loads(run("program", "list")[1])
    assert {p["program_id"]: p["appid"] for p in listed} == {"demo": calls.DEMO_APPID, "second": SECOND_APPID}
