"""The merchant console (商户后台) at `/console`: a page of plain ES modules, its style sheet and
ECharts, all served by this API from `chalicelib/console/` (so `chalice package` ships them and
the console works offline on the local stack; nothing is fetched from another host).

Security: the page holds no secret; the staff token lives in the console's own sessionStorage
(never a cookie, so no other origin's request carries it and no other origin can read it); the
API sends no CORS headers, so only pages of this origin can read its answers; the page's
Content-Security-Policy (a header) allows scripts from this origin only, none inline.
ECharts (`echarts.min.js`) is the npm package's own file, copied by `make console-assets`; the
kit's tests check it is byte for byte the version pinned in `tools/package.json`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from chalice import Blueprint

from chalicelib.api.http import PUBLIC, route

bp = Blueprint(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "console"

# ECharts draws on canvas and positions its tooltip with inline styles: styles may be inline,
# scripts never.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"}
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


@functools.lru_cache(maxsize=8)
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@route(bp, "/console", ["GET"], auth=PUBLIC, media_type="text/html; charset=utf-8", uses_store=False,
       headers=_PAGE_HEADERS, summary="The merchant console (a web page; its API calls need a staff token)")
def console_page(ctx):
    return _asset("index.html")


@route(bp, "/console/app.js", ["GET"], auth=PUBLIC, media_type="text/javascript; charset=utf-8", uses_store=False,
       headers=_ASSET_HEADERS, summary="The console's script (an ES module)")
def console_script(ctx):
    return _asset("app.js")


@route(bp, "/console/forms.js", ["GET"], auth=PUBLIC, media_type="text/javascript; charset=utf-8", uses_store=False,
       headers=_ASSET_HEADERS, summary="The console's form builder (an ES module)")
def console_forms(ctx):
    return _asset("forms.js")


@route(bp, "/console/style.css", ["GET"], auth=PUBLIC, media_type="text/css; charset=utf-8", uses_store=False,
       headers=_ASSET_HEADERS, summary="The console's style sheet")
def console_style(ctx):
    return _asset("style.css")


@route(bp, "/console/echarts.min.js", ["GET"], auth=PUBLIC, media_type="text/javascript; charset=utf-8",
       uses_store=False, headers=_ASSET_HEADERS, summary="ECharts (the npm package's dist file), for the console")
def console_echarts(ctx):
    return _asset("echarts.min.js")
