"""The merchant console (/console) in a real browser: Debian's headless Chromium driven by
Playwright, against the running local stack (issue 16).

Each role logs in; the owner finds a member by phone (the keyed lookup), adjusts points and sees
the history change, and sees a bad coupon value refused on its field; the clerk sees neither
the staff page nor may call an owner endpoint; the dashboard's charts hold exactly the report
API's figures (a screenshot is kept under build/artifacts/). No request leaves the stack's
origin, and the page runs under its Content-Security-Policy with no violation.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.calls import Http
from tests.e2e.conftest import REPO_ROOT

ARTIFACTS = REPO_ROOT / "build" / "artifacts"
TIMEOUT = 20_000


class Console:
    """One browser context (its own sessionStorage) on the console, with what it requested and printed."""

    def __init__(self, browser: Any, api: str) -> None:
        self.api = api
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT)
        self.requested: list[str] = []
        self.problems: list[str] = []
        self.context.on("request", lambda request: self.requested.append(request.url))
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))

    def login(self, username: str, password: str) -> None:
        self.page.goto(f"{self.api}/console")
        self.page.fill("#login-form [name=username]", username)
        self.page.fill("#login-form [name=password]", password)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_selector("#nav a")

    def go(self, hash_: str) -> None:
        self.page.evaluate("h => { location.hash = h }", hash_)

    def nav(self) -> list[str]:
        return self.page.eval_on_selector_all("#nav a", "links => links.map(a => a.textContent)")

    def call(self, method: str, path: str) -> int:
        """A call from the page with the token the console holds (what a curious clerk could do)."""
        return self.page.evaluate("""async ([method, path]) => {
            const token = JSON.parse(sessionStorage.getItem('loyalty-console')).token
            const r = await fetch(path, {method, headers: {Authorization: 'Bearer ' + token}})
            return r.status }""", [method, path])

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def console(browser, stack) -> Iterator[Any]:
    opened: list[Console] = []

    def open_() -> Console:
        opened.append(Console(browser, stack.api))
        return opened[-1]

    yield open_
    for each in opened:
        api = urlsplit(stack.api)
        foreign = [url for url in each.requested if urlsplit(url).netloc != api.netloc]
        assert not foreign, f"requests to other hosts: {foreign}"
        assert not [p for p in each.problems if "Content Security Policy" in p], each.problems
        each.close()


def _staff_account(stack: Any, role: str, **extra: Any) -> tuple[str, str]:
    username, password = f"{role}-{secrets.token_hex(3)}", f"{role}-password-{secrets.token_hex(4)}"
    answer = Http(stack.api).staff("PUT", f"/v1/admin/staff/{username}", {"role": role, "password": password, **extra})
    assert answer.status_code == 201, answer.text
    return username, password


def _member_with_phone(stack: Any) -> tuple[str, str]:
    http = Http(stack.api)
    phone = f"139{secrets.randbelow(10**8):08d}"
    token, member_id = http.enrolled(f"console-{secrets.token_hex(4)}", nickname="控制台会员")
    assert http.member("POST", "/v1/members/me/phone", token, {"phone_code": f"phone-{phone}"}).status_code == 200
    return member_id, phone


def test_the_page_is_served_with_its_policy_and_no_secret(stack):
    answer = requests.get(f"{stack.api}/console", timeout=10)
    assert answer.status_code == 200 and "text/html" in answer.headers["Content-Type"]
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in answer.text and "dev-admin-key" not in answer.text and "Set-Cookie" not in answer.headers
    # No CORS: another origin's page cannot read the API's answers.
    preflight = requests.get(f"{stack.api}/v1/admin/program", headers={"Origin": "https://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_owner_finds_a_member_by_phone_adjusts_points_and_sees_the_history(console, stack):
    member_id, phone = _member_with_phone(stack)
    owner = console()
    owner.login("owner", "dev-owner-password")
    assert {"概览", "会员", "员工", "审计", "优惠券", "积分规则", "等级", "任务"} <= set(owner.nav())
    owner.go("#/members")
    owner.page.select_option("#lookup-kind", "phone")
    owner.page.fill("#lookup-value", phone)
    owner.page.click("#lookup-form button[type=submit]")
    owner.page.wait_for_selector("#points-history table")
    assert member_id in owner.page.inner_text("#member-detail")
    rows_before = owner.page.locator("#points-history tbody tr").count()

    owner.page.fill("#adjust-form [name=points]", "25")
    owner.page.fill("#adjust-form [name=reason]", "浏览器测试")
    owner.page.click("#adjust-form button[type=submit]")
    owner.page.wait_for_function("n => document.querySelectorAll('#points-history tbody tr').length > n", arg=rows_before)
    first = owner.page.inner_text("#points-history tbody tr:first-child")
    assert "adjust" in first and "25" in first and "浏览器测试" in first
    assert "可用积分 25 " in owner.page.inner_text("#balance")


def test_a_bad_coupon_value_is_shown_on_its_field(console, stack):
    owner = console()
    owner.login("owner", "dev-owner-password")
    owner.go("#/coupons")
    owner.page.click("button.edit[data-id=demo-10off]")
    field = owner.page.locator("""#entry-form input[data-loc='["off_fen"]']""")
    field.fill("0")
    owner.page.click("#entry-form button[type=submit]")
    error = owner.page.locator("""#entry-form [data-error-for='["off_fen"]']""")
    error.wait_for()
    owner.page.wait_for_function("""() => document.querySelector(`#entry-form [data-error-for='["off_fen"]']`).textContent""")
    assert "greater than or equal to 1" in error.inner_text()
    assert "invalid" in (field.get_attribute("class") or "")
    # Nothing was saved.
    template = Http(stack.api).staff("GET", "/v1/admin/coupon-templates/demo-10off").json()
    assert template["off_fen"] == 1000


def test_a_clerk_sees_no_staff_page_and_may_not_call_an_owner_endpoint(console, stack):
    username, password = _staff_account(stack, "clerk", points_limit=20)
    member_id, phone = _member_with_phone(stack)
    clerk = console()
    clerk.login(username, password)
    assert clerk.nav() == ["会员"]
    clerk.go("#/staff")
    clerk.page.wait_for_selector("#forbidden")
    assert clerk.call("GET", "/v1/admin/staff") == 403
    assert clerk.call("GET", "/v1/admin/audit") == 403
    # What a clerk is for: find the walk-in customer by phone.
    clerk.go("#/members")
    clerk.page.fill("#lookup-value", phone)
    clerk.page.click("#lookup-form button[type=submit]")
    clerk.page.wait_for_selector("#points-history table")
    assert member_id in clerk.page.inner_text("#member-detail")
    # ... and use their coupon at the counter (核销).
    http = Http(stack.api)
    granted = http.staff("POST", "/v1/admin/coupon-templates/demo-10off/grants",
                         {"member_ids": [member_id], "request_id": f"walk-in-{secrets.token_hex(4)}"})
    assert granted.status_code == 200 and granted.json()["granted"] == 1, granted.text
    code = http.staff("GET", f"/v1/admin/members/{member_id}/coupons").json()["items"][0]["code"]
    clerk.page.reload()
    clerk.page.wait_for_selector("#coupon-history table")
    clerk.page.fill("#redeem-form [name=code]", code)
    clerk.page.fill("#redeem-form [name=order_amount_fen]", "20000")
    clerk.page.click("#redeem-form button[type=submit]")
    clerk.page.wait_for_selector("#redeem-form .ok")
    assert "used" in clerk.page.inner_text("#coupon-history tbody tr:first-child")


def test_a_manager_sees_everything_but_staff_and_audit(console, stack):
    username, password = _staff_account(stack, "manager")
    manager = console()
    manager.login(username, password)
    shown = set(manager.nav())
    assert "员工" not in shown and "审计" not in shown and {"概览", "优惠券", "等级"} <= shown
    assert manager.call("GET", "/v1/admin/staff") == 403
    assert manager.call("GET", "/v1/admin/program") == 200


def test_a_wrong_password_is_refused_on_the_page(console, stack):
    page = console()
    page.page.goto(f"{stack.api}/console")
    page.page.fill("#login-form [name=username]", "owner")
    page.page.fill("#login-form [name=password]", "not-the-password")
    page.page.click("#login-form button[type=submit]")
    page.page.wait_for_selector("#login-form .error")
    assert "用户名或密码错误" in page.page.inner_text("#login-form")


def test_the_dashboard_charts_hold_the_report_figures(console, stack):
    http = Http(stack.api)
    # Seeded activity: three members with orders, a reward redeemed, a coupon claimed and used.
    tokens = []
    for amount_fen in (12_300, 45_600, 78_900):
        token, member_id = http.enrolled(f"dash-{secrets.token_hex(4)}")
        tokens.append(token)
        order = {"order_id": f"dash-{secrets.token_hex(4)}", "member_id": member_id, "amount_fen": amount_fen,
                 "paid_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}
        assert http.till("POST", "/v1/orders", order).status_code == 201
    assert http.member("POST", "/v1/members/me/redemptions", tokens[2], {
        "reward_id": "demo-cup", "quantity": 1, "request_id": f"dash-{secrets.token_hex(4)}"}).status_code == 201
    coupon = http.member("POST", "/v1/members/me/coupons", tokens[1], {
        "template_id": "demo-10off", "request_id": f"dash-{secrets.token_hex(4)}"})
    assert coupon.status_code == 201, coupon.text
    assert http.till("POST", "/v1/coupons/redeem", {"code": coupon.json()["code"], "order_id": f"dash-{secrets.token_hex(4)}",
                                                    "order_amount_fen": 20_000,
                                                    "request_id": f"dash-{secrets.token_hex(4)}"}).status_code == 201

    def settled() -> list[dict[str, Any]]:
        """The report once the stream has counted all of the above (two reads in a row agree)."""
        deadline, last = time.time() + 30, None
        while time.time() < deadline:
            items = http.staff("GET", "/v1/admin/reports/daily").json()["items"]
            if items == last and sum(r["coupons_used"] for r in items) >= 1 and sum(r["orders"] for r in items) >= 3:
                return items
            last = items
            time.sleep(1)
        raise AssertionError(f"the report did not settle: {last}")

    settled()
    owner = console()
    owner.login("owner", "dev-owner-password")
    owner.page.wait_for_selector(".charts[data-ready]")
    start, end = owner.page.input_value("#from"), owner.page.input_value("#to")
    report = http.staff("GET", f"/v1/admin/reports/daily?from={start}&to={end}").json()["items"]
    assert report, "the report has days"
    charts = owner.page.evaluate("""() => Object.fromEntries(Object.entries(window.consoleCharts).map(
        ([id, chart]) => [id, {x: chart.getOption().xAxis[0].data, series: chart.getOption().series.map(s => s.data)}]))""")
    days = [row["date"] for row in report]
    assert charts["members"]["x"] == days
    assert charts["members"]["series"] == [[r["new_members"] for r in report], [r["active_members"] for r in report]]
    assert charts["points"]["series"] == [[r["points_issued"] for r in report], [r["points_redeemed"] for r in report],
                                          [r["points_expired"] for r in report]]
    assert charts["coupons"]["series"] == [[r["coupons_issued"] for r in report], [r["coupons_used"] for r in report]]
    assert charts["sales"]["series"][1] == [r["orders"] for r in report]
    assert charts["sales"]["series"][0] == [round(r["sales_fen"] / 100, 2) for r in report]
    tiers = sorted({code for r in report for code in r["tier_distribution"]})
    assert tiers and charts["tiers"]["series"] == [[r["tier_distribution"].get(code, 0) for r in report] for code in tiers]
    assert owner.page.locator(".chart canvas").count() >= 7  # drawn, not just configured
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    owner.page.screenshot(path=str(ARTIFACTS / "console-dashboard.png"), full_page=True)
    assert (ARTIFACTS / "console-dashboard.png").stat().st_size > 10_000


def test_a_rule_page_shows_the_servers_error_on_the_field_and_saves_a_good_change(console, stack):
    owner = console()
    owner.login("owner", "dev-owner-password")
    owner.go("#/tiers")
    threshold = owner.page.locator("""#rules-form input[data-loc='["tiers",0,"threshold"]']""")
    threshold.fill("5")
    owner.page.click("#rules-form button[type=submit]")
    owner.page.wait_for_function("""() => document.querySelector(`#rules-form [data-error-for='["tiers"]']`).textContent""")
    assert Http(stack.api).staff("GET", "/v1/admin/program").json()["tiers"][0]["threshold"] == 0
    threshold.fill("0")
    owner.page.click("#rules-form button[type=submit]")
    owner.page.wait_for_selector("#rules-status .ok")
    # A part of the rules this build does not have yet (paid membership arrives with its feature):
    owner.go("#/membership")
    owner.page.wait_for_selector("#main[data-page=membership]")
    program = Http(stack.api).staff("GET", "/v1/admin/program").json()
    if "membership" in program or "membership_plans" in program:
        assert owner.page.locator("#rules-form").count() == 1
    else:
        assert "尚未启用" in owner.page.inner_text("#main")


def test_a_job_is_run_for_a_day_from_the_jobs_page(console, stack):
    owner = console()
    owner.login("owner", "dev-owner-password")
    owner.go("#/jobs")
    owner.page.select_option("#job", "tier-review")
    owner.page.fill("#as-of", "2026-01-15")
    owner.page.click("#run-job")
    owner.page.wait_for_selector("#job-output pre")
    assert "2026-01-15" in owner.page.inner_text("#job-output")
    owner.go("#/audit")
    owner.page.wait_for_selector("#audit table")
    assert "/v1/admin/jobs/tier-review/runs" in owner.page.inner_text("#audit")


# --- finished in a second pass: the member page's tags, a job run's progress ----------------------

def _open_member(page_console: Any, phone: str) -> None:
    page_console.go("#/members")
    page_console.page.fill("#lookup-value", phone)
    page_console.page.click("#lookup-form button[type=submit]")
    page_console.page.wait_for_selector("#member-tags #manual-tags")


def test_owner_adds_a_tag_on_the_member_page_sees_it_and_removes_it(console, stack):
    member_id, phone = _member_with_phone(stack)
    owner = console()
    owner.login("owner", "dev-owner-password")
    _open_member(owner, phone)
    assert "无" in owner.page.inner_text("#manual-tags")
    owner.page.fill("#tag-form [name=tag]", "常客")
    owner.page.click("#tag-form button[type=submit]")
    owner.page.wait_for_selector("#manual-tags .tag.manual[data-tag='常客']")
    assert "已添加 常客" in owner.page.inner_text("#tag-status")
    assert Http(stack.api).staff("GET", f"/v1/admin/members/{member_id}/tags").json()["manual"] == ["常客"]
    # Computed tags are shown apart and have no remove button.
    assert owner.page.locator("#computed-tags button").count() == 0
    owner.page.click("#manual-tags .tag[data-tag='常客'] button.remove-tag")
    owner.page.wait_for_selector("#manual-tags .tag[data-tag='常客']", state="detached")
    assert "已移除 常客" in owner.page.inner_text("#tag-status")
    assert Http(stack.api).staff("GET", f"/v1/admin/members/{member_id}/tags").json()["manual"] == []


def test_a_clerk_sees_the_tags_but_gets_no_controls_to_change_them(console, stack):
    member_id, phone = _member_with_phone(stack)
    assert Http(stack.api).staff("PUT", f"/v1/admin/members/{member_id}/tags/vip").status_code == 200
    username, password = _staff_account(stack, "clerk", points_limit=20)
    clerk = console()
    clerk.login(username, password)
    _open_member(clerk, phone)
    clerk.page.wait_for_selector("#manual-tags .tag[data-tag='vip']")
    assert clerk.page.locator("#tag-form").count() == 0
    assert clerk.page.locator("#member-tags button.remove-tag").count() == 0
    assert "tags:write" in clerk.page.inner_text("#tags-read-only")
    # The server refuses it too, whatever the page shows.
    assert clerk.call("PUT", f"/v1/admin/members/{member_id}/tags/hacked") == 403
    assert clerk.call("DELETE", f"/v1/admin/members/{member_id}/tags/vip") == 403


def test_a_job_run_shows_its_progress_then_its_final_summary(console, stack):
    owner = console()
    owner.login("owner", "dev-owner-password")
    owner.go("#/jobs")
    # A day no other test runs, so this run is fresh (a finished one would answer its stored summary).
    as_of = f"20{40 + secrets.randbelow(50)}-0{1 + secrets.randbelow(9)}-1{secrets.randbelow(10)}"
    owner.page.select_option("#job", "reconcile")
    owner.page.fill("#as-of", as_of)
    owner.page.click("#run-job")
    owner.page.wait_for_selector("#job-output #job-summary")
    owner.page.wait_for_selector("#job-progress[data-status=done]")
    summary = owner.page.inner_text("#job-summary")
    assert as_of in summary and '"complete": true' in summary
    progress = owner.page.inner_text("#job-progress")
    assert "已完成" in progress and "调用 1 次" in progress and "members_checked" in progress
    assert int(owner.page.get_attribute("#job-progress", "data-pages") or "0") >= 1
    # The page polls the run's record while its POST is in flight (every second, the first at once).
    watched = [url for url in owner.requested if url.endswith(f"/v1/admin/jobs/reconcile/runs/{as_of}")]
    assert len(watched) >= 2, watched  # the first poll goes out with the run, the last after it
    progress_now = Http(stack.api).staff("GET", f"/v1/admin/jobs/reconcile/runs/{as_of}").json()
    assert progress_now["status"] == "done" and str(progress_now["pages"]) == owner.page.get_attribute(
        "#job-progress", "data-pages")
