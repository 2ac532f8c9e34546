"""`/docs` in a real browser: Debian's headless Chromium driven by Playwright, against the stack.

The page must list every operation of `/openapi.json`, render the descriptions as Markdown, take a
member token through "Authorize" and make a call with it, all without one request to another
host and without a Content-Security-Policy violation. `make e2e` / `make test` install chromium
when it is missing; Playwright never downloads a browser of its own here.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.calls import Http


@pytest.fixture
def docs(browser, stack):
    """The docs page, loaded, with every request it made and every console message it printed."""
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    console: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    context.on("response", lambda response: response.status >= 400 and console.append(
        f"error: {response.status} for {response.url}"))
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.goto(f"{stack.api}/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    try:
        yield page, requested, console
    finally:
        context.close()


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}


def test_the_page_lists_every_operation_with_markdown_and_no_other_host(docs, stack):
    page, requested, console = docs
    document = requests.get(f"{stack.api}/openapi.json", timeout=10).json()

    shown = page.eval_on_selector_all(
        ".opblock .opblock-summary",
        """nodes => nodes.map(n => [n.querySelector('.opblock-summary-method').textContent.trim(),
                                    n.querySelector('.opblock-summary-path').getAttribute('data-path')])""")
    assert len(shown) == len(set(map(tuple, shown)))
    assert set(map(tuple, shown)) == operations(document)

    # The description's Markdown is rendered: code spans and a list, not backticks and asterisks.
    description = page.locator(".information-container .info .description")
    assert description.locator("code").count() >= 5
    assert description.locator("li").count() >= 4
    assert "`" not in description.inner_text()

    api = urlsplit(stack.api)
    foreign = [url for url in requested
               if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != api.netloc]
    assert not foreign, f"requests to another host: {foreign}"
    assert {urlsplit(url).path for url in requested} >= {"/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css",
                                                         "/docs/swagger-initializer.js", "/openapi.json"}
    problems = [line for line in console if line.startswith(("error", "pageerror")) or "Content Security" in line]
    assert not problems, problems


def test_a_member_token_authorized_on_the_page_calls_the_api(docs, stack):
    page, requested, _ = docs
    token, member_id = Http(stack.api).enrolled("docs-browser", nickname="Docs")
    operation_id = requests.get(f"{stack.api}/openapi.json", timeout=10).json()[
        "paths"]["/v1/members/me"]["get"]["operationId"]

    page.click("button.authorize")
    scheme = page.locator(".auth-container", has=page.locator("h4", has_text="memberToken"))
    scheme.locator("input").fill(token)
    scheme.locator("button.authorize").click()
    scheme.locator("h6", has_text="Authorized").wait_for(timeout=5_000)  # the page holds the token
    page.click(".dialog-ux button.close-modal")

    block = page.locator(f"#operations-member-{operation_id}")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=15_000)
    assert status.inner_text().strip() == "200"
    assert member_id in block.locator(".live-responses-table").inner_text()  # the answer's body: our card
    assert "Authorization: Bearer" in block.locator(".curl-command").inner_text()
    assert any(urlsplit(url).path == "/v1/members/me" for url in requested)
    if os.environ.get("LOYALTY_DOCS_SCREENSHOT"):  # to look at the page: a PNG of it as tested
        page.screenshot(path=os.environ["LOYALTY_DOCS_SCREENSHOT"], full_page=False)


def test_under_a_stage_prefix_the_page_and_its_calls_keep_the_prefix(browser, stack):
    """API Gateway serves the API under its stage (`/api/docs`): the page's files, the document
    and "Try it out" must all stay under it. The browser sees the stack through such a prefix."""
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    context.on("request", lambda request: requested.append(urlsplit(request.url).path))

    def strip_stage(route: Any) -> None:
        upstream = route.fetch(url=route.request.url.replace(f"{stack.api}/api/", f"{stack.api}/", 1))
        route.fulfill(response=upstream)

    page.route(f"{stack.api}/api/**", strip_stage)
    try:
        page.goto(f"{stack.api}/api/docs")
        page.wait_for_selector(".opblock", timeout=30_000)
        block = page.locator("#operations-public-health")
        block.locator(".opblock-summary").click()
        block.locator("button.try-out__btn").click()
        block.locator("button.execute").click()
        status = block.locator(".live-responses-table .response .response-col_status").first
        status.wait_for(timeout=15_000)
        assert status.inner_text().strip() == "200"
    finally:
        context.close()
    assert requested[:1] == ["/api/docs"]
    assert {"/api/docs/swagger-ui-bundle.js", "/api/openapi.json", "/api/health"} <= set(requested), requested
    assert not [path for path in requested if not path.startswith("/api/")], requested
