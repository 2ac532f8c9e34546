"""The API's own documentation: the OpenAPI document, and Swagger UI showing it at `/docs`.

Swagger UI's script and style are the npm package `swagger-ui-dist`'s own files, copied into
`swagger_ui/` (so `chalice package` ships them in the Lambda) by `make docs-assets`; the kit's
tests check that they are byte for byte those of the version pinned in `tools/package.json`.
Nothing is fetched from another host, so the page works offline on the local stack, and its
Content-Security-Policy says so to the browser. The files are read on the first request for
them, never at import.
"""

from __future__ import annotations

import functools
from pathlib import Path

from chalice import Blueprint

from chalicelib.api.http import PUBLIC, route

bp = Blueprint(__name__)

ASSETS = Path(__file__).resolve().parent / "swagger_ui"

# Only this origin: scripts and styles from the files below, calls ("Try it out") to this API.
# Swagger UI sets inline styles and draws icons from data: URIs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "no-cache"}
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"}

# Relative addresses: behind API Gateway the page is served under the stage's prefix (/api/docs).
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Loyalty API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/swagger-initializer.js"></script>
</body>
</html>
"""

# The validator badge would load an image from another host: off. The document names no server,
# so "Try it out" calls go where this page came from, stage prefix included (API Gateway serves it
# at /api/docs). "Authorize" takes the member token (or the staff key) for every operation.
_INITIALIZER = """window.addEventListener("load", function () {
  var base = new URL(".", window.location.href).pathname.replace(/\\/$/, "") || "/";
  fetch("openapi.json").then(function (answer) { return answer.json(); }).then(function (spec) {
    if (!spec.servers) spec.servers = [{ url: base }];
    window.ui = SwaggerUIBundle({
      spec: spec,
      dom_id: "#swagger-ui",
      validatorUrl: null,
      deepLinking: true,
      docExpansion: "list",
      defaultModelsExpandDepth: 0,
      displayOperationId: true,
      displayRequestDuration: true,
      showExtensions: true
    });
  });
});
"""


@functools.cache
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@route(bp, "/openapi.json", ["GET"], auth=PUBLIC, response="chalicelib.api.schemas:OpenApiDocument", uses_store=False,
       summary="This API's OpenAPI 3.1 document")
def openapi_document(ctx):
    from chalicelib.api import openapi

    return openapi.document(ctx.app)


@route(bp, "/docs", ["GET"], auth=PUBLIC, media_type="text/html; charset=utf-8", uses_store=False,
       headers=_PAGE_HEADERS, summary="This API's documentation (Swagger UI): every operation, callable from the page")
def docs_page(ctx):
    return _PAGE


@route(bp, "/docs/swagger-ui-bundle.js", ["GET"], auth=PUBLIC, media_type="text/javascript; charset=utf-8",
       uses_store=False, headers=_ASSET_HEADERS, summary="The docs page's script (swagger-ui-dist)")
def docs_script(ctx):
    return _asset("swagger-ui-bundle.js")


@route(bp, "/docs/swagger-ui.css", ["GET"], auth=PUBLIC, media_type="text/css; charset=utf-8",
       uses_store=False, headers=_ASSET_HEADERS, summary="The docs page's style sheet (swagger-ui-dist)")
def docs_style(ctx):
    return _asset("swagger-ui.css")


@route(bp, "/docs/swagger-initializer.js", ["GET"], auth=PUBLIC, media_type="text/javascript; charset=utf-8",
       uses_store=False, headers=_ASSET_HEADERS, summary="The docs page's settings for Swagger UI")
def docs_initializer(ctx):
    return _INITIALIZER
